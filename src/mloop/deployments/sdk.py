"""The SDK's endpoint functions (``mloop.create_endpoint`` ...): the library calls of
:mod:`mloop.deployments.endpoints` on the current client (``mloop.use_client``) or the one given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from mloop.context import Context
    from mloop.entities import Endpoint

__all__ = [
    "collected_data", "create_endpoint", "delete_endpoint", "get_endpoint", "list_endpoints", "promote_endpoint",
    "rollback_endpoint", "update_endpoint",
]  # fmt: skip


def _client(client: Context | None) -> Context:
    from mloop.context import current_context

    return client if client is not None else current_context()


def create_endpoint(
    name: str, models: str | Sequence[str], *, client: Context | None = None, **options: Any
) -> Endpoint:
    """Create endpoint ``name`` serving ``models`` (``"churn/3"``, ``["churn/3=90", "churn/4=10"]`` or
    ``"churn@production"`` with ``follow=True``) and start it on this machine; options as
    :func:`mloop.deployments.endpoints.create` (shadow, steps, policy, port, stream, collect ...)."""
    from mloop.deployments.endpoints import create

    return create(_client(client), name, [models] if isinstance(models, str) else list(models), **options)


def update_endpoint(name: str, *, client: Context | None = None, **changes: Any) -> Endpoint:
    """Change weights (``models=``), start a canary (``canary="churn/4"``), set the shadow or the policy."""
    from mloop.deployments.endpoints import update

    return update(_client(client), name, **changes)


def get_endpoint(name: str, *, client: Context | None = None) -> dict[str, Any]:
    """The endpoint's spec, status, whether it runs and its URL."""
    from mloop.deployments.endpoints import show

    return show(_client(client), name)


def list_endpoints(*, client: Context | None = None) -> list[Endpoint]:
    from mloop.deployments.endpoints import list_endpoints as listed

    return listed(_client(client))


def promote_endpoint(name: str, *, client: Context | None = None) -> Endpoint:
    """Finish the endpoint's rollout now: the canary takes all traffic."""
    from mloop.deployments.endpoints import promote

    return promote(_client(client), name)


def rollback_endpoint(name: str, *, client: Context | None = None) -> Endpoint:
    """Stop the rollout (or return to the previous version)."""
    from mloop.deployments.endpoints import rollback

    return rollback(_client(client), name)


def delete_endpoint(name: str, *, client: Context | None = None) -> Endpoint:
    from mloop.deployments.endpoints import delete

    return delete(_client(client), name)


def collected_data(name: str, *, client: Context | None = None, **options: Any) -> pa.Table:
    """The requests the endpoint collected (``since="1h"``, ``with_feedback=True`` ...) as a pyarrow Table."""
    from mloop.deployments.collected import read_collected

    return read_collected(_client(client), name, **options)

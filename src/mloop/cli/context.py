"""What every command shares: the global ``--uri``/``--artifacts`` options and run id arguments."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from mloop.tracking.client import Client

__all__ = ["FULL_ID_LENGTH", "Globals", "globals_of", "open_client", "resolve_run"]

FULL_ID_LENGTH = 32


@dataclass(frozen=True)
class Globals:
    """The root options, passed to :func:`mloop.workspace.open_workspace` (``None`` = resolve as usual)."""

    uri: str | None = None
    artifact_uri: str | None = None


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Globals) else Globals()


@contextmanager
def open_client(ctx: typer.Context) -> Iterator[Client]:
    """A :class:`~mloop.tracking.client.Client` over the workspace the global options select, closed after."""
    from mloop.tracking.client import Client

    g = globals_of(ctx)
    client = Client(g.uri, g.artifact_uri)
    try:
        yield client
    finally:
        client.close()


def resolve_run(client: Client, text: str) -> str:
    """A run id from ``<id>``, ``run:<id>`` or a unique start or end (8+ hex characters) of an id."""
    return client.resolve_run_id(text)

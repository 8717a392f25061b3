"""Endpoints as users manage them: create, update, list, show, status, logs, start, stop, promote, rollback,
delete (the ``mloop deploy`` commands and the SDK call these; each takes a :class:`~mloop.context.Context`).

:func:`create` resolves every model reference to a pinned version (an alias is followed only with
``follow=True``), checks the rollout policy, picks a free port when none is given (kept in the spec, so restarts
serve on the same port), stores the spec (``deployment.created``) and, unless ``start=False``, starts the
endpoint's supervisor on this machine and waits until it serves (:func:`start`). :func:`update` changes weights,
shadow, policy or starts a rollout (``canary=``); the running endpoint applies the new spec without dropping a
request. Every change is an event with the actor and the cause.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mloop.deployments.rollout import RolloutPolicy, parse_steps
from mloop.deployments.spec import DEFAULT_STICKY_HEADER, check_traffic, model_ref, parse_model_weight, versions_of
from mloop.deployments.supervisor import endpoint_dir
from mloop.entities import Endpoint, now_ms
from mloop.errors import InvalidInput, MloopError

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = [
    "create", "delete", "list_endpoints", "logs", "promote", "rollback", "show", "start", "stop",
    "supervisor_alive", "update",
]  # fmt: skip

_FRESH_MS = 15_000  # a supervisor that has not reported for this long is not running


def _pinned(context: Context, ref: str) -> str:
    from mloop.registry.loader import resolve_model

    return resolve_model(context, ref).ref


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _policy(steps: str | Sequence[float] | None, **fields: Any) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if v is not None}
    if steps is not None:
        values["steps"] = parse_steps(steps) if isinstance(steps, str) else tuple(float(s) for s in steps)
    return RolloutPolicy.from_dict(values).to_dict()


def create(
    context: Context, name: str, models: Sequence[str], *, follow: bool = False, shadow: str | None = None,
    shadow_percent: float = 100.0, sticky_header: str | None = None, steps: str | Sequence[float] | None = None,
    policy: dict[str, Any] | None = None, host: str = "127.0.0.1", port: int | None = None, workers: int = 1,
    stream: str | None = None, collect: bool = True, flush_interval: float = 1.0, start_now: bool = True,
    timeout: float = 120.0, cause: str = "mloop deploy create",
) -> Endpoint:  # fmt: skip
    """Create endpoint ``name`` serving ``models`` (``churn/3``, ``churn/3=90``, ``churn@production``)."""
    if not models:
        raise InvalidInput(f"Endpoint {name!r} needs a model: pass --model NAME/VERSION or NAME@ALIAS.")
    pairs = [parse_model_weight(m) for m in models]
    if follow and (len(pairs) != 1 or "@" not in pairs[0][0]):
        raise InvalidInput("--follow needs exactly one model given by alias, e.g. --model churn@production --follow.")
    traffic = check_traffic([(_pinned(context, ref), weight) for ref, weight in pairs])
    if not 0 <= shadow_percent <= 100:
        raise InvalidInput(f"--shadow-percent must be between 0 and 100, got {shadow_percent}.")
    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1, got {workers}.")
    if stream is not None:
        from mloop.deployments.streaming import parse_stream_url

        parse_stream_url(stream, name)  # a bad URL fails here, naming what is wrong
    spec: dict[str, Any] = {
        "traffic": traffic, "follow": pairs[0][0] if follow else None,
        "shadow": {"model": _pinned(context, model_ref(shadow)), "percent": float(shadow_percent)} if shadow else None,
        "sticky_header": (sticky_header or DEFAULT_STICKY_HEADER).lower(),
        "rollout": _policy(steps, **(policy or {})), "canary": None, "previous": None, "host": host,
        "port": port if port else _free_port(host), "workers": workers, "stream": stream,
        "collect": {"enabled": collect, "flush_interval": flush_interval},
    }  # fmt: skip
    endpoint = context.store.create_endpoint(name, spec=spec, actor=context.actor, cause=cause)
    return start(context, name, timeout=timeout) if start_now else endpoint


def update(
    context: Context, name: str, *, models: Sequence[str] | None = None, canary: str | None = None,
    shadow: str | None = None, shadow_percent: float | None = None, no_shadow: bool = False,
    steps: str | Sequence[float] | None = None, policy: dict[str, Any] | None = None,
    follow: bool | None = None, cause: str = "mloop deploy update",
) -> Endpoint:  # fmt: skip
    """Change endpoint ``name``: new weights (``models``), a rollout of ``canary`` by the endpoint's policy, the
    shadow, or the policy. The running endpoint applies it within a second, without dropping requests."""
    from mloop.deployments.controller import start_rollout

    endpoint = context.store.get_endpoint(name)
    spec = dict(endpoint.spec)
    if models:
        if spec.get("canary"):
            raise InvalidInput(f"Endpoint {name!r} is rolling out {spec['canary']['model']}; promote or roll it "
                               "back before setting weights by hand.")  # fmt: skip
        spec["traffic"] = check_traffic([(_pinned(context, ref), w) for ref, w in map(parse_model_weight, models)])
    if no_shadow:
        spec["shadow"] = None
    elif shadow is not None or shadow_percent is not None:
        current = spec.get("shadow") or {}
        target = _pinned(context, model_ref(shadow)) if shadow else current.get("model")
        if target is None:
            raise InvalidInput("--shadow-percent needs a shadow model: pass --shadow NAME/VERSION too.")
        percent = float(shadow_percent if shadow_percent is not None else current.get("percent", 100.0))
        if not 0 <= percent <= 100:
            raise InvalidInput(f"--shadow-percent must be between 0 and 100, got {percent}.")
        spec["shadow"] = {"model": target, "percent": percent}
    if steps is not None or policy:
        merged = {**(spec.get("rollout") or {}), **(policy or {})}
        spec["rollout"] = _policy(steps if steps is not None else merged.pop("steps", None), **merged)
    if follow is not None:
        spec["follow"] = (spec.get("follow") or model_ref(f"{_model_name(spec)}@production")) if follow else None
    if spec != dict(endpoint.spec):
        endpoint = context.store.update_endpoint(name, spec=spec, actor=context.actor, cause=cause,
                                                 expected_generation=endpoint.generation)  # fmt: skip
    if canary is not None:
        endpoint = start_rollout(context, endpoint, _pinned(context, model_ref(canary)), actor=context.actor,
                                 cause=cause)  # fmt: skip
    return endpoint


def _model_name(spec: dict[str, Any]) -> str:
    return str(spec["traffic"][0]["model"]).removeprefix("model:").split("/")[0]


def promote(context: Context, name: str, *, cause: str = "mloop deploy promote") -> Endpoint:
    """Finish the rollout in progress now: the canary takes 100%."""
    from mloop.deployments.controller import finish_rollout

    endpoint = context.store.get_endpoint(name)
    return finish_rollout(context, endpoint, promote=True, actor=context.actor, cause=cause)


def rollback(context: Context, name: str, *, cause: str = "mloop deploy rollback") -> Endpoint:
    """Stop the rollout in progress (the stable version takes 100%), or return to the previous version."""
    from mloop.deployments.controller import finish_rollout

    endpoint = context.store.get_endpoint(name)
    return finish_rollout(context, endpoint, promote=False, actor=context.actor, cause=cause)


def list_endpoints(context: Context) -> list[Endpoint]:
    from mloop.entities import iter_pages

    return list(iter_pages(lambda cursor: context.store.list_endpoints(cursor=cursor)))


def supervisor_alive(endpoint: Endpoint) -> bool:
    """Whether the endpoint's supervisor reported recently and its process exists on this machine."""
    pid = endpoint.status.get("supervisor_pid")
    if not pid or endpoint.status.get("phase") == "stopped" or endpoint.status_at is None:
        return False
    if now_ms() - endpoint.status_at > _FRESH_MS:
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def show(context: Context, name: str) -> dict[str, Any]:
    """The endpoint (spec and reported status) with whether it runs and where to call it."""
    endpoint = context.store.get_endpoint(name)
    out = endpoint.to_dict()
    spec = endpoint.spec
    out["running"] = supervisor_alive(endpoint)
    out["url"] = None if spec.get("stream") else f"http://{spec.get('host', '127.0.0.1')}:{spec['port']}"
    out["versions"] = versions_of(spec)
    return out


def start(context: Context, name: str, *, timeout: float = 120.0) -> Endpoint:
    """Start the endpoint's supervisor on this machine (if not running) and wait until it serves the current
    spec; a start that fails raises with the end of the server log."""
    endpoint = context.store.get_endpoint(name)
    supervisor = endpoint.status.get("supervisor_pid")
    if not supervisor_alive(endpoint):
        folder = endpoint_dir(context, name)
        folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLOOP_URI": context.settings.store_uri, "MLOOP_ARTIFACT_URI": context.artifacts.uri}
        with open(folder / "supervisor.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "mloop.deployments.supervisor", name], stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )  # fmt: skip
        # reap it when it ends (no zombie while this process lives); it outlives this process otherwise
        threading.Thread(target=process.wait, name=f"mloop-reap-{name}", daemon=True).start()
        supervisor = process.pid  # wait for its own report, not a stale one of a supervisor that died
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        endpoint = context.store.get_endpoint(name)
        status = endpoint.status
        if (
            status.get("supervisor_pid") == supervisor
            and status.get("phase") == "running"
            and (endpoint.spec.get("stream") or status.get("generation_served") == endpoint.generation)
        ):
            return endpoint
        if status.get("phase") == "crashed" and int(status.get("restarts", 0)) >= 3:
            break
        time.sleep(0.2)
    raise MloopError(f"Endpoint {name!r} did not start within {timeout:g} s (status: {dict(endpoint.status)}). "
                     f"Server log:\n{logs(context, name, lines=30)}\nSee `mloop deploy logs {name}`.")  # fmt: skip


def stop(context: Context, name: str, *, timeout: float = 60.0) -> Endpoint:
    """Stop the endpoint's processes on this machine (in-flight requests finish; the collector flushes)."""
    endpoint = context.store.get_endpoint(name)
    if supervisor_alive(endpoint):
        os.kill(int(endpoint.status["supervisor_pid"]), signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            endpoint = context.store.get_endpoint(name)
            if endpoint.status.get("phase") == "stopped":
                break
            time.sleep(0.2)
    return endpoint


def delete(context: Context, name: str, *, cause: str = "mloop deploy delete") -> Endpoint:
    """Stop the endpoint and delete it (its collected data stays in the artifact store)."""
    stop(context, name)
    return context.store.delete_endpoint(name, actor=context.actor, cause=cause)


def logs(context: Context, name: str, *, lines: int = 100, which: str = "server") -> str:
    """The last ``lines`` lines of the endpoint's server (or supervisor) log on this machine."""
    if which not in ("server", "supervisor"):
        raise InvalidInput(f"Log {which!r} is not one of ['server', 'supervisor'].")
    context.store.get_endpoint(name)  # NotFound names the endpoint
    path = endpoint_dir(context, name) / f"{which}.log"
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 200 * max(lines, 1)))
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])

"""Shared fixtures: isolated workspaces, and real PostgreSQL databases (created and dropped per test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.testing import postgres_available, temporary_postgres_database
from mloop.tracking.client import Client


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the developer's ~/.mloop or inherit their MLOOP_* settings."""
    home = tmp_path_factory.mktemp("home")
    for var in ("MLOOP_URI", "MLOOP_ARTIFACT_URI", "MLOOP_USER", "MLOOP_STRICT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(home / ".mloop"))
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture(autouse=True)
def _fresh_tracking_context() -> Iterator[None]:
    """Each test starts with no active run and no fluent client (the one ContextVar is reset after it)."""
    from mloop.context import _STATE
    from mloop.guard import _TAINT

    token, taint = _STATE.set(None), _TAINT.set(frozenset())
    yield
    _TAINT.reset(taint)
    _STATE.reset(token)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    """A client on a fresh SQLite workspace in ``tmp_path / "ws"``, also used by the fluent API."""
    import mloop

    c = Client(workspace=mloop.init_workspace(tmp_path / "ws"))
    mloop.use_client(c)
    yield c
    c.close()


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    reason = postgres_available()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}: the PostgreSQL contract suite must run in CI.")
        pytest.skip(reason)
    return "ok"


@pytest.fixture
def postgres_uri(postgres_admin: str) -> Iterator[str]:
    with temporary_postgres_database() as uri:
        yield uri


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mloop.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest) -> str:
    name = "sqlite_uri" if request.param == "sqlite" else "postgres_uri"
    return str(request.getfixturevalue(name))

"""Hostile inputs against the ref parser, the filter parser (through real stores), the store API and the CLI.

Huge and negative integers, ``1e999``, ``nan``, NUL bytes, bytes that are not UTF-8 (decoded with
``surrogateescape``), deep parentheses and absurdly long strings must give either a result or one of mloop's own
errors (:class:`~mloop.errors.MloopError`), on SQLite and PostgreSQL alike. The CLI must exit cleanly: exit code
0, or a non-zero code with a message and no traceback.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mloop.entities import ManifestEntry, Metric, ModelFile
from mloop.errors import MloopError
from mloop.refs import parse_ref
from mloop.store import Store, open_store
from mloop.testing import temporary_postgres_database

SURROGATE = b"caf\xe9".decode("utf-8", "surrogateescape")
SPECIAL = [
    "", " ", "\x00", "a\x00b", SURROGATE, "\udcff", "1e999", "-1e999", "nan", "inf", "1e19", "-1e400", "0", "-1",
    "99999999999999999999", "-99999999999999999999", "9223372036854775807", "9223372036854775808", "2147483648",
    "9" * 5000, "(" * 2000, ")" * 40, "'", '"', "`", "\\", "%", "x" * 1200, "a" * 251, "tab", "m1",
]  # fmt: skip
HUGE_INTS = [2**63, 2**63 - 1, -(2**63) - 1, 10**20, 10**400, 2**31, 2**31 - 1, 0, -1]

hostile = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=20),
    st.binary(max_size=12).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.integers().map(str),
)
integers = st.one_of(st.sampled_from(HUGE_INTS), st.integers())
PREFIXES = [
    "run:", "run:" + "a" * 32 + "/", "data:", "data:tab/", "data:tab@", "model:", "model:m1/", "model:m1@",
    "experiment:", "pipeline:p/", "deployment:",
]  # fmt: skip
refs = st.one_of(hostile, st.builds(str.__add__, st.sampled_from(PREFIXES), hostile))


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "").replace("'", "") + "'"


literal = st.one_of(
    st.sampled_from(["1e999", "-1e999", "1e19", "99999999999999999999", "9" * 400, "0.5", "-1e400", "1"]),
    st.floats().map(repr),
    st.integers().map(str),
    hostile.map(_quote),
)
value = st.one_of(literal, st.lists(literal, min_size=1, max_size=4).map(lambda xs: "(" + ", ".join(xs) + ")"))
field = st.one_of(
    st.sampled_from(["metrics.acc", "params.lr", "tags.team", "start_time", "end_time", "status", "name", "run_id"]),
    hostile.map(lambda h: "metrics.`" + h.replace("`", "") + "`"),
)
comparison = st.builds("{} {} {}".format, field, st.sampled_from(["=", "!=", "<", ">=", "like", "in", "not in"]), value)
filters = st.one_of(
    hostile,
    st.recursive(
        comparison,
        lambda inner: st.one_of(
            st.builds("{} and {}".format, inner, inner),
            st.builds("({}) or {}".format, inner, inner),
            st.builds(lambda text, n: "(" * n + text + ")" * n, inner, st.integers(0, 3000)),
        ),
        max_leaves=5,
    ),
)
_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
MANY = settings(max_examples=100, deadline=None, suppress_health_check=_QUIET)  # store calls take milliseconds
FEW = settings(max_examples=30, deadline=None, suppress_health_check=_QUIET)  # a CLI command takes ~50 ms


def _attempt(call: Callable[[], Any]) -> None:
    """Succeed, or fail with one of mloop's own errors; anything else fails the test."""
    with contextlib.suppress(MloopError):
        call()


# the ref parser -------------------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(text=refs)
@example(text="data:x/" + "9" * 5000)
@example(text="model:m1/99999999999999999999")
@example(text="run:" + "a" * 32 + "/\x00")
def test_parse_ref_gives_a_ref_or_invalid_input(text: str) -> None:
    _attempt(lambda: parse_ref(text))
    _attempt(lambda: parse_ref(text, default_kind="model"))


# the stores ----------------------------------------------------------------------------------------------------
@dataclass
class Seeded:
    store: Store
    run_id: str
    experiment_id: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One seeded store per database for the module: a run with a param, a tag and a metric, data:tab/1, model:m1/1."""
    if request.param == "sqlite":
        yield from _seed(f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'mloop.db'}")
        return
    request.getfixturevalue("postgres_admin")  # skips (or fails on CI) without PostgreSQL
    with temporary_postgres_database() as uri:
        yield from _seed(uri)


def _seed(uri: str) -> Iterator[Seeded]:
    store = open_store(uri)
    exp = store.create_experiment("e", actor="me")
    run = store.create_run(exp.id, name="r", actor="me", params={"lr": "0.1"}, tags={"team": "ml"})
    store.log_batch(run.id, metrics=[Metric("acc", 0.9, 0, 1)])
    digest = "sha256:" + "0" * 64
    store.create_dataset_version("tab", files=[ManifestEntry("a.csv", 1, digest)], manifest_digest=digest, actor="me")
    store.create_model_version("m1", flavor="python", files=[ModelFile("m", 1, digest)], actor="me")
    yield Seeded(store, run.id, exp.id)
    store.close()


@MANY
@given(text=filters, order=st.one_of(st.none(), field, hostile))
@example(text="start_time > 1e999", order=None)
@example(text="start_time = 99999999999999999999", order=None)
@example(text="params.lr = 'a\x00b'", order=None)
@example(text="metrics.`a\x00b` > 1", order=None)
@example(text="(" * 2000 + "metrics.acc > 1" + ")" * 2000, order=None)
def test_search_gives_runs_or_an_mloop_error(seeded: Seeded, text: str, order: str | None) -> None:
    _attempt(lambda: seeded.store.search_runs(filter=text, order_by=[] if order is None else [order]))


CALLS: list[Callable[[Seeded, str, int], object]] = [
    lambda s, h, n: s.store.get_dataset_version("tab", n),
    lambda s, h, n: s.store.get_dataset_version(h, alias=h),
    lambda s, h, n: s.store.get_model_version("m1", n),
    lambda s, h, n: s.store.set_dataset_alias("tab", h, n, actor="me"),
    lambda s, h, n: s.store.move_model_alias("m1", h, n, actor="me"),
    lambda s, h, n: s.store.get_experiment_by_name(h),
    lambda s, h, n: s.store.get_run(h),
    lambda s, h, n: s.store.get_metric_history(s.run_id, h),
    lambda s, h, n: s.store.log_batch(s.run_id, params={h: h}, tags={h: h}),
    lambda s, h, n: s.store.log_batch(s.run_id, metrics=[Metric(h or "k", 1.0, n, n)]),
    lambda s, h, n: s.store.log_batch(s.run_id, metrics=[Metric("k", float(n) if abs(n) < 1e300 else math.inf, 0, 1)]),
    lambda s, h, n: s.store.create_run(s.experiment_id, name=h, actor=h, start_time=n),
    lambda s, h, n: s.store.list_events(types=[h], subject=h, after=n),
    lambda s, h, n: s.store.list_events(limit=n),
    lambda s, h, n: s.store.search_runs(max_results=n, cursor=h or None),
    lambda s, h, n: s.store.list_dataset_versions("tab", cursor=h or None),
    lambda s, h, n: s.store.list_lineage(h),
    lambda s, h, n: s.store.add_lineage(h, "data:tab/1", "used", actor="me"),
    lambda s, h, n: s.store.purge_deleted_runs(actor="me", older_than_ms=n),
]


@MANY
@given(which=st.integers(0, len(CALLS) - 1), text=hostile, number=integers)
@example(which=0, text="", number=99999999999999999999)
@example(which=8, text="a\x00b", number=0)
@example(which=9, text="k", number=2**63)
def test_store_methods_give_results_or_mloop_errors(seeded: Seeded, which: int, text: str, number: int) -> None:
    _attempt(lambda: CALLS[which](seeded, text, number))


# the CLI ---------------------------------------------------------------------------------------------------------
COMMANDS = [
    ["runs", "show", "{}"], ["runs", "list", "-f", "{}"], ["runs", "list", "-o", "{}"], ["runs", "list", "-e", "{}"],
    ["runs", "list", "-n", "{}"], ["runs", "compare", "{}"], ["runs", "artifacts", "{}"], ["data", "show", "{}"],
    ["data", "versions", "{}"], ["data", "alias", "tab", "{}", "prod"], ["data", "alias", "tab", "1", "{}"],
    ["data", "diff", "{}", "data:tab/1"], ["data", "show", "data:tab/1", "--files", "{}"], ["models", "show", "{}"],
    ["models", "versions", "{}"], ["models", "promote", "m1", "{}", "--to", "prod"], ["lineage", "{}"],
    ["events", "list", "-s", "{}"], ["events", "list", "-t", "{}"], ["events", "list", "-n", "{}"],
]  # fmt: skip


@pytest.fixture
def cli_workspace(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from mloop.tracking.client import Client
    from mloop.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", store_uri=store_uri, artifact_uri=str(tmp_path / "artifacts"))
    client = Client(workspace=ws)
    with client.start_run("iris", "alpha", params={"lr": 0.1}) as run:
        run.log_metric("acc", 0.5)
    client.close()
    digest = "sha256:" + "0" * 64
    ws.store.create_dataset_version("tab", files=[ManifestEntry("a.csv", 1, digest)], manifest_digest=digest,
                                    actor="me")  # fmt: skip
    ws.store.create_model_version("m1", flavor="python", files=[ModelFile("m", 1, digest)], actor="me")
    monkeypatch.setenv("MLOOP_URI", str(ws.settings.store_uri))
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", str(ws.settings.artifact_uri))
    monkeypatch.chdir(tmp_path)
    yield
    ws.close()


@FEW
@given(command=st.sampled_from(COMMANDS), arg=st.one_of(refs, filters))
@example(command=["data", "show", "{}"], arg="data:tab/99999999999999999999")
@example(command=["runs", "list", "-f", "{}"], arg="start_time > 1e999")
@example(command=["data", "alias", "tab", "{}", "prod"], arg="99999999999999999999")
def test_cli_exits_cleanly(cli_workspace: None, command: list[str], arg: str) -> None:
    from typer.testing import CliRunner

    from mloop.cli.app import app

    result = CliRunner().invoke(app, [arg if part == "{}" else part for part in command], prog_name="mloop")
    detail = f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), detail
    assert "Traceback" not in result.output, detail
    if result.exit_code != 0:
        assert result.stderr.strip(), detail

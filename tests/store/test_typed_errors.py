"""Hostile inputs give typed errors that name the (truncated) value and the fix, on SQLite and PostgreSQL alike.

Huge integers, non-finite numbers, NUL bytes, strings that are not UTF-8, deep nesting and absurdly long refs
must never reach the database as raw ``OverflowError`` / ``DataError`` / ``RecursionError`` / ``ValueError``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.config import resolve_settings
from mloop.entities import ManifestEntry, Metric, ModelFile
from mloop.errors import FilterSyntaxError, InvalidInput, NotFound, WorkspaceError
from mloop.refs import MAX_REF_LENGTH, MAX_VERSION, parse_ref
from mloop.store import Store, open_store
from mloop.store.query import MAX_FILTER_COMPARISONS, MAX_FILTER_DEPTH, MAX_FILTER_VALUES, parse_filter, parse_order_by
from mloop.testing import temporary_postgres_database
from mloop.workspace import init_workspace

HUGE = 99999999999999999999
NUL = "a\x00b"
SURROGATE = b"caf\xe9".decode("utf-8", "surrogateescape")  # a Latin-1 byte read as UTF-8 with surrogateescape


def _short(exc: pytest.ExceptionInfo[BaseException], limit: int = 600) -> str:
    """The message, checked to stay readable (the bad value is truncated, not echoed whole)."""
    text = str(exc.value)
    assert len(text) < limit, text
    return text


# references ---------------------------------------------------------------------------------------------------
def test_ref_with_thousands_of_digits_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_ref("data:x/" + "9" * 5000)
    assert "data:x/999" in _short(exc) and "..." in str(exc.value)


@pytest.mark.parametrize("text", ["data:tab/99999999999999999999", "model:m1/9223372036854775808"])
def test_ref_version_outside_64_bits_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_ref(text)
    assert text in _short(exc) and f"between 1 and {MAX_VERSION}" in str(exc.value)


def test_largest_version_parses() -> None:
    assert parse_ref(f"model:m1/{MAX_VERSION}").version == 2**63 - 1


@pytest.mark.parametrize(
    "text",
    ["experiment:" + "a" * (MAX_REF_LENGTH + 1), "data:" + "a" * 251, "model:m@" + "a" * 101,
     "run:" + "a" * 32 + "/x\x00y", "run:" + "a" * 32 + "/" + SURROGATE],
)  # fmt: skip
def test_over_long_refs_and_bad_paths_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_ref(text)
    _short(exc)


# the filter parser ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("start_time > 1e999", "1e999"),
        ("metrics.acc > -1e400", "-1e400"),
        ("metrics.acc in (1, 1e999)", "1e999"),
        ("start_time = 99999999999999999999", "99999999999999999999"),
        ("end_time < 1e19", "1e19"),
        ("params.model = 'a\x00b'", "NUL"),
        ("metrics.`a\x00b` > 1", "NUL"),
        ("tags.x like '\x00'", "NUL"),
        (f"params.model = '{SURROGATE}'", "UTF-8"),
        ("(" * 2000 + "metrics.a > 1" + ")" * 2000, f"{MAX_FILTER_DEPTH}"),
        (" and ".join(["metrics.a > 1"] * (MAX_FILTER_COMPARISONS + 1)), f"{MAX_FILTER_COMPARISONS}"),
        ("params.a in (" + ",".join(["'x'"] * (MAX_FILTER_VALUES + 1)) + ")", f"{MAX_FILTER_VALUES}"),
    ],
)
def test_hostile_filters_are_filter_syntax_errors(text: str, says: str) -> None:
    with pytest.raises(FilterSyntaxError) as exc:
        parse_filter(text)
    assert says in _short(exc, 1000)


def test_nesting_up_to_the_limit_parses() -> None:
    depth = MAX_FILTER_DEPTH
    assert parse_filter("(" * depth + "metrics.a > 1" + ")" * depth) is not None


def test_long_numbers_do_not_make_the_tokenizer_quadratic() -> None:
    started = time.perf_counter()
    with pytest.raises(FilterSyntaxError):
        parse_filter("metrics.a > " + "9" * 30000 + "x")
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("item", ["metrics.`a\x00b` DESC", f"params.{SURROGATE}", "metrics.`x`"])
def test_hostile_order_by_is_filter_syntax_error(item: str) -> None:
    items = [item] if "x" not in item else ["metrics.x"] * 100
    with pytest.raises(FilterSyntaxError) as exc:
        parse_order_by(items)
    _short(exc)


# the stores -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store per database for the whole module (creating a PostgreSQL database per test is slow)."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path_factory.mktemp('typed') / 'mloop.db'}")
        yield s
        s.close()
        return
    request.getfixturevalue("postgres_admin")  # skips (or fails on CI) without PostgreSQL
    with temporary_postgres_database() as uri:
        s = open_store(uri)
        yield s
        s.close()


@pytest.fixture
def run_id(store: Store) -> str:
    """A fresh run (params lr=0.1, nothing else) in experiment ``e``."""
    exp = store.get_or_create_experiment("e", actor="me")
    return store.create_run(exp.id, name="r", actor="me", params={"lr": "0.1"}).id


@pytest.mark.parametrize(
    "filter",
    ["start_time > 1e999", "start_time = 99999999999999999999", "params.lr = 'x\x00y'", "metrics.`a\x00b` > 1",
     "(" * 2000 + "metrics.a > 1" + ")" * 2000],
)  # fmt: skip
def test_search_refuses_hostile_filters(store: Store, run_id: str, filter: str) -> None:
    with pytest.raises(FilterSyntaxError):
        store.search_runs(filter=filter)


@pytest.mark.parametrize(
    "batch",
    [
        {"params": {"p": NUL}},
        {"params": {NUL: "v"}},
        {"params": {"p": SURROGATE}},
        {"tags": {"t": NUL}},
        {"tags": {SURROGATE: "v"}},
        {"metrics": [Metric(NUL, 1.0, 0, 1)]},
        {"metrics": [Metric("m", 1.0, 2**63, 1)]},
        {"metrics": [Metric("m", 1.0, 0, -(2**63) - 1)]},
    ],
)
def test_log_batch_refuses_nul_surrogates_and_huge_ints(store: Store, run_id: str, batch: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as exc:
        store.log_batch(run_id, **batch)  # type: ignore[arg-type]
    _short(exc)
    run = store.get_run(run_id)
    assert run.params == {"lr": "0.1"} and run.tags == {} and run.metrics == {}  # nothing of the batch was written


def test_end_run_and_create_run_refuse_bad_values(store: Store, run_id: str) -> None:
    exp = store.get_experiment_by_name("e")
    with pytest.raises(InvalidInput):
        store.create_run(exp.id, name="r2", actor="me", start_time=HUGE)
    with pytest.raises(InvalidInput):
        store.create_run(exp.id, name=NUL, actor="me")
    with pytest.raises(InvalidInput):
        store.create_run(exp.id, name="r3", actor="me", tags={"t": NUL})
    with pytest.raises(InvalidInput):
        store.end_run(run_id, "FINISHED", actor="me", end_time=HUGE)  # type: ignore[arg-type]
    assert store.get_run(run_id).status.value == "RUNNING"


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_lookups_refuse_nul_and_surrogates(store: Store, run_id: str, bad: str) -> None:
    for call in (
        lambda: store.get_experiment_by_name(bad),
        lambda: store.create_experiment(bad, actor="me"),
        lambda: store.get_run(bad),
        lambda: store.get_metric_history(run_id, bad),
        lambda: store.list_events(types=[bad]),
        lambda: store.list_events(subject=bad),
        lambda: store.search_runs(experiment_ids=[bad]),
        lambda: store.get_dataset_version(bad),
        lambda: store.get_model_version("m", alias=bad),
        lambda: store.list_lineage(bad),
        lambda: store.get_setting(bad),
    ):
        with pytest.raises(InvalidInput) as exc:
            call()
        _short(exc)


def test_integers_outside_64_bits_are_invalid_input(store: Store, run_id: str) -> None:
    for call in (
        lambda: store.get_dataset_version("tab", HUGE),
        lambda: store.get_model_version("m1", HUGE),
        lambda: store.list_events(after=HUGE),
        lambda: store.list_events(limit=HUGE),
        lambda: store.list_experiments(limit=HUGE),
        lambda: store.search_runs(max_results=HUGE),
        lambda: store.purge_deleted_runs(actor="me", older_than_ms=HUGE),
    ):
        with pytest.raises(InvalidInput) as exc:
            call()
        assert "between" in _short(exc)


def test_versions_beyond_the_version_column_are_not_found(store: Store) -> None:
    """Versions up to 2**63-1 are valid references; numbers no store can hold simply do not exist."""
    store.create_dataset_version(
        "tab", files=[ManifestEntry("a.csv", 1, "sha256:" + "0" * 64)], manifest_digest="sha256:" + "1" * 64,
        actor="me",
    )  # fmt: skip
    store.create_model_version("m1", flavor="python", files=[ModelFile("m", 1, "sha256:" + "2" * 64)], actor="me")
    for call in (
        lambda: store.get_dataset_version("tab", MAX_VERSION),
        lambda: store.get_model_version("m1", 2**31),
        lambda: store.set_dataset_alias("tab", "prod", 2**40, actor="me"),
        lambda: store.delete_dataset_version("tab", 2**31, actor="me"),
        lambda: store.move_model_alias("m1", "prod", 2**40, actor="me"),
    ):
        with pytest.raises(NotFound) as exc:
            call()
        assert "has no version" in _short(exc)
    with pytest.raises(InvalidInput):
        store.set_dataset_alias("tab", "a" * 101, 1, actor="me")


# the SDK and the CLI -------------------------------------------------------------------------------------------
def test_load_model_with_a_huge_version_is_invalid_input(tmp_path: Path) -> None:
    import mloop
    from mloop.tracking.client import Client

    client = Client(workspace=init_workspace(tmp_path / "ws"))
    try:
        with pytest.raises(InvalidInput) as exc:
            mloop.load_model("model:m1/99999999999999999999", client=client)
        assert "99999999999999999999" in _short(exc)
    finally:
        client.close()


def test_cli_data_show_with_a_huge_version_exits_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mloop.cli.app import app

    monkeypatch.chdir(tmp_path)
    init_workspace(tmp_path)
    runner = CliRunner()
    for args in (["data", "show", "data:tab/99999999999999999999"], ["runs", "list", "-f", "start_time > 1e999"]):
        result = runner.invoke(app, args, prog_name="mloop")
        assert result.exit_code == 2, (result.output, result.exception)
        assert "Traceback" not in result.output and "error:" in result.stderr


# the workspace file --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b'[store]\nuri = "caf\xe9"\n', b"\xff\xfe[\x00s\x00"])
def test_workspace_file_that_is_not_utf8_is_a_workspace_error(tmp_path: Path, content: bytes) -> None:
    init_workspace(tmp_path / "proj")
    config = tmp_path / "proj" / ".mloop" / "config.toml"
    config.write_bytes(content)
    with pytest.raises(WorkspaceError) as exc:
        resolve_settings(cwd=tmp_path / "proj", env={})
    assert str(config) in _short(exc) and "UTF-8" in str(exc.value)


@pytest.mark.parametrize("uri", ["sqlite:///x\x00.db", "sqlite:///" + SURROGATE])
def test_uris_with_nul_or_not_utf8_are_invalid_input(tmp_path: Path, uri: str) -> None:
    for call in (
        lambda: resolve_settings(uri, cwd=tmp_path, env={}),
        lambda: resolve_settings(cwd=tmp_path, env={"MLOOP_URI": uri}),
        lambda: resolve_settings("sqlite:///ok.db", uri.replace("sqlite:///", ""), cwd=tmp_path, env={}),
    ):
        with pytest.raises(InvalidInput) as exc:
            call()
        assert "NUL byte or text that is not UTF-8" in _short(exc)


def test_paths_no_file_system_can_hold_are_refused(tmp_path: Path) -> None:
    from mloop.datasets.snapshot import scan
    from mloop.workspace import init_workspace

    with pytest.raises(InvalidInput, match="NUL byte"):
        init_workspace(str(tmp_path / "a\x00b"))
    with pytest.raises(InvalidInput, match="NUL byte"):
        scan(str(tmp_path / "t\x00.csv"))
    with pytest.raises(InvalidInput, match="not UTF-8"):
        scan(str(tmp_path) + "/\udcff.csv")

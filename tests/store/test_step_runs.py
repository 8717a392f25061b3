"""The two store methods of the pipeline cache, on every implementation: the direct SQLite store (``sqlite3``
alone), the SqlStore on SQLite, and PostgreSQL.

``record_finished_runs`` must write what ``create_run`` + ``add_lineage`` + ``end_run`` write for each run (rows,
lineage, events and their order), in one transaction; ``recent_tagged_runs`` must answer what the equivalent
``search_runs`` answers.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mloop.entities import LineageEdge, RunRecord, RunStatus, new_id
from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.store import open_store
from mloop.store.direct import DirectSqliteStore
from mloop.store.sql import SqlStore
from mloop.store.sql.stepchecks import tagged_filter

ME = "tester"
LONG = "v" * 230  # longer than the indexed prefix of tag values (200)


@pytest.fixture(params=["direct", "sqlalchemy", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "postgresql":
        s: Any = open_store(request.getfixturevalue("postgres_uri"))
    else:
        uri = f"sqlite:///{tmp_path / 'mloop.db'}"
        SqlStore(uri).close()
        s = open_store(uri) if request.param == "direct" else SqlStore(uri)
        assert isinstance(s, DirectSqliteStore if request.param == "direct" else SqlStore)
    yield s
    s.close()


def _events(store: Any, after: int) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.type, e.subject, e.payload) for e in store.list_events(after=after, limit=1000).items]


def _last(store: Any) -> int:
    items = store.list_events(limit=100_000).items
    return items[-1].id if items else 0


def _comparable(run: RunRecord) -> tuple[Any, ...]:
    return (run.experiment_id, run.name, run.status, run.parent_id, run.actor, run.environment_digest, run.deleted,
            dict(run.params), dict(run.tags), dict(run.metrics), run.end_time is not None)  # fmt: skip


def test_record_finished_runs_writes_what_the_calls_one_by_one_write(store: Any) -> None:
    exp = store.create_experiment("e", actor=ME).id
    parent = store.create_run(exp, name="p", actor=ME).id
    # one by one: two step runs, the second with lineage from the first and from the parent
    before = _last(store)
    one = store.create_run(exp, name=" p.a ", actor=ME, parent_id=parent, params={"n": "1"},
                           tags={"mloop.step": "a", "long": LONG})  # fmt: skip
    store.end_run(one.id, RunStatus.FINISHED, actor=ME)
    two = store.create_run(exp, name="p.b", actor=ME, parent_id=parent, tags={"mloop.step": "b"})
    for src in (f"run:{one.id}", f"run:{parent}"):
        store.add_lineage(src, two.ref, "pipeline_input", actor=ME)
    store.end_run(two.id, RunStatus.FINISHED, actor=ME)
    by_call = _events(store, before)
    # batched: the same two runs, in one call
    before = _last(store)
    a = RunRecord(new_id(), exp, " p.a ", RunStatus.FINISHED, 5, 5, parent, ME, params={"n": "1"},
                  tags={"mloop.step": "a", "long": LONG})  # fmt: skip
    b = RunRecord(new_id(), exp, "p.b", RunStatus.FINISHED, 6, 6, parent, ME, tags={"mloop.step": "b"})
    edges = [LineageEdge(a.ref, b.ref, "pipeline_input", ME, 6), LineageEdge(f"run:{parent}", b.ref,
                                                                              "pipeline_input", ME, 6)]  # fmt: skip
    store.record_finished_runs([a, b], lineage=edges, actor=ME)
    batched = _events(store, before)
    ids = {one.id: "A", two.id: "B", a.id: "A", b.id: "B"}

    def same(events: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
        out = []
        for type_, subject, payload in events:
            text, body = subject, payload
            for real, label in ids.items():
                text = text.replace(real, label)
                body = {k: v.replace(real, label) if isinstance(v, str) else v for k, v in body.items()}
            out.append((type_, text, body))
        return out

    assert same(batched) == same(by_call)
    assert [t for t, _, _ in batched] == ["run.started", "run.finished", "run.started", "lineage.recorded",
                                          "lineage.recorded", "run.finished"]  # fmt: skip
    for old, new in ((one.id, a.id), (two.id, b.id)):
        assert _comparable(store.get_run(new)) == _comparable(store.get_run(old))
    got = store.get_run(b.id)
    assert (got.start_time, got.end_time) == (6, 6)
    assert {(e.source, e.relation) for e in store.list_lineage(b.ref, direction="up")} == {
        (a.ref, "pipeline_input"), (f"run:{parent}", "pipeline_input")}  # fmt: skip
    children = store.search_runs(experiment_ids=[exp], filter="tags.`mloop.step` = 'a'").items
    assert {r.id for r in children} == {one.id, a.id}


def test_record_finished_runs_is_all_or_nothing(store: Any) -> None:
    exp = store.create_experiment("e", actor=ME).id
    parent = store.create_run(exp, name="p", actor=ME).id
    good = RunRecord(new_id(), exp, "ok", RunStatus.FINISHED, 1, 2, parent, ME)
    before = _last(store)
    orphan = RunRecord(new_id(), exp, "orphan", RunStatus.FINISHED, 1, 2, "f" * 32, ME)
    with pytest.raises(NotFound, match="f" * 32):
        store.record_finished_runs([good, orphan], actor=ME)
    with pytest.raises(NotFound, match="0" * 32):
        store.record_finished_runs([good, RunRecord(new_id(), "0" * 32, "x", RunStatus.FINISHED, 1, 2)], actor=ME)
    with pytest.raises(InvalidInput, match="final status"):
        store.record_finished_runs([good, RunRecord(new_id(), exp, "x", RunStatus.RUNNING, 1)], actor=ME)
    with pytest.raises(InvalidInput, match="does not end at one of the runs"):
        store.record_finished_runs([good], lineage=[LineageEdge(good.ref, f"run:{parent}", "x", ME, 1)], actor=ME)
    with pytest.raises(InvalidInput, match="NUL"):
        store.record_finished_runs([RunRecord(new_id(), exp, "x", RunStatus.FINISHED, 1, 2, tags={"k": "a\x00"})],
                                   actor=ME)  # fmt: skip
    assert _events(store, before) == []
    assert [r.id for r in store.search_runs(experiment_ids=[exp]).items] == [parent]
    store.record_finished_runs([good], actor=ME)
    with pytest.raises(Conflict, match="exists already"):
        store.record_finished_runs([RunRecord(new_id(), exp, "new", RunStatus.FINISHED, 1, 2), good], actor=ME)
    assert len(store.search_runs(experiment_ids=[exp]).items) == 2
    store.record_finished_runs([], actor=ME)  # nothing to write: no transaction, no event


def test_recent_tagged_runs_answers_what_search_runs_answers(store: Any) -> None:
    exp, other = store.create_experiment("e", actor=ME).id, store.create_experiment("o", actor=ME).id
    made = []
    for i in range(12):
        tags = {"mloop.pipeline": "chain" if i % 3 else "other", "kind": "step" if i % 4 else "pipeline"}
        if i % 5 == 0:
            tags["mloop.pipeline"] = "chain" + LONG if i else LONG  # long values: prefix + rest compared
        if i == 11:
            tags["kind"] = "it's \\ 'quoted'"
        run = store.create_run(other if i == 7 else exp, name=f"r{i}", actor=ME, tags=tags, start_time=100 + i % 4)
        made.append(run.id)
        if i != 9:  # one left RUNNING
            store.end_run(run.id, RunStatus.FAILED if i == 10 else RunStatus.FINISHED, actor=ME)
    store.delete_run(made[2], actor=ME)
    assert [r.name for r in store.recent_tagged_runs(exp, {"kind": "it's \\ 'quoted'"}, limit=5)] == ["r11"]
    for tags in ({"mloop.pipeline": "chain", "kind": "step"}, {"mloop.pipeline": "chain"},
                 {"mloop.pipeline": "chain" + LONG}, {"mloop.pipeline": LONG, "kind": "pipeline"},
                 {"kind": "it's \\ 'quoted'"}):  # fmt: skip
        for limit in (1, 3, 50):
            want = store.search_runs(experiment_ids=[exp], filter=tagged_filter(tags), order_by=["start_time DESC"],
                                     max_results=limit).items  # fmt: skip
            got = store.recent_tagged_runs(exp, tags, limit=limit)
            assert got == want, (tags, limit)
    newest = [r.name for r in store.recent_tagged_runs(exp, {"mloop.pipeline": "chain"}, limit=50)]
    assert newest == ["r11", "r1", "r8", "r4"]  # start time DESC, then id DESC; no deleted/RUNNING/FAILED/other exp
    with pytest.raises(InvalidInput, match="at least one tag"):
        store.recent_tagged_runs(exp, {}, limit=5)
    with pytest.raises(InvalidInput):
        store.recent_tagged_runs(exp, {"k": "v"}, limit=0)


def test_a_fully_cached_pipeline_run_from_the_cli_never_imports_sqlalchemy(tmp_path: Path) -> None:
    """The point of the direct store: the cached run's CLI command stays off SQLAlchemy (its import is ≈ 60% of it)."""
    (tmp_path / "chain.py").write_text(
        "from mloop.pipelines import Pipeline, step\n\n@step\ndef a() -> str:\n    return 'a'\n\n"
        "@step\ndef b(a: str) -> str:\n    return a + 'b'\n\nchain = Pipeline('chain', [a, b])\n"
    )
    subprocess.run([sys.executable, "-m", "mloop.cli.app", "init", str(tmp_path)], check=True, capture_output=True)
    run = [sys.executable, "-m", "mloop.cli.app", "pipelines", "run", "chain.py:chain", "--json"]
    subprocess.run(run, cwd=tmp_path, check=True, capture_output=True)  # first run: the steps run
    probe = ("import runpy, sys\nsys.argv = ['mloop', 'pipelines', 'run', 'chain.py:chain']\ntry:\n"
             "    runpy.run_module('mloop.cli.app', run_name='__main__')\nexcept SystemExit as exc:\n"
             "    assert not exc.code, exc.code\n"
             "print('SQLALCHEMY', sorted(m for m in sys.modules if m.startswith('sqlalchemy'))[:3])\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert "cached" in out.stdout
    assert "SQLALCHEMY []" in out.stdout

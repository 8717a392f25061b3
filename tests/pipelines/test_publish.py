"""Publishing pipelines (immutable versions with a code snapshot) and triggering them with overrides."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from pipeline_cases import write

from mloop.datasets.lineage import canonical_ref
from mloop.entities import PipelineParam
from mloop.errors import InvalidInput, NotFound
from mloop.pipelines import PipelineResult, publish, trigger
from mloop.pipelines.trigger import TRIGGER_TAGS
from mloop.tracking.client import Client


@pytest.fixture(autouse=True)
def _fresh_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """The project modules of another test (same names, other folder) are not reused."""
    for module in ("helpers", "deep"):
        monkeypatch.delitem(sys.modules, module, raising=False)


def output(client: Client, result: PipelineResult, step: str) -> object:
    stored = result.steps[step].outputs[step]
    data = client.artifacts.get_bytes(stored["digest"])
    return data.decode() if stored["materialiser"] == "str" else json.loads(data)


def test_publish_records_the_definition_and_dedupes(client: Client, project: Path) -> None:
    first = publish(client, f"{project / 'flow.py'}:flow", description="nightly training")
    v = first.version
    assert first.created and v.ref == "pipeline:flow/1" and v.description == "nightly training"
    assert [f.path for f in v.files] == ["deep.py", "flow.py", "helpers.py"]  # the file + its project modules
    assert v.params == (PipelineParam("a.n", "int", 3), PipelineParam("d.k", "int", 1))
    assert sorted(v.steps) == ["a", "b", "c", "d", "e"]
    assert (v.file, v.variable, v.source, v.actor) == ("flow.py", "flow", str(project / "flow.py"), client.actor)
    assert {f.digest for f in v.files} <= client.store.referenced_digests()  # `mloop gc` keeps the snapshot
    again = publish(client, str(project / "flow.py"))  # the same definition (NAME found in the file)
    assert not again.created and again.version == v
    write(project / "deep.py", "def scale(x):\n    return x * 10\n")  # a transitively imported module changed
    second = publish(client, f"{project / 'flow.py'}:flow")
    assert second.created and second.version.version == 2 and second.version.code_digest != v.code_digest
    named = publish(client, f"{project / 'flow.py'}:flow", name="flow-copy")
    assert named.created and named.version.ref == "pipeline:flow-copy/1"
    assert canonical_ref(client, "pipeline:flow") == "pipeline:flow/2"  # references resolve (lineage, CLI)
    with pytest.raises(NotFound, match="no version 7"):
        canonical_ref(client, "pipeline:flow/7")


def test_trigger_runs_the_published_snapshot_not_the_working_copy(client: Client, project: Path) -> None:
    publish(client, f"{project / 'flow.py'}:flow")
    first = trigger("flow", client=client)
    assert first.ok and output(client, first, "c") == 6  # 2 * (0 + 1 + 2)
    write(project / "deep.py", "def scale(x):\n    return x * 10\n")  # edit the working copy after publishing
    write(project / "flow.py", (project / "flow.py").read_text().replace("n: int = 3", "n: int = 4"))
    again = trigger("flow/1", client=client, force=True)
    assert again.ok and output(client, again, "c") == 6 and output(client, again, "a") == [0, 1, 2]
    v2 = publish(client, f"{project / 'flow.py'}:flow").version
    assert v2.version == 2 and PipelineParam("a.n", "int", 4) in v2.params
    newest = trigger("flow", client=client)
    assert output(client, newest, "c") == 120  # 2 * 10 * (0 + 1 + 2 + 3)
    shutil.rmtree(project)  # the working copy is gone: version 1 still runs from its snapshot
    gone = trigger("pipeline:flow/1", client=client, force=True)
    assert gone.ok and output(client, gone, "c") == 6


def test_trigger_with_overrides_records_what_triggered_it(client: Client, project: Path) -> None:
    publish(client, f"{project / 'flow.py'}:flow")
    client.store.set_pipeline_alias("flow", "prod", 1, actor=client.actor)
    result = trigger("flow@prod", params={"n": 2, "d.k": 3}, client=client, triggered_by="schedule:nightly",
                     tags={TRIGGER_TAGS.FIRE_TIME: "2026-01-01T03:00:00Z"})  # fmt: skip
    assert output(client, result, "c") == 2 and output(client, result, "d") == "ddd"
    run = client.get_run(result.run_id or "")
    assert run.tags[TRIGGER_TAGS.BY] == "schedule:nightly"
    assert run.tags[TRIGGER_TAGS.PUBLISHED] == "pipeline:flow/1" and run.tags[TRIGGER_TAGS.VERSION] == "1"
    assert run.tags[TRIGGER_TAGS.FIRE_TIME] == "2026-01-01T03:00:00Z"
    assert run.params["a.n"] == "2"
    by_user = trigger("flow", 1, client=client)
    assert client.get_run(by_user.run_id or "").tags[TRIGGER_TAGS.BY] == f"user:{client.actor}"


def test_bad_triggers_fail_before_anything_runs(client: Client, project: Path) -> None:
    publish(client, f"{project / 'flow.py'}:flow")
    runs_before = len(client.store.search_runs().items)
    with pytest.raises(InvalidInput, match=r"Unknown parameter 'nn'.*Did you mean 'n'"):
        trigger("flow", params={"nn": 2}, client=client)
    with pytest.raises(InvalidInput, match=r"'a.n' of pipeline:flow/1 is int, got 'x'"):
        trigger("flow", params={"a.n": "x"}, client=client)
    with pytest.raises(InvalidInput, match="KIND:WHO"):
        trigger("flow", client=client, triggered_by="cron")
    with pytest.raises(NotFound, match="latest is 1"):
        trigger("flow", 5, client=client)
    with pytest.raises(NotFound, match="mloop pipelines publish"):
        trigger("ghost", client=client)
    assert len(client.store.search_runs().items) == runs_before == 0


def test_publish_refuses_non_json_defaults(client: Client, project: Path) -> None:
    write(project / "odd.py", """
        from mloop.pipelines import Pipeline, step

        @step
        def a(*, when: object = object()) -> int:
            return 1

        odd = Pipeline("odd", [a])
    """)  # fmt: skip
    with pytest.raises(InvalidInput, match=r"parameter 'when' has the default .* not JSON"):
        publish(client, f"{project / 'odd.py'}:odd")


def test_a_package_of_the_project_is_snapshotted_with_its_parents(
    client: Client, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "mypkg" / "sub").mkdir(parents=True)
    write(project / "mypkg" / "__init__.py", "BASE = 100\n")
    write(project / "mypkg" / "sub" / "__init__.py", "")
    write(project / "mypkg" / "sub" / "calc.py", "from mypkg import BASE\n\ndef plus(x):\n    return BASE + x\n")
    write(project / "pkgflow.py", """
        import mypkg.sub.calc
        from mloop.pipelines import Pipeline, step

        @step
        def total(*, x: int = 1) -> int:
            return mypkg.sub.calc.plus(x)

        pkgflow = Pipeline("pkgflow", [total])
    """)  # fmt: skip
    for module in ("mypkg", "mypkg.sub", "mypkg.sub.calc"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    v = publish(client, f"{project / 'pkgflow.py'}:pkgflow").version
    assert [f.path for f in v.files] == ["mypkg/__init__.py", "mypkg/sub/__init__.py", "mypkg/sub/calc.py",
                                         "pkgflow.py"]  # fmt: skip
    shutil.rmtree(project)
    for module in ("mypkg", "mypkg.sub", "mypkg.sub.calc"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    result = trigger("pkgflow", params={"x": 5}, client=client)
    assert result.ok and output(client, result, "total") == 105
    assert "mypkg" not in sys.modules  # the snapshot's modules are forgotten after the run


FLAKY = """
from pathlib import Path

from mloop.pipelines import Pipeline, step


@step
def first(*, n: int = 2) -> int:
    return n


@step
def second(first: int) -> int:
    if not Path(GATE).exists():
        raise RuntimeError("the gate file is missing")
    return first * 10


gated = Pipeline("gated", [first, second])
"""


def test_a_failed_triggered_run_resumes_from_its_snapshot(client: Client, project: Path, tmp_path: Path) -> None:
    from mloop.pipelines import resume

    gate = tmp_path / "gate"  # named in the source (workers may predate an environment variable set here)
    write(project / "gated.py", f"GATE = {str(gate)!r}\n" + FLAKY)
    publish(client, f"{project / 'gated.py'}:gated")
    (project / "gated.py").unlink()  # the working copy is gone: only the published snapshot can run
    failed = trigger("gated", params={"first.n": 3}, client=client)
    assert not failed.ok and failed.steps["second"].status == "failed"
    gate.touch()
    resumed = resume(failed.run_id or "", client=client)
    assert resumed.ok and {n: s.status for n, s in resumed.steps.items()} == {"first": "cached", "second": "ran"}
    assert output(client, resumed, "second") == 30  # the original run's parameters
    run = client.get_run(resumed.run_id or "")
    assert run.tags["mloop.pipeline.resumed_from"] == failed.run_id
    assert run.tags[TRIGGER_TAGS.PUBLISHED] == "pipeline:gated/1" and run.tags[TRIGGER_TAGS.VERSION] == "1"
    assert run.tags[TRIGGER_TAGS.BY] == f"user:{client.actor}"  # who resumed it

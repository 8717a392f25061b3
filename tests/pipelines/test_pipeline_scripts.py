"""Script steps and file/folder values: running, caching by the source folder's content, failures, definitions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from script_cases import make_project, put

from mloop.errors import InvalidInput
from mloop.pipelines import LocalExecutor, Pipeline, PipelineResult, explain_step, load_pipeline, script_step, step_logs
from mloop.pipelines.cachekey import Fingerprinter, differences
from mloop.pipelines.executors import Executor
from mloop.pipelines.files import attempt, store_path
from mloop.tracking.client import Client


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def load(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Pipeline]:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # relative source folders are found from the pipeline file
    return lambda: load_pipeline(f"{project / 'scripts_flow.py'}:flow")


def ran(result: PipelineResult) -> set[str]:
    return {n for n, s in result.steps.items() if s.status == "ran"}


def run(p: Pipeline, client: Client, compute: Executor | None = None, **kw: object) -> PipelineResult:
    return p.run(client=client, compute=compute or LocalExecutor(max_workers=2), **kw)  # type: ignore[arg-type]


def files_of(client: Client, digest: str) -> dict[str, str]:
    manifest = json.loads(client.artifacts.get_bytes(digest))
    return {rel: client.artifacts.get_bytes(d).decode() for rel, d, _size, _x in manifest["files"]}


def test_script_steps_read_inputs_write_outputs_and_are_cached(
    client: Client, project: Path, load: Callable[[], Pipeline], compute: Executor
) -> None:
    first = run(load(), client, compute)
    assert first.ok, {n: s.error for n, s in first.steps.items() if s.error}
    assert ran(first) == {"numbers", "prep", "train", "total", "other", "shapes", "count", "listing"}
    listing = first.steps["listing"].outputs["listing"]["digest"]
    assert files_of(client, listing) == {"names.txt": "nested\nrun.sh\nsides.txt"}
    table = first.steps["prep"].outputs["table"]
    assert table["materialiser"] == "path"
    assert files_of(client, table["digest"]) == {"data.csv": "0.0\n2.0\n4.0", "sub/note.txt": "prepared"}
    model = first.steps["train"].outputs["model"]
    assert files_of(client, model["digest"]) == {"weights.txt": "3.0"}  # lib.fit: (0 + 2 + 4) * 0.5
    metrics = json.loads(client.artifacts.get_bytes(first.steps["train"].outputs["metrics"]["digest"]))
    assert metrics["name"] == "metrics.json" and metrics["kind"] == "file"
    assert client.artifacts.get_bytes(first.steps["total"].outputs["total"]["digest"]) == b"6.0"
    # the script ran in a private copy of its source folder: nothing was written next to it
    assert not (project / "src" / "written-next-to-the-script.txt").exists()
    logs = step_logs(client, first.run_id or "", "prep")["prep"]
    assert "prep wrote 3 rows" in logs["stdout.txt"] and "prep warning on stderr" in logs["stderr.txt"]
    again = run(load(), client, compute)
    assert ran(again) == set() and again.steps["train"].outputs == first.steps["train"].outputs
    # a parameter reaches the script through its placeholder and is part of the key
    scaled = run(load(), client, compute, params={"prep.scale": 3})
    assert ran(scaled) == {"prep", "train", "total"}
    assert client.artifacts.get_bytes(scaled.steps["total"].outputs["total"]["digest"]) == b"9.0"


def test_editing_a_source_file_reruns_its_steps_and_explain_names_the_file(
    client: Client, project: Path, load: Callable[[], Pipeline]
) -> None:
    run(load(), client)
    # a comment in a helper module of src/: prep and train (same source folder) run; their outputs are the
    # same bytes, so total is reused; other (another folder) and the function steps are untouched
    put(project / "src" / "lib.py", "# tuned\ndef fit(values, lr):\n    return sum(values) * lr\n")
    plan = load().plan(client=client)
    assert {n for n, s in plan.steps.items() if s.status == "to run"} == {"prep", "train", "total"}
    result = run(load(), client)
    assert ran(result) == {"prep", "train"}
    assert result.steps["total"].status == "cached" and result.steps["other"].status == "cached"
    assert result.steps["train"].reason.startswith("code: source file 'lib.py' changed: ")
    explained = explain_step(client, result.run_id or "", "train")
    assert [c["change"].split(":")[0] for c in explained["changes"]] == ["source file 'lib.py' changed"]
    # a new file counts too; a cache folder never does
    put(project / "src" / "__pycache__" / "prep.cpython-311.pyc", "ignored")
    put(project / "other" / "README.md", "notes")
    result = run(load(), client)
    assert ran(result) == {"other"}
    assert result.steps["other"].reason == "code: source file 'README.md' added (" + (
        Fingerprinter().sources.tree(project / "other").files["README.md"] + ")"
    )


def test_mloopignore_excludes_files_from_the_key_and_the_copy(tmp_path: Path) -> None:
    root = tmp_path / "src"
    put(root / "train.py", "print('hi')\n")
    put(root / "data" / "big.csv", "1,2\n")
    put(root / "notes.log", "x")
    put(root / "keep" / "a.log.txt", "kept")
    fp = Fingerprinter()
    assert set(fp.sources.tree(root).files) == {"train.py", "data/big.csv", "notes.log", "keep/a.log.txt"}
    put(root / ".mloopignore", "# data and logs\n/data/\n*.log\n")
    tree = Fingerprinter().sources.tree(root)
    assert set(tree.files) == {".mloopignore", "train.py", "keep/a.log.txt"}
    put(root / "data" / "big.csv", "changed")
    assert Fingerprinter().sources.tree(root).digest == tree.digest
    put(root / ".mloopignore", "!keep\n")
    with pytest.raises(InvalidInput, match="negated pattern '!keep' is not supported"):
        Fingerprinter().sources.tree(root)


def test_a_failing_script_names_its_exit_code_and_last_stderr_lines(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    put(src / "fail.py", "import sys\nprint('working')\nprint('bad input: row 7', file=sys.stderr)\nsys.exit(3)\n")
    put(src / "ok.py", "import sys\nopen(sys.argv[1] + '/x', 'w').write('x')\n")
    put(src / "quiet.py", "pass\n")
    put(
        tmp_path / "fail_flow.py",
        f"""
        from mloop.pipelines import Pipeline, script_step
        ok = script_step("ok", script="ok.py", source_dir={str(src)!r}, outputs=["x"], args=["{{outputs.x}}"])
        fail = script_step("fail", script="fail.py", source_dir={str(src)!r}, inputs=["x"], outputs=["y"],
                           retries=1, backoff=0)
        after = script_step("after", script="ok.py", source_dir={str(src)!r}, inputs=["y"], outputs=["z"])
        quiet = script_step("quiet", script="quiet.py", source_dir={str(src)!r}, outputs={{"m": "m.json"}})
        flow = Pipeline("failing", [ok, fail, after, quiet])
    """,
    )
    result = run(load_pipeline(f"{tmp_path / 'fail_flow.py'}:flow"), client)
    assert result.status == "FAILED"
    failed = result.steps["fail"]
    assert failed.status == "failed" and failed.attempts == 2
    assert "Script 'fail.py' of step 'fail' exited with code 3" in (failed.error or "")
    assert "  | bad input: row 7" in (failed.error or "")
    assert result.steps["after"].status == "skipped" and result.steps["ok"].status == "ran"
    assert "did not write output 'm'" in (result.steps["quiet"].error or "")
    assert "m.json" in (result.steps["quiet"].error or "")
    logs = step_logs(client, result.run_id or "", "fail")["fail"]
    assert logs["stdout.txt"] == "working\n" and logs["stdout.2.txt"] == "working\n"


def test_a_script_past_its_timeout_is_killed_with_its_children(
    client: Client, tmp_path: Path, compute: Executor
) -> None:
    src = tmp_path / "src"
    pids = tmp_path / "pids"
    put(
        src / "slow.py",
        f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
    """,
    )
    put(
        tmp_path / "slow_flow.py",
        f"""
        from mloop.pipelines import Pipeline, script_step
        slow = script_step("slow", script="slow.py", source_dir={str(src)!r}, timeout=1.5)
        flow = Pipeline("slow", [slow])
    """,
    )
    start = time.monotonic()
    result = run(load_pipeline(f"{tmp_path / 'slow_flow.py'}:flow"), client, compute)
    assert time.monotonic() - start < 30
    assert result.steps["slow"].status == "failed"
    assert "ran longer than its timeout of 1.5 s" in (result.steps["slow"].error or "")
    for pid in map(int, pids.read_text().split()):
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"process {pid} of the timed-out script is still running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_a_function_step_returning_a_folder_round_trips_read_only(client: Client, load: Callable[[], Pipeline]) -> None:
    first = run(load(), client)
    counted = json.loads(client.artifacts.get_bytes(first.steps["count"].outputs["count"]["digest"]))
    assert counted == {"sides": 3, "writable": False, "files": ["nested/sides.txt", "run.sh"], "exec": True}
    # forced to run again, shapes writes the same content into a new temporary folder: same digest, so count
    # (whose input did not change) is reused
    forced = run(load(), client, force=True)
    assert forced.steps["shapes"].outputs["shapes"]["digest"] == first.steps["shapes"].outputs["shapes"]["digest"]
    other = run(load(), client, params={"shapes.sides": 4})
    assert ran(other) == {"shapes", "count", "listing"}
    assert json.loads(client.artifacts.get_bytes(other.steps["count"].outputs["count"]["digest"]))["sides"] == 4


def test_a_file_keeps_its_name_a_folder_does_not(client: Client, tmp_path: Path) -> None:
    put(tmp_path / "a" / "model" / "w.txt", "1")
    put(tmp_path / "b" / "other-name" / "w.txt", "1")
    put(tmp_path / "m.json", "{}")
    store = client.artifacts
    assert store_path(store, tmp_path / "a" / "model") == store_path(store, tmp_path / "b" / "other-name")
    assert store_path(store, tmp_path / "m.json")["name"] == "m.json"
    with pytest.raises(InvalidInput, match="outside a pipeline step"):
        from mloop.pipelines.files import save_path

        save_path(tmp_path / "m.json")
    with attempt(store) as scope:
        from mloop.pipelines.files import load_path, save_path

        copy = load_path(save_path(tmp_path / "a" / "model"))
        assert copy.is_relative_to(scope.scratch) and (copy / "w.txt").read_text() == "1"
    assert not scope.scratch.exists()


def test_script_key_lists_files_and_packages_the_folder_imports(project: Path, load: Callable[[], Pipeline]) -> None:
    put(
        project / "src" / "steps" / "train.py",
        "import numpy\nimport lib\n" + (project / "src/steps/train.py").read_text(),
    )
    p = load()
    fp = Fingerprinter()
    s = p.steps["train"]
    key = fp.key(s.fn, "train", {"lr": 0.5}, {"data": "sha256:x"})
    code = key.components["code"]
    assert set(code["source"]["files"]) == {"prep.py", "lib.py", "steps/train.py"}
    assert code["script"] == "steps/train.py" and code["args"][-1] == "--lr={params.lr}"
    assert "numpy" in key.components["environment"]["packages"]
    assert "lib" not in key.components["environment"]["packages"]  # a module of the folder itself
    other = dict(key.components, code={**code, "args": [*code["args"][:-1], "--lr"]})
    assert differences(key.components, other) == [
        (
            "code",
            'args template changed: ["{inputs.data}","{outputs.model}","{outputs.metrics}","--lr={params.lr}"]'
            ' -> ["{inputs.data}","{outputs.model}","{outputs.metrics}","--lr"]',
        )
    ]


def test_bad_definitions_name_the_value_and_the_fix(tmp_path: Path) -> None:
    src = tmp_path / "src"
    put(src / "train.py", "pass\n")
    put(tmp_path / "outside.py", "pass\n")
    ok: dict[str, Any] = {"script": "train.py", "source_dir": src}
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"script": "trian.py"},
            "script 'trian.py' does not exist in source_dir .* Python files there: \\['train.py'\\]",
        ),
        ({"source_dir": tmp_path / "nope"}, "source_dir .*nope' is missing \\(.*nope'\\), not a folder"),
        ({"source_dir": src / "train.py"}, "source_dir .*train.py' is a file \\(.*\\), not a folder"),
        ({"script": "../outside.py"}, "is outside source_dir"),
        ({"args": ["{inputs.data}"]}, "unknown input 'data'; inputs are none. Declare it in inputs="),
        ({"args": ["{outputs.modle}"], "outputs": ["model"]}, "Did you mean \\{outputs.model\\}\\?"),
        (
            {"args": ["--lr={params.lrr}"], "params": {"lr": 1}},
            "unknown parameter 'lrr'.* Did you mean \\{params.lr\\}",
        ),
        ({"args": ["{input.data}"], "inputs": ["data"]}, "Use \\{inputs.data\\}"),
        ({"outputs": {"m": "a/b.json"}}, "output 'm' kind 'a/b.json' must be 'folder', 'file' or a file name"),
        ({"inputs": ["my-data"]}, "input name 'my-data' must be a Python identifier"),
        ({"args": "--lr 1"}, "must be a list"),
        ({"inputs": ["x"], "params": {"x": 1}}, "\\['x'\\] is both an input and a parameter"),
    ]
    for extra, message in cases:
        with pytest.raises(InvalidInput, match=message):
            script_step("s", **{**ok, **extra})
    made = script_step("s", **ok, args=["{{literal}}", "--x={params.x}"], params={"x": 1})
    assert made.params["x"].default == 1 and made.outputs == {"s": type(None)}  # no outputs: one None, for ordering


def test_placeholders_are_substituted_inside_arguments(client: Client, tmp_path: Path) -> None:
    src = tmp_path / "src"
    put(
        src / "echo.py",
        "import json, os, sys\nout = sys.argv[-1].partition('=')[2]\n"
        "open(out, 'w').write(json.dumps([*sys.argv[1:-1], os.environ['TOKEN'], sys.executable]))\n",
    )
    s = script_step(
        "echo",
        script="echo.py",
        source_dir=src,
        outputs={"out": "args.json"},
        params={"n": 2, "on": True},
        args=["{{braces}}", "n={params.n}", "{params.on}", "--out={outputs.out}"],
        environment={"TOKEN": "s3cret-value"},
    )
    with attempt(client.artifacts):
        out = s(n=5, on=False)
        assert json.loads(out.read_text()) == ["{braces}", "n=5", "false", "s3cret-value", sys.executable]
    key = Fingerprinter().key(s.fn, "echo", {"n": 5, "on": False}, {})
    assert set(key.components["code"]["env"]) == {"TOKEN"} and "s3cret" not in key.to_json()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_script_dies_with_the_process_that_runs_it(tmp_path: Path, sig: int) -> None:
    """A worker killed (SIGKILL: a cancelled Dask attempt; SIGTERM: a cancelled local pool) takes its script along."""
    src, pids = tmp_path / "src", tmp_path / "pid"
    put(src / "slow.py", f"import os, time\nopen({str(pids)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    driver = (
        f"from mloop.pipelines import script_step\nscript_step('slow', script='slow.py', source_dir={str(src)!r})()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", driver])
    try:
        deadline = time.monotonic() + 30
        while not pids.exists() or not pids.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, "the script did not start"
            time.sleep(0.05)
        script = int(pids.read_text())
        assert _alive(script)
        proc.send_signal(sig)
        proc.wait()
        deadline = time.monotonic() + 5
        while _alive(script) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(script), "the script outlived the process that ran it"
    finally:
        proc.kill()
        proc.wait()


def test_values_that_are_not_files_reach_a_script_as_files(client: Client, tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    src = tmp_path / "src"
    put(
        src / "show.py",
        "import json, sys\nout = sys.argv[1]\n"
        "json.dump([[p.rpartition('.')[2], open(p, 'rb').read()[:6].decode('latin-1')] for p in sys.argv[2:]],"
        " open(out, 'w'))\n",
    )
    names = ["frame", "array", "text", "raw", "doc", "obj"]
    s = script_step(
        "show",
        script="show.py",
        source_dir=src,
        inputs=names,
        outputs={"out": "seen.json"},
        args=["{outputs.out}", *(f"{{inputs.{n}}}" for n in names)],
    )
    values = {"frame": pd.DataFrame({"a": [1]}), "array": np.arange(3), "text": "hello", "raw": b"\x00bytes",
              "doc": {"k": [1]}, "obj": {1, 2}}  # fmt: skip
    with attempt(client.artifacts):
        seen = json.loads(s(**values).read_text())
    expected = [("parquet", "PAR1"), ("npy", "\x93NUMPY"), ("txt", "hello"), ("bin", "\x00bytes"), ("json", '{"k": '),
                ("pkl", "\x80\x05")]  # fmt: skip
    assert [ext for ext, _ in seen] == [ext for ext, _ in expected]
    assert all(head.startswith(prefix) for (_, head), (_, prefix) in zip(seen, expected, strict=True)), seen


def test_linked_folders_are_followed_once(client: Client, tmp_path: Path) -> None:
    root = tmp_path / "src"
    put(root / "a" / "x.py", "x = 1\n")
    (root / "a" / "loop").symlink_to(root)  # a cycle
    (root / "shared").symlink_to(root / "a")  # the same folder by another name
    tree = Fingerprinter().sources.tree(root)
    assert sorted(tree.files) == ["a/x.py"] or sorted(tree.files) == ["shared/x.py"]
    manifest = store_path(client.artifacts, root)
    assert len(manifest["files"]) == 1


def test_a_published_pipeline_snapshots_its_script_steps_source_folders(
    client: Client, project: Path, load: Callable[[], Pipeline]
) -> None:
    from mloop.pipelines import publish, trigger

    published = publish(client, f"{project / 'scripts_flow.py'}:flow")
    paths = {f.path for f in published.version.files}
    assert {"scripts_flow.py", "src/prep.py", "src/lib.py", "src/steps/train.py", "other/other.py"} <= paths
    assert not any("__pycache__" in p for p in paths)
    put(project / "src" / "lib.py", "def fit(values, lr):\n    return -1\n")  # the working copy moves on
    result = trigger("scripts", client=client)
    assert result.ok, {n: s.error for n, s in result.steps.items() if s.error}
    model = result.steps["train"].outputs["model"]["digest"]
    assert files_of(client, model) == {"weights.txt": "3.0"}  # the published lib.fit, not the edited one
    # a source folder outside the pipeline file's folder cannot be in the snapshot
    outside = project.parent / "elsewhere-src"
    put(outside / "x.py", "pass\n")
    put(
        project / "out_flow.py",
        f"""
        from mloop.pipelines import Pipeline, script_step
        flow = Pipeline("out", [script_step("x", script="x.py", source_dir={str(outside)!r})])
    """,
    )
    with pytest.raises(InvalidInput, match=r"is not inside .* cannot be part of the published snapshot\. Move it"):
        publish(client, f"{project / 'out_flow.py'}:flow")


def test_a_dataset_parameter_reaches_a_script_as_its_local_copy(client: Client, tmp_path: Path) -> None:
    import mloop

    data = tmp_path / "data"
    put(data / "a.csv", "x\n1\n2\n")
    put(data / "b.csv", "x\n3\n")
    mloop.Dataset.add(data, "numbers", client=client)
    src = tmp_path / "src"
    put(src / "count.py", "import os, sys\nrows = sum(len(open(os.path.join(sys.argv[1], f)).read().split()) - 1 "
        "for f in sorted(os.listdir(sys.argv[1])))\nopen(sys.argv[2], 'w').write(str(rows))\n")  # fmt: skip
    put(tmp_path / "data_flow.py", f"""
        from mloop.pipelines import Pipeline, script_step
        count = script_step("count", script="count.py", source_dir={str(src)!r}, datasets={{"data": "numbers@latest"}},
                            outputs={{"rows": "rows.txt"}}, args=["{{inputs.data}}", "{{outputs.rows}}"])
        flow = Pipeline("data", [count])
    """)  # fmt: skip
    first = run(load_pipeline(f"{tmp_path / 'data_flow.py'}:flow"), client)
    assert first.ok, {n: s.error for n, s in first.steps.items() if s.error}
    rows = first.steps["count"].outputs["rows"]["digest"]
    assert files_of(client, rows) == {"rows.txt": "3"}
    step_run = first.steps["count"].run_id
    lineage = client.store.list_lineage(f"run:{step_run}", direction="up")
    assert [(e.source, e.relation) for e in lineage] == [("data:numbers/1", "input")]
    assert run(load_pipeline(f"{tmp_path / 'data_flow.py'}:flow"), client).steps["count"].status == "cached"
    put(data / "c.csv", "x\n4\n5\n")  # a new version behind @latest: the step runs again
    mloop.Dataset.add(data, "numbers", client=client)
    again = run(load_pipeline(f"{tmp_path / 'data_flow.py'}:flow"), client)
    assert again.steps["count"].status == "ran"
    assert files_of(client, again.steps["count"].outputs["rows"]["digest"]) == {"rows.txt": "5"}

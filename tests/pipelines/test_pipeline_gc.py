"""``mloop gc`` keeps what pipelines need: step outputs (values, and each file of a file / folder output)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline_cases import write

from mloop.pipelines import LocalExecutor, Pipeline
from mloop.pipelines.outputs import PREFIX
from mloop.tracking.client import Client
from mloop.tracking.gc import collect_garbage

FOLDER_FLOW = """
from pathlib import Path

from mloop.pipelines import Pipeline, scratch_folder, step


@step
def make(*, text: str = "hello") -> Path:
    out = scratch_folder()
    (out / "a.txt").write_text(text)
    (out / "sub").mkdir()
    (out / "sub" / "b.txt").write_text(text * 2)
    return out


@step
def count(make: Path) -> int:
    return sum(len(p.read_text()) for p in sorted(make.rglob("*.txt")))


folders = Pipeline("folders", [make, count])
"""


def test_gc_keeps_step_outputs_so_a_rerun_is_fully_cached(
    client: Client, project: Path, load: Callable[..., Pipeline]
) -> None:
    write(project / "folders.py", FOLDER_FLOW)
    first = load(name="folders", file="folders.py").run(client=client, compute=LocalExecutor(2))
    assert first.ok and first.steps["count"].outputs
    assert client.artifacts.get_bytes(first.steps["count"].outputs["count"]["digest"]) == b"15"
    listed = {e.path for e in client.list_artifacts(first.steps["make"].run_id)}
    assert {f"{PREFIX}/make", f"{PREFIX}/make.files/a.txt", f"{PREFIX}/make.files/sub/b.txt"} <= listed

    report = collect_garbage(client, grace_s=0)
    assert report.blobs_kept > 0
    again = load(name="folders", file="folders.py").run(client=client, compute=LocalExecutor(2))
    assert {n: s.status for n, s in again.steps.items()} == {"make": "cached", "count": "cached"}
    # the folder's files survived too: a changed downstream step reads them from the cached folder
    write(project / "folders.py", FOLDER_FLOW.replace("sum(len(", "1 + sum(len("))
    third = load(name="folders", file="folders.py").run(client=client, compute=LocalExecutor(2))
    assert third.ok and third.steps["make"].status == "cached" and third.steps["count"].status == "ran"
    assert client.artifacts.get_bytes(third.steps["count"].outputs["count"]["digest"]) == b"16"

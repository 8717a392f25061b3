"""A project with script steps: two source folders, scripts that read inputs and write file/folder outputs.

``numbers`` (function) -> ``prep`` (script, src/) -> ``train`` (script, src/steps/train.py, imports src/lib.py)
-> ``total`` (function, reads train's metrics file); ``other`` (script, other/) is independent; ``shapes`` (a
function step returning a folder) -> ``count`` (a function step reading it as a Path).
"""

from __future__ import annotations

from pathlib import Path

from pipeline_cases import write

PREP = """
import argparse, json, os, sys
p = argparse.ArgumentParser()
p.add_argument("--numbers"); p.add_argument("--out"); p.add_argument("--scale", type=float)
a = p.parse_args()
values = json.load(open(a.numbers))
assert os.path.isdir(a.out) and not os.listdir(a.out), "output folder is made empty for the script"
with open(os.path.join(a.out, "data.csv"), "w") as f:
    f.write("\\n".join(str(v * a.scale) for v in values))
os.makedirs(os.path.join(a.out, "sub"))
open(os.path.join(a.out, "sub", "note.txt"), "w").write("prepared")
open("written-next-to-the-script.txt", "w").write("never in the source folder")
print("prep wrote", len(values), "rows")
print("prep warning on stderr", file=sys.stderr)
"""

TRAIN = """
import json, sys
import lib
data, model_dir, metrics, lr = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4].partition("=")[2])
values = [float(v) for v in open(data + "/data.csv").read().split()]
open(model_dir + "/weights.txt", "w").write(str(lib.fit(values, lr)))
json.dump({"total": sum(values), "lr": lr}, open(metrics, "w"))
print("trained")
"""

LIB = """
def fit(values, lr):
    return sum(values) * lr
"""

OTHER = """
import sys
open(sys.argv[1], "w").write("other")
"""

FLOW = """
import json
import tempfile
from pathlib import Path

from mloop.pipelines import Pipeline, scratch_folder, script_step, step

HERE = Path(__file__).parent

@step
def numbers(*, n: int = 3) -> list:
    return list(range(n))

prep = script_step("prep", script="prep.py", source_dir=HERE / "src", inputs=["numbers"], outputs=["table"],
                   args=["--numbers", "{inputs.numbers}", "--out", "{outputs.table}", "--scale", "{params.scale}"],
                   params={"scale": 2})
train = script_step("train", script="steps/train.py", source_dir=HERE / "src", inputs={"data": "table"},
                    outputs={"model": "folder", "metrics": "metrics.json"},
                    args=["{inputs.data}", "{outputs.model}", "{outputs.metrics}", "--lr={params.lr}"],
                    params={"lr": 0.5})

@step
def total(metrics: Path) -> float:
    assert metrics.name == "metrics.json"
    return json.loads(metrics.read_text())["total"]

other = script_step("other", script="other.py", source_dir="other", outputs={"report": "file"},  # from this file
                    args=["{outputs.report}"])

@step
def shapes(*, sides: int = 3) -> Path:
    folder = Path(tempfile.mkdtemp())  # a new folder name every time: only the content counts
    (folder / "nested").mkdir()
    (folder / "nested" / "sides.txt").write_text(str(sides))
    (folder / "run.sh").write_text("#!/bin/sh\\n")
    (folder / "run.sh").chmod(0o755)
    return folder

@step
def listing(shapes: Path) -> Path:
    out = scratch_folder()
    (out / "names.txt").write_text("\\n".join(sorted(p.name for p in shapes.rglob("*"))))
    return out

@step
def count(shapes: Path) -> dict:
    import os
    modes = [p.stat().st_mode for p in [shapes, *shapes.rglob("*")]]  # read-only (root could still write)
    return {"sides": int((shapes / "nested" / "sides.txt").read_text()), "writable": any(m & 0o222 for m in modes),
            "files": sorted(str(p.relative_to(shapes)) for p in shapes.rglob("*") if p.is_file()),
            "exec": os.access(shapes / "run.sh", os.X_OK)}

flow = Pipeline("scripts", [numbers, prep, train, total, other, shapes, count, listing])
"""


def put(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write(path, text)


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    put(root / "src" / "prep.py", PREP)
    put(root / "src" / "steps" / "train.py", TRAIN)
    put(root / "src" / "lib.py", LIB)
    put(root / "src" / "__pycache__" / "lib.cpython-311.pyc", "not code")
    put(root / "other" / "other.py", OTHER)
    put(root / "scripts_flow.py", FLOW)
    return root

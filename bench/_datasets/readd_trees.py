"""First add and re-add of one dataset, for mloop source trees side by side (issue #9's before/after).

    python bench/_datasets/readd_trees.py --src before=/tmp/t/before/src --src after=/tmp/t/after/src \\
        --data /tmp/mloop-i9-data/small-10000x1024-seed0 --repeat 15 --inproc 10

Each sample, trees alternating (the first tree rotates), in fresh workspaces made by the tree's own ``mloop init``
(untimed, after an ``os.sync()``):
  cli     ``mloop data add DATA --name x --json`` in a fresh process, first add then re-add: wall and CPU (user + sys);
  inproc  one process: ``mloop.Dataset.add`` timed once as the first add, then ``--inproc`` timed re-adds (their
          median), wall and the process's CPU time.
The change of the last tree against each earlier one is the median (min..max) of the per-sample ratios. Workspaces go
under ``MLOOP_BENCH_TMP`` (e.g. /dev/shm, to take the disk and its journal out of a first add of many small files).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c
from _trees import baselines, cell, change, parse_src, tree_env

from _datasets.data import MLOOP_BIN

INPROC = """
import json, statistics, sys, time
import mloop
ws = mloop.init_workspace(sys.argv[1]); cl = mloop.Client(workspace=ws)
t0, c0 = time.perf_counter(), time.process_time()
r = mloop.Dataset.add(sys.argv[2], name="x", client=cl)
first = (time.perf_counter() - t0, time.process_time() - c0)
assert r.created and r.dataset.version == 1, (r.created, r.dataset.version)
walls, cpus = [], []
for _ in range(int(sys.argv[3])):
    t0, c0 = time.perf_counter(), time.process_time()
    r = mloop.Dataset.add(sys.argv[2], name="x", client=cl)
    walls.append(time.perf_counter() - t0); cpus.append(time.process_time() - c0)
    assert not r.created
print(json.dumps({"first": first, "readd": (statistics.median(walls), statistics.median(cpus))}))
"""
KINDS = tuple(
    f"{how} {what} {unit}" for how in ("cli", "inproc") for what in ("first", "re-add") for unit in ("wall", "cpu")
)


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = c.now()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = c.now() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{cmd} exited {proc.returncode}\n{proc.stderr[-3000:]}")
    return wall, (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), proc.stdout


def sample(env: dict[str, str], folder: Path, data: str, inproc: int) -> dict[str, float]:
    add = [str(MLOOP_BIN), "data", "add", data, "--name", "x", "--json"]
    out: dict[str, float] = {}
    for how in ("cli", "inproc"):
        shutil.rmtree(folder / "ws", ignore_errors=True)
        run([str(MLOOP_BIN), "init", "ws"], env, folder)
        os.sync()
        if how == "cli":
            for what, created in (("first", True), ("re-add", False)):
                wall, cpu, text = run(add, env, folder / "ws")
                if bool(json.loads(text).get("created")) != created:
                    raise RuntimeError(f"{what}: created={json.loads(text).get('created')}")
                out[f"cli {what} wall"], out[f"cli {what} cpu"] = wall, cpu
        else:
            _, _, text = run([sys.executable, "-c", INPROC, str(folder / "ws"), data, str(inproc)], env, folder / "ws")
            doc = json.loads(text)
            out["inproc first wall"], out["inproc first cpu"] = doc["first"]
            out["inproc re-add wall"], out["inproc re-add cpu"] = doc["readd"]
    shutil.rmtree(folder / "ws", ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--data", required=True, help="the dataset folder to add")
    parser.add_argument("--repeat", type=int, default=15, help="samples per tree (15)")
    parser.add_argument("--inproc", type=int, default=10, help="timed in-process re-adds per sample (10)")
    parser.add_argument("--save", metavar="PATH")
    args = parser.parse_args()
    trees = parse_src(args.src)
    data = str(Path(args.data).resolve())
    work = c.new_workdir("add-trees")
    samples: dict[str, dict[str, list[float]]] = {lb: {k: [] for k in KINDS} for lb, _ in trees}
    try:
        # the workspace (found from the working folder) decides where the stores are: no MLOOP_* variables
        envs = {
            lb: {k: v for k, v in tree_env(work, lb, src).items() if not k.startswith("MLOOP_")} for lb, src in trees
        }
        for lb, env in envs.items():
            sample(env, work / lb, data, 1)  # warm-up: bytecode, page cache of the data
        for rep in range(args.repeat):
            for lb in c.rotated(list(envs), rep):
                for k, v in sample(envs[lb], work / lb, data, args.inproc).items():
                    samples[lb][k].append(v)
            c.log(
                f"rep {rep + 1}/{args.repeat} load {os.getloadavg()[0]:.1f}: "
                + "  ".join(f"{lb} cli first {samples[lb]['cli first wall'][-1]:.2f} s" for lb in envs)
            )
    finally:
        c.remove_workdir(work)
    last, bases = trees[-1][0], baselines(trees)
    paired = {b: {k: c.paired_ratios(samples[b][k], samples[last][k]) for k in KINDS} for b in bases}
    doc = {"data": data, "tmp": str(work.parent), "trees": {lb: str(p) for lb, p in trees}, "samples": samples}
    c.save_json(doc | {"paired": paired, "command": " ".join(sys.argv)}, args.save)
    c.print_table(
        f"add of {Path(data).name} under {work.parent}, median (min-max) of {args.repeat} samples per tree",
        ["measure", *(lb for lb, _ in trees), *(f"{last} vs {b} (paired)" for b in bases)],
        [[k, *(cell(samples[lb][k]) for lb, _ in trees), *(change(paired[b][k]) for b in bases)] for k in KINDS],
        f"inproc re-add: each sample is the median of {args.inproc} Dataset.add calls in one process",
    )


if __name__ == "__main__":
    main()

"""What each mloop source tree does for the same work, counted rather than timed (issue #9's before/after).

    python bench/tree_calls.py --src before=/tmp/mloop-before/src --src after=/tmp/mloop-after/src \\
        [--data DIR] [--runs 100] [--steps 10000] [--search-runs 1000] [--top 8] [--save PATH]

On a loaded machine a few percent of time is below the noise of any timing; the Python function calls a
piece of work makes (``cProfile``'s call count) and the modules an import loads do not depend on the load.
Each tree runs the same workloads in its own fresh process (``PYTHONPATH=DIR``, own store, as in ``_trees.py``):

  import SDK     modules loaded by ``import mloop; mloop.start_run`` (and, of them, mloop's own)
  import CLI     modules loaded by ``import mloop.cli.app`` (what ``mloop --help`` loads before running)
  runs           --runs runs, each ``start_run(params=10)`` + ``log_metrics(10)``, start to end
  metric-loop    --steps ``log_metric(key, value, step=i)`` calls in one run, end of run included
  search list    one ``search_runs`` (the filter of bench_search.py) over --search-runs runs, after a warm-up
  search pandas  the same query as a DataFrame
  data add       ``Dataset.add(--data)``: first add (blobs written) and re-add, in a fresh workspace
  CLI: ...       ``mloop --help``, ``mloop runs list --json`` (the search store) and a re-add of --data by
                 ``mloop data add --json``, each a fresh process profiled from its first import to its exit
                 (bytecode cached beforehand): calls, and the modules it loaded

The table gives the count per tree and the change of the last tree against each earlier one; below it, the
functions whose call counts changed most (the last tree against --diff-against, by default the tree before it).
A count is not a time: a call of a C function and one of a Python loop count the same. Read it as "did the work
change", next to the timings. (In the CLI rows, a change in the modules loaded is the likelier cost.)
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
from _trees import baselines, parse_src, pct, tree_env

FILTER = "metrics.acc > 0.9 and params.model = 'rf'"


def _profile(fn: Any) -> dict[str, Any]:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    stats = pstats.Stats(prof)
    funcs: dict[str, int] = {}
    for (path, _, name), row in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{path.split('/src/')[-1].split('site-packages/')[-1]}:{re.sub(' at 0x[0-9a-f]+', '', name)}"
        funcs[key] = funcs.get(key, 0) + row[1]
    return {"calls": stats.total_calls, "functions": funcs}  # type: ignore[attr-defined]


def _modules(code: str) -> dict[str, Any]:
    import subprocess

    probe = code + "; import sys; print(len(sys.modules), sum(m.split('.')[0] == 'mloop' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    return {"calls": int(out[0]), "mloop_modules": int(out[1]), "functions": {}}


CLI_PROBE = """
import cProfile, json, pstats, re, sys
sys.argv = ["mloop", *json.loads(sys.argv[1])]
prof = cProfile.Profile()
prof.enable()
try:
    from mloop.cli.app import main
    main()
except SystemExit:
    pass
prof.disable()
st = pstats.Stats(prof)
funcs = {}
for (path, _, name), row in st.stats.items():
    key = path.split("/src/")[-1].split("site-packages/")[-1] + ":" + re.sub(" at 0x[0-9a-f]+", "", name)
    funcs[key] = funcs.get(key, 0) + row[1]
mods = sum(m.split(".")[0] == "mloop" for m in sys.modules)
doc = {"calls": st.total_calls, "modules": len(sys.modules), "mloop_modules": mods, "functions": funcs}
print()
print(json.dumps(doc))
"""


def _cli(args: list[str]) -> dict[str, Any]:
    """One ``mloop`` command in a fresh process, imports included, profiled from its first line to its exit."""
    import subprocess

    cmd = [sys.executable, "-c", CLI_PROBE, json.dumps(args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def w_counts(spec: dict[str, Any]) -> dict[str, Any]:
    import mloop

    res: dict[str, Any] = {
        "import SDK": _modules("import mloop; mloop.start_run"),
        "import CLI": _modules("import mloop.cli.app"),
    }

    def runs() -> None:
        for i in range(spec["runs"]):
            with mloop.start_run(experiment="calls", params={f"p{j}": j for j in range(10)}) as run:
                run.log_metrics({f"m{j}": i + j / 10 for j in range(10)})

    def metric_loop() -> None:
        with mloop.start_run(experiment="loop") as run:
            for i in range(spec["steps"]):
                run.log_metric("loss", 1.0 / (i + 1), step=i)

    res["runs"] = _profile(runs)
    res["metric-loop"] = _profile(metric_loop)
    for i in range(spec["search_runs"]):  # the search store, not profiled
        with mloop.start_run(experiment="bench", params={"model": "rf" if i % 2 else "lr"}) as run:
            run.log_metric("acc", (i * 7919 % 1000) / 1000, step=0)

    def query() -> Any:
        return mloop.search_runs(experiment="bench", filter=FILTER, order_by=["metrics.acc DESC"], max_results=100)

    query().to_pandas()  # warm-up: first-query costs (imports, statement caches) are not the query's
    res["search list"] = _profile(lambda: list(query()))
    res["search pandas"] = _profile(lambda: query().to_pandas())
    _cli(["--help"])  # warm-up: the tree's bytecode is written once, so no run below compiles
    res["CLI: mloop --help"] = _cli(["--help"])
    res["CLI: runs list --json"] = _cli(["runs", "list", "--json"])
    if spec.get("data"):
        _cli(["data", "add", spec["data"], "--name", "cli", "--json"])  # first add, and its bytecode
        res["CLI: data add --json (re-add)"] = _cli(["data", "add", spec["data"], "--name", "cli", "--json"])
        ws = mloop.init_workspace(spec["workspace"])
        client = mloop.Client(workspace=ws)
        for what in ("first add", "re-add"):
            res[f"data add: {what}"] = _profile(lambda: mloop.Dataset.add(spec["data"], name="x", client=client))
    return res


def _modules_note(row: dict[str, Any]) -> str:
    if "modules" in row:  # a CLI process: calls, then modules loaded (mloop's)
        return f"; {row['modules']} modules ({row['mloop_modules']})"
    return f" ({row['mloop_modules']})" if "mloop_modules" in row else ""


def main() -> None:
    if c.is_worker():
        c.worker_main({"counts": w_counts})
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--data", help="a dataset folder for the data add workload (left out without it)")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--search-runs", type=int, default=1_000)
    parser.add_argument("--top", type=int, default=8, help="functions listed per workload whose counts changed")
    parser.add_argument(
        "--diff-against",
        metavar="LABEL",
        help="tree the functions are compared with (default: the one before the last)",
    )
    parser.add_argument("--save", metavar="PATH")
    args = parser.parse_args()
    trees = parse_src(args.src)
    work = c.new_workdir("tree-calls")
    res: dict[str, dict[str, Any]] = {}
    try:
        for label, src in trees:
            env = tree_env(work, label, src)
            spec = {"task": "counts", "runs": args.runs, "steps": args.steps, "search_runs": args.search_runs}
            if args.data:
                spec |= {"data": str(Path(args.data).resolve()), "workspace": str(work / label / "ws")}
            res[label] = c.run_worker(Path(__file__).resolve(), spec, env, work / label)
            c.log(f"counted {label}")
    finally:
        c.remove_workdir(work)
    first, last, bases = trees[0][0], trees[-1][0], baselines(trees)
    against = args.diff_against or bases[-1]
    if against not in res:
        raise SystemExit(f"--diff-against {against!r}: not one of the --src labels {list(res)}")
    rows = []
    for name in res[first]:
        counts = {lb: res[lb][name]["calls"] for lb, _ in trees}
        own = {lb: _modules_note(res[lb][name]) for lb, _ in trees}
        row = [name, *(f"{counts[lb]:,}{own[lb]}" for lb, _ in trees), *(pct(counts[last] / counts[b]) for b in bases)]
        rows.append(row)
    unit = "modules (of them mloop's) for imports, Python function calls otherwise"
    c.save_json({"command": " ".join(sys.argv), "trees": {lb: str(p) for lb, p in trees}, "counts": res}, args.save)
    c.print_table(
        f"work done per source tree: {unit}",
        ["workload", *(lb for lb, _ in trees), *(f"{last} vs {b}" for b in bases)],
        rows,
        "deterministic counts (cProfile), not times",
    )
    for name in res[first]:
        before, after = res[against][name]["functions"], res[last][name]["functions"]
        diff = sorted(
            ((after.get(k, 0) - before.get(k, 0), k) for k in set(before) | set(after)), key=lambda d: -abs(d[0])
        )
        changed = [f"{d:+,} {k}" for d, k in diff[: args.top] if d]
        if changed:
            print(f"\n{name}: {last} vs {against}, calls that changed most\n  " + "\n  ".join(changed))


if __name__ == "__main__":
    main()

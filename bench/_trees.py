"""Comparing mloop source trees (``--src LABEL=DIR``, e.g. before and after a refactor) in the same benchmark run.

Each tree runs from ``PYTHONPATH=DIR`` (which wins over the editable install in ``bench/.venv``), on its own store
created by its own code, with cached bytecode in a fresh ``PYTHONPYCACHEPREFIX`` (recompiling on every start would
dominate a start-up measurement; ``PYTHONDONTWRITEBYTECODE`` is dropped). The trees' samples are interleaved and
the change of the last tree against each earlier one is the median (min..max) of the per-repeat ratios.

    mkdir -p /tmp/mloop-before && git archive <commit> | tar -x -C /tmp/mloop-before   (and the same for after)
    python bench/bench_cli.py --repeat 20 --src before=/tmp/mloop-before/src --src after=/tmp/mloop-after/src
    python bench/bench_search.py --runs 1000 --repeat 9 --queries 20 --src before=... --src after=...
    python bench/_datasets/readd_trees.py --src before=... --src after=... --data DIR --repeat 5  (first add, re-add)
    python bench/bench_datasets.py add-2gb readd --mloop-src /tmp/mloop-before/src ...  (one tree per invocation)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import _common as c


def parse_src(values: list[str]) -> list[tuple[str, Path]]:
    trees = []
    for v in values:
        label, sep, folder = v.partition("=")
        path = Path(folder).resolve()
        if not sep or not label or not (path / "mloop" / "__init__.py").is_file():
            raise SystemExit(f"--src {v!r}: want LABEL=DIR with DIR/mloop/__init__.py")
        trees.append((label, path))
    if len(trees) < 2:
        raise SystemExit("--src wants two trees or more")
    return trees


def tree_env(work: Path, label: str, src: Path) -> dict[str, str]:
    """mloop from ``src`` on an empty SQLite store in ``work/label`` that this tree's own code creates."""
    folder = work / label
    folder.mkdir()
    env = c.quiet_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["PYTHONPATH"] = str(src)
    env["MLOOP_URI"] = f"sqlite:///{folder}/mloop.db"
    env["MLOOP_ARTIFACT_URI"] = str(folder / "artifacts")
    code = "import os, mloop; from mloop.store import open_store; open_store(os.environ['MLOOP_URI']).close(); "
    code += "print(mloop.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    if not out.stdout.strip().startswith(str(src)):
        raise SystemExit(f"--src {label}: mloop was imported from {out.stdout.strip()}, not {src}")
    return env


def baselines(trees: list[tuple[str, Path]]) -> list[str]:
    """Every tree but the last: the last tree's change is reported against each of them (e.g. two "before"s)."""
    return [label for label, _ in trees[:-1]]


def pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def change(pr: dict[str, Any] | None) -> str:
    """'+1.2% (-3.0%..+4.1%)' for a paired_ratios result."""
    return "-" if not pr else f"{pct(pr['median'])} ({pct(pr['min'])}..{pct(pr['max'])})"


def cell(values: list[float]) -> str:
    """'12.3 ms (11.0 ms-15.2 ms)': median (min-max)."""
    if not values:
        return "-"
    return f"{c.fmt_s(c.median(values))} ({c.fmt_s(min(values))}-{c.fmt_s(max(values))})"


def compare_search(args: Any, script: Path) -> None:
    """bench_search.py --src: each tree populates its own store, then the query processes alternate between trees."""
    from bench_search import FILTER

    trees = parse_src(args.src)
    keys = ("cold_s", "list_s", "pandas_s", "cold_cpu_s", "list_cpu_s", "pandas_cpu_s")
    work = c.new_workdir("search-trees")
    samples: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in trees}
    try:
        envs = {label: tree_env(work, label, src) for label, src in trees}
        for label, _ in trees:  # untimed; one process, like bench_search's comparison store
            spec = {"task": "populate", "side": c.MLOOP_SQLITE, "start": 0, "count": args.runs, "n": args.runs}
            res = c.run_worker(script, spec, envs[label], work / label)
            c.log(f"populated {args.runs} runs for {label} in {c.fmt_s(res['seconds'])} (untimed)")
        for rep in range(args.repeat):
            for label in c.rotated([lb for lb, _ in trees], rep):
                spec = {"task": "query", "side": c.MLOOP_SQLITE, "queries": args.queries, "n": args.runs}
                res = c.run_worker(script, spec, envs[label], work / label)
                samples[label].append(res)
                c.log(
                    f"  rep {rep + 1}/{args.repeat} {label:<8} cold {c.fmt_s(res['cold_s'])}  "
                    f"list {c.fmt_s(res['list_s'])}  pandas {c.fmt_s(res['pandas_s'])}  load {os.getloadavg()[0]:.1f}"
                )
    finally:
        c.remove_workdir(work)
    last, bases = trees[-1][0], baselines(trees)
    paired = {
        b: {k: c.paired_ratios([s[k] for s in samples[b]], [s[k] for s in samples[last]]) for k in keys} for b in bases
    }
    doc = {
        "versions": c.versions(),
        "command": " ".join(["bench_search.py", *sys.argv[1:]]),
        "runs": args.runs,
        "repeat": args.repeat,
        "queries_per_process": args.queries,
        "filter": FILTER,
        "trees": {label: str(src) for label, src in trees},
        "median": {lb: {k: c.median(s[k] for s in samples[lb]) for k in keys} for lb, _ in trees},
        "samples": samples,
        **{f"{last}_over_{b}": paired[b] for b in bases},
    }
    c.save_json(doc, args.save)
    if args.json:
        c.emit_json(doc)
        return
    rows = [
        [k, *(cell([s[k] for s in samples[lb]]) for lb, _ in trees), *(change(paired[b][k]) for b in bases)]
        for k in keys
    ]
    c.print_table(
        f"mloop-sqlite search_runs over {args.runs:,} runs per tree, median (min-max) of {args.repeat} processes",
        ["measure", *(lb for lb, _ in trees), *(f"{last} vs {b} (paired)" for b in bases)],
        rows,
        "per process: cold = first query, list/pandas = median of --queries more; change = per-repeat ratios - 1",
    )

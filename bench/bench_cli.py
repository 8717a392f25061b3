"""CLI start-up: ``mloop --help`` vs ``mlflow --help`` (and a few related start-up costs).

    python bench/bench_cli.py [--repeat 5] [--json]
    python bench/bench_cli.py --repeat 20 --src before=/tmp/mloop-before/src --src after=/tmp/mloop-after/src

Each measurement is one fresh process started with ``subprocess.run`` and timed with
``time.perf_counter`` around it (process creation + interpreter start-up + imports + the command + exit);
the table shows the median over ``--repeat`` runs (default 5; more is cheap here, e.g. ``--repeat 20``).
One untimed warm-up run per command comes first, so the OS file cache is warm: this is a "fresh process"
start-up, not a cold-disk one. Commands alternate order from repeat to repeat.

Rows:
  help          mloop --help            vs  mlflow --help                 bar: mloop < 0.3 s
  import SDK    python -c 'import mloop; mloop.start_run' vs the same for mlflow (mloop's __init__ is
                lazy; touching start_run loads its tracking SDK)
  runs list     mloop runs list --json  vs  mlflow runs list --experiment-id 0   (both on an empty
                SQLite store in a temp dir)
  python        python -c pass (the floor both sides share; reported once)

``--src LABEL=DIR`` (twice or more) compares mloop source trees instead of mloop with MLflow (see _trees.py):
the mloop commands run once per tree, interleaved sample by sample, with cached bytecode written by the warm-up.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
from _trees import baselines, cell, change, parse_src, tree_env

BIN = Path(sys.executable).parent
BAR_HELP_S = 0.3


def commands(work: Path) -> list[tuple[str, list[str] | None, list[str] | None]]:
    py = sys.executable
    return [
        ("help", [str(BIN / "mloop"), "--help"], [str(BIN / "mlflow"), "--help"]),
        # mloop's package __init__ is lazy, so touch start_run on both sides to load the tracking SDK.
        ("import SDK", [py, "-c", "import mloop; mloop.start_run"], [py, "-c", "import mlflow; mlflow.start_run"]),
        (
            "runs list",
            [str(BIN / "mloop"), "runs", "list", "--json"],
            [str(BIN / "mlflow"), "runs", "list", "--experiment-id", "0"],
        ),
        ("python", [py, "-c", "pass"], None),
    ]


def compare_trees(args: Any) -> None:
    """--src mode: the mloop commands of each tree, interleaved; before/after medians and paired changes."""
    trees = parse_src(args.src)
    work = c.new_workdir("cli-trees")
    samples: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    rcs: dict[str, set[int]] = {}
    try:
        tenv = {label: tree_env(work, label, src) for label, src in trees}
        jobs: list[tuple[str, list[str], dict[str, str]]] = []
        for name, mloop_cmd, _ in commands(work):
            assert mloop_cmd is not None
            labels = [label for label, _ in trees] if name != "python" else [trees[0][0]]
            for label in labels:
                key = f"{name}/{label}" if name != "python" else name
                jobs.append((key, mloop_cmd, tenv[label]))
                samples[key], cpus[key], rcs[key] = [], [], set()
                time_once(mloop_cmd, tenv[label], work)  # warm-up, untimed (also writes the bytecode)
        for rep in range(args.repeat):
            order = jobs if rep % 2 == 0 else list(reversed(jobs))
            for key, cmd, env in order:
                secs, rc, err, cpu = time_once_cpu(cmd, env, work)
                samples[key].append(secs)
                cpus[key].append(cpu)
                rcs[key].add(rc)
                if rc:
                    c.log(f"[{key}] exit {rc}\n{err}")
    finally:
        c.remove_workdir(work)
    first, last, bases = trees[0][0], trees[-1][0], baselines(trees)
    rows, table = [], []
    for name, _, _ in commands(work):
        labels = [label for label, _ in trees] if name != "python" else [first]
        keys = {label: (f"{name}/{label}" if name != "python" else name) for label in labels}
        exits = sorted(set().union(*(rcs[k] for k in keys.values())))
        row: dict[str, Any] = {"command": name, "exit_codes": exits}
        for what, data in (("wall", samples), ("cpu", cpus)):
            paired = {b: None if name == "python" else c.paired_ratios(data[keys[b]], data[keys[last]]) for b in bases}
            row[what] = {
                "median_s": {label: c.median(data[k]) for label, k in keys.items()},
                "range_s": {label: [min(data[k]), max(data[k])] for label, k in keys.items()},
                "samples_s": {label: data[k] for label, k in keys.items()},
                **{f"{last}_over_{b}": paired[b] for b in bases},
            }
            cells = [cell(data[k]) if not rcs[k] - {0} else "failed" for k in keys.values()]
            cells += [""] * (len(trees) - len(cells))
            table.append([f"{name} ({what})", *cells, *(change(paired[b]) for b in bases), ",".join(map(str, exits))])
        rows.append(row)
    doc = {"versions": c.versions(), "repeat": args.repeat, "trees": {lb: str(p) for lb, p in trees}, "rows": rows}
    c.save_json(doc, args.save)
    if args.json:
        c.emit_json(doc)
        return
    c.print_table(
        f"CLI start-up per source tree, fresh process each (median (min-max) of {args.repeat}, interleaved)",
        ["command", *(lb for lb, _ in trees), *(f"{last} vs {b} (paired)" for b in bases), "exit codes"],
        table,
        "cpu = user + sys time of the process; change = median (min..max) of the per-repeat ratios - 1",
    )


def envs(work: Path) -> tuple[dict[str, str], dict[str, str]]:
    mloop_env = c.side_env(c.MLOOP_SQLITE, work)
    mlflow_env = c.side_env(c.MLFLOW_SQLITE, work)
    return mloop_env, mlflow_env


def time_once(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str]:
    elapsed, rc, err, _ = time_once_cpu(cmd, env, cwd)
    return elapsed, rc, err


def time_once_cpu(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str, float]:
    """Wall time, exit code, stderr tail and the child's CPU time (user + sys: less disturbed by other jobs)."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = c.now()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = c.now() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return elapsed, proc.returncode, proc.stderr.decode(errors="replace")[-2000:], cpu


def main() -> None:
    parser = c.base_parser("CLI start-up benchmark")
    parser.add_argument(
        "--src",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="compare mloop source trees (give it twice or more) instead of mloop with MLflow",
    )
    args = parser.parse_args()
    if args.src:
        compare_trees(args)
        return
    work = c.new_workdir("cli")
    mloop_env, mlflow_env = envs(work)
    results: dict[str, dict[str, Any]] = {}
    try:
        # Create both empty stores first so 'runs list' measures listing, not database creation.
        subprocess.run(
            [sys.executable, "-c", "import mlflow; mlflow.MlflowClient().search_experiments()"],
            env=mlflow_env,
            cwd=work,
            capture_output=True,
            check=False,
        )
        if (BIN / "mloop").exists():
            subprocess.run(
                [str(BIN / "mloop"), "runs", "list", "--json"],
                env=mloop_env,
                cwd=work,
                capture_output=True,
                check=False,
            )
        jobs = []
        for name, mloop_cmd, mlflow_cmd in commands(work):
            for side, cmd, env in (("mloop", mloop_cmd, mloop_env), ("mlflow", mlflow_cmd, mlflow_env)):
                if cmd is None:
                    continue
                if not Path(cmd[0]).exists():
                    results[f"{name}/{side}"] = {"cmd": cmd, "samples": [], "error": f"{cmd[0]} not found"}
                    continue
                jobs.append((f"{name}/{side}", cmd, env))
                results[f"{name}/{side}"] = {"cmd": cmd, "samples": [], "rc": set(), "stderr": ""}
                time_once(cmd, env, work)  # warm-up, untimed
        for rep in range(args.repeat):
            order = jobs if rep % 2 == 0 else list(reversed(jobs))
            for key, cmd, env in order:
                secs, rc, err = time_once(cmd, env, work)
                results[key]["samples"].append(secs)
                results[key]["rc"].add(rc)
                if rc:
                    results[key]["stderr"] = err
    finally:
        c.remove_workdir(work)

    table_rows = []
    doc_rows = []
    for name, _, _ in commands(work):
        m = results.get(f"{name}/mloop", {})
        f = results.get(f"{name}/mlflow")
        # A side whose command failed (non-zero exit) gets no time: a fast crash is not a fast start.
        mm = None if set(m.get("rc", set())) - {0} else c.median(m.get("samples", []))
        fm = None if not f or set(f.get("rc", set())) - {0} else c.median(f.get("samples", []))
        rcs = sorted(m.get("rc", set()) | (f.get("rc", set()) if f else set()))
        doc_rows.append(
            {
                "command": name,
                "mloop_cmd": " ".join(Path(x).name if i == 0 else x for i, x in enumerate(m.get("cmd", []))),
                "mlflow_cmd": None
                if not f
                else " ".join(Path(x).name if i == 0 else x for i, x in enumerate(f["cmd"])),
                "mloop_median_s": mm,
                "mlflow_median_s": fm,
                "ratio_mlflow_over_mloop": c.ratio(fm, mm),
                "mloop_samples_s": m.get("samples", []),
                "mlflow_samples_s": f.get("samples", []) if f else [],
                "exit_codes": rcs,
                "errors": {
                    k: results[k].get("stderr") or results[k].get("error")
                    for k in (f"{name}/mloop", f"{name}/mlflow")
                    if k in results and (results[k].get("stderr") or results[k].get("error"))
                },
            }
        )
        table_rows.append([name, c.fmt_s(mm), c.fmt_s(fm), c.fmt_x(c.ratio(fm, mm)), ",".join(map(str, rcs))])
    help_row = doc_rows[0]
    meets = None if help_row["mloop_median_s"] is None else help_row["mloop_median_s"] < BAR_HELP_S
    doc = {
        "versions": c.versions(),
        "repeat": args.repeat,
        "rows": doc_rows,
        "bar_help_s": BAR_HELP_S,
        "meets_bar": meets,
    }
    c.save_json(doc, args.save)
    if args.json:
        c.emit_json(doc)
        return
    c.print_table(
        f"CLI start-up, fresh process each (median of {args.repeat})",
        ["command", "mloop", "mlflow", "mlflow / mloop", "exit codes"],
        table_rows,
        f"bar: mloop --help < {BAR_HELP_S} s -> {'MET' if meets else 'NOT MET' if meets is not None else 'n/a'}",
    )
    for r in doc_rows:
        for k, v in r["errors"].items():
            print(f"[{k} stderr]\n{v}", file=sys.stderr)


if __name__ == "__main__":
    main()

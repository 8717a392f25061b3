"""Pipelines (issue 10): a fully cached 20-stage chain from the CLI against `dvc repro`, and the local executor.

Benchmarks are not tests: they print medians and ratios and never gate CI.

    bench/.venv-dvc/bin/python -m pip install -r bench/requirements-dvc.txt   # once (bench/run.sh does it)
    .venv/bin/python bench/bench_pipelines.py [--repeats 7] [--stages 20] [--before-src OLD_TREE/src]

Measures, each in fresh subprocesses except the in-process executor checks:

1. ``cached``: re-running an unchanged chain of N no-op stages from the command line, ``mloop pipelines run``
   vs ``dvc repro`` (median of interleaved pairs; the side that goes first alternates), wall and CPU time
   (user + system of the child processes), with the floors beside them: ``python -c pass`` and the imports
   every mloop command that opens the store pays.
2. ``first``: the first run of the same chain (everything runs), once per side and repeat.

Both tools run with compiled bytecode, as a ``pip install`` leaves them: the children get
``PYTHONPYCACHEPREFIX`` (a folder of this benchmark, warmed by the first runs) and never
``PYTHONDONTWRITEBYTECODE``, which would otherwise make mloop (an editable install without ``__pycache__``)
compile its own modules on every start while DVC's installed modules load from ``.pyc``.
3. ``overhead``: in process, a forced run of the N-step chain (each step a no-op in a worker) divided by N:
   the per-step scheduling overhead (key, lookup, two run writes, one worker round trip).
4. ``parallel``: 8 independent 1-second steps on 2 workers (the bar: about 4 s, not 8).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MLOOP = Path(sys.executable).parent / "mloop"
DVC = BENCH / ".venv-dvc" / "bin" / "dvc"


def mloop_project(root: Path, stages: int, env: dict[str, str] | None = None) -> None:
    lines = ["from mloop.pipelines import Pipeline, step", "", "@step\ndef s0() -> str:\n    return '0'\n"]
    lines += [f"@step\ndef s{i}(s{i - 1}: str) -> str:\n    return s{i - 1} + '.{i}'\n" for i in range(1, stages)]
    lines.append(f"chain = Pipeline('chain', [{', '.join(f's{i}' for i in range(stages))}])")
    (root / "chain.py").write_text("\n".join(lines) + "\n")
    subprocess.run([str(MLOOP), "init", str(root)], check=True, capture_output=True, env=env)


def dvc_project(root: Path, stages: int) -> None:
    (root / "stage.py").write_text(
        "import sys\ni = int(sys.argv[1])\nprev = open(f'out{i - 1}.txt').read() if i else '0'\n"
        "open(f'out{i}.txt', 'w').write(prev + f'.{i}')\n"
    )
    lines = ["stages:"]
    for i in range(stages):
        deps = ["stage.py"] + ([f"out{i - 1}.txt"] if i else [])
        lines += [f"  s{i}:", f"    cmd: {sys.executable} stage.py {i}", "    deps:", *(f"    - {d}" for d in deps),
                  "    outs:", f"    - out{i}.txt"]  # fmt: skip
    (root / "dvc.yaml").write_text("\n".join(lines) + "\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([str(DVC), "init", "-q"], cwd=root, check=True)


def child_env(pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_") and k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(pycache)}


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system, the process and its children) seconds of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:6.0f} ms ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"


def floor_commands() -> dict[str, list[str]]:
    """What any Python command, and any mloop command that opens the store, pays before doing anything.

    Timed in every round beside the pipelines (a loaded machine's speed changes from minute to minute)."""
    py = str(Path(sys.executable))
    # what a cached `mloop pipelines run` imports before it does anything (the SQLite store through sqlite3 alone:
    # mloop.store.direct); SQLAlchemy beside it, which the cached run no longer imports
    imports = ("import mloop.cli.app, mloop.cli.pipelines, mloop.store.direct, mloop.pipelines.runner, "
               "mloop.tracking.client, rich.table")  # fmt: skip
    return {
        "python -c pass": [py, "-c", "pass"],
        "import mloop CLI + store + runner": [py, "-c", imports],
        "import sqlalchemy + mloop.store.sql": [py, "-c", "import mloop.store.sql.store"],
        "mloop runs list": [str(MLOOP), "runs", "list"],
        "dvc --version": [str(DVC), "--version"],
    }


def cli(repeats: int, stages: int, before: Path | None) -> None:
    """Interleaved repeats; with ``before`` (a source tree), mloop as it was runs in the same repeats too."""
    mloop_cmd = [str(MLOOP), "pipelines", "run", "chain.py:chain"]
    dvc_cmd = [str(DVC), "repro", "-q"]
    names = ["mloop", "dvc"] + (["before"] if before else [])
    first: dict[str, list[float]] = {n: [] for n in names}
    cached: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    ratios: dict[str, list[float]] = {"wall": [], "CPU": [], "before/after wall": [], "before/after CPU": []}
    loads = []
    floors: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        env = child_env(Path(cache_dir))
        envs = {"mloop": env, "dvc": env, "before": {**env, "PYTHONPATH": str(before)}}
        for r in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                order = []
                for name in names:
                    folder = Path(tmp, name)
                    folder.mkdir()
                    if name == "dvc":
                        dvc_project(folder, stages)
                    else:
                        mloop_project(folder, stages, envs[name])
                    order.append((name, folder, dvc_cmd if name == "dvc" else mloop_cmd))
                order = order[r % len(order) :] + order[: r % len(order)]  # who goes first rotates
                for name, cwd, cmd in order:
                    first[name].append(timed(cmd, cwd, envs[name])[0])
                if r == 0:  # the first, uncached runs compiled each tool's bytecode; one more warm-up round
                    for name, cwd, cmd in order:
                        timed(cmd, cwd, envs[name])
                loads.append(os.getloadavg()[0])
                got = {}
                for name, cwd, cmd in order:
                    got[name] = timed(cmd, cwd, envs[name])
                    cached[name].append(got[name][0])
                    cpu[name].append(got[name][1])
                for label, cmd in floor_commands().items():
                    floors.setdefault(label, []).append(timed(cmd, Path(tmp, "mloop"), envs["mloop"]))
                ratios["wall"].append(got["dvc"][0] / got["mloop"][0])
                ratios["CPU"].append(got["dvc"][1] / got["mloop"][1])
                if before:
                    ratios["before/after wall"].append(got["before"][0] / got["mloop"][0])
                    ratios["before/after CPU"].append(got["before"][1] / got["mloop"][1])
        print(f"{'first run':>34}: " + "   ".join(f"{n} {_summary(first[n])}" for n in names))
        for label, data in (("fully cached re-run, wall", cached), ("fully cached re-run, CPU", cpu)):
            ratio = statistics.median(data["dvc"]) / statistics.median(data["mloop"])
            sides = "   ".join(f"{n} {_summary(data[n])}" for n in names)
            print(f"{label:>34}: {sides}   (dvc/mloop, ratio of medians {ratio:.2f}x)")
        for label, values in ratios.items():
            if values:
                what = label if label.startswith("before") else f"dvc/mloop {label}"
                print(f"{'cached, per round':>34}: median {what} {statistics.median(values):.2f}x (range "
                      f"{min(values):.2f}-{max(values):.2f}x, {repeats} interleaved rounds)")  # fmt: skip
        print(f"{'load average (1 min)':>34}: {min(loads):.1f}-{max(loads):.1f}")
        for label, samples in floors.items():
            walls, cpus = [w for w, _ in samples], [c for _, c in samples]
            share = [c / m for c, m in zip(cpus, cpu["mloop"], strict=True)]
            print(f"{'floor: ' + label:>34}: wall {_summary(walls)}, CPU {_summary(cpus)}; "
                  f"{statistics.median(share):.0%} of mloop's cached CPU in the same round")  # fmt: skip


def in_process(stages: int) -> None:
    from mloop.pipelines import LocalExecutor, load_pipeline
    from mloop.tracking.client import Client
    from mloop.workspace import init_workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mloop_project(root, stages)
        client = Client(workspace=init_workspace(root))
        chain = load_pipeline(str(root / "chain.py"))
        pool = LocalExecutor(max_workers=2)
        chain.run(client=client, compute=pool)  # warms the forkserver and the caches
        times = []
        for _ in range(3):
            start = time.perf_counter()
            chain.run(force=True, client=client, compute=pool)
            times.append(time.perf_counter() - start)
        per = statistics.median(times) / stages * 1000
        print(
            f"{'per-step overhead':>20}: {per:.1f} ms a step (forced run of {stages} chained no-op steps, median of 3)"
        )
        cached = []
        for _ in range(3):
            start = time.perf_counter()
            chain.run(client=client, compute=pool)
            cached.append(time.perf_counter() - start)
        print(f"{'cached, in process':>20}: {statistics.median(cached) * 1000:.0f} ms for {stages} steps")
        (root / "par.py").write_text("\n".join(
            ["import time", "from mloop.pipelines import Pipeline, step", ""]
            + [f"@step\ndef p{i}() -> int:\n    time.sleep(1)\n    return {i}\n" for i in range(8)]
            + [f"par = Pipeline('par', [{', '.join(f'p{i}' for i in range(8))}])"]
        ))  # fmt: skip
        par = load_pipeline(str(root / "par.py"))
        start = time.perf_counter()
        result = par.run(client=client, compute=pool)
        assert result.ok
        print(f"{'parallel':>20}: 8 independent 1 s steps on 2 workers in {time.perf_counter() - start:.2f} s")
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--stages", type=int, default=20)
    parser.add_argument("--skip-cli", action="store_true", help="only the in-process executor measurements")
    parser.add_argument("--skip-in-process", action="store_true", help="only the command-line comparison")
    parser.add_argument("--before-src", type=Path, help="also time mloop from this source tree (its src/ folder)")
    args = parser.parse_args()
    if not args.skip_cli:
        if not DVC.exists() or shutil.which("git") is None:
            raise SystemExit(f"needs git and {DVC}: run `bash bench/run.sh` once to install DVC")
        cli(args.repeats, args.stages, args.before_src)
    if not args.skip_in_process:
        in_process(args.stages)


if __name__ == "__main__":
    main()

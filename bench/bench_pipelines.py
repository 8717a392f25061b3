"""Pipelines (issue 10): a fully cached 20-stage chain from the CLI against `dvc repro`, and the local executor.

Benchmarks are not tests: they print medians and ratios and never gate CI.

    bench/.venv-dvc/bin/python -m pip install -r bench/requirements-dvc.txt   # once (bench/run.sh does it)
    .venv/bin/python bench/bench_pipelines.py [--repeats 7] [--stages 20]

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


def mloop_project(root: Path, stages: int) -> None:
    lines = ["from mloop.pipelines import Pipeline, step", "", "@step\ndef s0() -> str:\n    return '0'\n"]
    lines += [f"@step\ndef s{i}(s{i - 1}: str) -> str:\n    return s{i - 1} + '.{i}'\n" for i in range(1, stages)]
    lines.append(f"chain = Pipeline('chain', [{', '.join(f's{i}' for i in range(stages))}])")
    (root / "chain.py").write_text("\n".join(lines) + "\n")
    subprocess.run([str(MLOOP), "init", str(root)], check=True, capture_output=True)


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


def floors(env: dict[str, str], cwd: Path, repeats: int) -> None:
    """What any Python command, and any mloop command that opens the store, pays before doing anything."""
    py = str(Path(sys.executable))
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "import mloop CLI + store": [py, "-c", "import mloop.cli.app, mloop.store.sql, mloop.pipelines"],
        "mloop runs list": [str(MLOOP), "runs", "list"],
        "dvc --version": [str(DVC), "--version"],
    }
    for label, cmd in cmds.items():
        timed(cmd, cwd, env)  # warm the bytecode cache
        samples = [timed(cmd, cwd, env) for _ in range(repeats)]
        print(f"{'floor: ' + label:>34}: wall {_summary([w for w, _ in samples])}, "
              f"CPU {_summary([c for _, c in samples])}")  # fmt: skip


def cli(repeats: int, stages: int) -> None:
    mloop_cmd = [str(MLOOP), "pipelines", "run", "chain.py:chain"]
    dvc_cmd = [str(DVC), "repro", "-q"]
    first: dict[str, list[float]] = {"mloop": [], "dvc": []}
    cached: dict[str, list[float]] = {"mloop": [], "dvc": []}
    cpu: dict[str, list[float]] = {"mloop": [], "dvc": []}
    ratios, cpu_ratios, loads = [], [], []
    with tempfile.TemporaryDirectory() as cache_dir:
        env = child_env(Path(cache_dir))
        for r in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                m, d = Path(tmp, "mloop"), Path(tmp, "dvc")
                m.mkdir()
                d.mkdir()
                mloop_project(m, stages)
                dvc_project(d, stages)
                order = [("mloop", m, mloop_cmd), ("dvc", d, dvc_cmd)]
                if r % 2:
                    order.reverse()
                for name, cwd, cmd in order:
                    first[name].append(timed(cmd, cwd, env)[0])
                if r == 0:  # the first, uncached runs compiled both tools' bytecode; one more warm-up pair
                    for _, cwd, cmd in order:
                        timed(cmd, cwd, env)
                loads.append(os.getloadavg()[0])
                pair = {}
                for name, cwd, cmd in order:
                    pair[name] = timed(cmd, cwd, env)
                    cached[name].append(pair[name][0])
                    cpu[name].append(pair[name][1])
                ratios.append(pair["dvc"][0] / pair["mloop"][0])
                cpu_ratios.append(pair["dvc"][1] / pair["mloop"][1])
        label = "first run"
        print(f"{label:>34}: mloop {_summary(first['mloop'])}   dvc {_summary(first['dvc'])}")
        for label, data in (("fully cached re-run, wall", cached), ("fully cached re-run, CPU", cpu)):
            print(f"{label:>34}: mloop {_summary(data['mloop'])}   dvc {_summary(data['dvc'])}   (ratio of "
                  f"medians {statistics.median(data['dvc']) / statistics.median(data['mloop']):.2f}x)")  # fmt: skip
        for label, values in (("cached, per pair, wall", ratios), ("cached, per pair, CPU", cpu_ratios)):
            print(f"{label:>34}: median dvc/mloop {statistics.median(values):.2f}x (range {min(values):.2f}-"
                  f"{max(values):.2f}x, {repeats} interleaved pairs)")  # fmt: skip
        print(f"{'load average (1 min)':>34}: {min(loads):.1f}-{max(loads):.1f}")
        ws = Path(cache_dir, "floor")
        ws.mkdir()
        mloop_project(ws, 1)  # a workspace for `mloop runs list`
        floors(env, ws, repeats)


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
    args = parser.parse_args()
    if not args.skip_cli:
        if not DVC.exists() or shutil.which("git") is None:
            raise SystemExit(f"needs git and {DVC}: run `bash bench/run.sh` once to install DVC")
        cli(args.repeats, args.stages)
    if not args.skip_in_process:
        in_process(args.stages)


if __name__ == "__main__":
    main()

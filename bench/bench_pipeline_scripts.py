"""Script steps (issue 10): 20 chained `python stage.py` stages as a mloop pipeline and as a DVC `dvc.yaml`.

Benchmarks are not tests: they print medians and ratios and never gate CI.

    bench/.venv-dvc/bin/python -m pip install -r bench/requirements-dvc.txt   # once (bench/run.sh does it)
    .venv/bin/python bench/bench_pipeline_scripts.py [--repeats 5] [--stages 20] [--files 1000]

Both sides run the same script (``stage.py``: read the previous stage's output file, append, write its own) from
the command line, each in a fresh project per repeat; the side that goes first alternates between repeats.

1. ``first``: the first, uncached run: ``mloop pipelines run scripts.py:chain`` (20 ``script_step``s, each a
   ``python stage.py`` subprocess in a private copy of the source folder, its output file stored by content)
   vs ``dvc repro`` (20 stages, ``cmd: python stage.py I``, ``deps``/``outs`` files).
2. ``cached``: the fully cached re-run right after it, same commands.

Wall time (median and range) and CPU time (user + system of the command and of every process it started: the
bench is their subreaper, so pool workers that outlive the command are counted) are printed per side, with the
ratio of medians and the median of per-repeat ratios.

3. ``per step``: in process, a forced run of the chain divided by its length (the worker round trip, the copy
   of the source folder, the script's Python start-up, storing its output), beside ``python -c pass``.
4. ``digest``: hashing a source folder of N small files (what a script step's cache key costs): the first walk
   (reads and hashes every file) and a second one by the same digester (``stat`` only: the per-process memo),
   plus the copy of the folder each attempt makes.
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

STAGE = """import sys
i, prev, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
text = open(prev).read() if prev != "-" else "0"
open(out, "w").write(text + f".{i}")
"""


def mloop_project(root: Path, stages: int) -> None:
    (root / "src").mkdir()
    (root / "src" / "stage.py").write_text(STAGE)
    lines = ["from pathlib import Path", "from mloop.pipelines import Pipeline, script_step", "",
             "SRC = Path(__file__).parent / 'src'", "steps = ["]  # fmt: skip
    for i in range(stages):
        inputs = f"inputs=['s{i - 1}'], " if i else ""
        prev = f"'{{inputs.s{i - 1}}}'" if i else "'-'"
        lines.append(f"    script_step('s{i}', script='stage.py', source_dir=SRC, {inputs}"
                     f"outputs={{'s{i}': 'out.txt'}}, args=['{i}', {prev}, '{{outputs.s{i}}}']),")  # fmt: skip
    lines += ["]", "chain = Pipeline('chain', steps)"]
    (root / "scripts.py").write_text("\n".join(lines) + "\n")
    subprocess.run([str(MLOOP), "init", str(root)], check=True, capture_output=True)


def dvc_project(root: Path, stages: int) -> None:
    (root / "stage.py").write_text(STAGE)
    lines = ["stages:"]
    for i in range(stages):
        deps = ["stage.py"] + ([f"out{i - 1}.txt"] if i else [])
        prev = f"out{i - 1}.txt" if i else "-"
        lines += [f"  s{i}:", f"    cmd: {sys.executable} stage.py {i} {prev} out{i}.txt", "    deps:",
                  *(f"    - {d}" for d in deps), "    outs:", f"    - out{i}.txt"]  # fmt: skip
    (root / "dvc.yaml").write_text("\n".join(lines) + "\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([str(DVC), "init", "-q"], cwd=root, check=True)


def _subreaper() -> None:
    """Become the reaper of orphaned descendants (Linux), so their CPU time is counted in RUSAGE_CHILDREN:
    mloop's forkserver and pool workers outlive the CLI process by a moment and would otherwise be missed."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def _reap(deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it started, orphans included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    _reap()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _summary(label: str, wall: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) for k, v in wall.items()}
    ratios = [d / m for d, m in zip(wall["dvc"], wall["mloop"], strict=True)]
    for side in ("mloop", "dvc"):
        print(f"{label:>12} {side:>5}: {med[side]:6.2f} s (range {min(wall[side]):.2f}-{max(wall[side]):.2f})  "
              f"CPU {statistics.median(cpu[side]):6.2f} s")  # fmt: skip
    print(f"{label:>12} ratio: dvc/mloop {med['dvc'] / med['mloop']:.2f}x of medians, per repeat median "
          f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}x)")  # fmt: skip


def cli(repeats: int, stages: int) -> None:
    _subreaper()
    cmds = {"mloop": [str(MLOOP), "pipelines", "run", "scripts.py:chain"], "dvc": [str(DVC), "repro", "-q"]}
    wall: dict[str, dict[str, list[float]]] = {p: {"mloop": [], "dvc": []} for p in ("first", "cached")}
    cpu: dict[str, dict[str, list[float]]] = {p: {"mloop": [], "dvc": []} for p in ("first", "cached")}
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            roots = {"mloop": Path(tmp, "mloop"), "dvc": Path(tmp, "dvc")}
            for root in roots.values():
                root.mkdir()
            mloop_project(roots["mloop"], stages)
            dvc_project(roots["dvc"], stages)
            order = ["mloop", "dvc"] if r % 2 == 0 else ["dvc", "mloop"]
            for phase in ("first", "cached"):
                for side in order:
                    w, c = timed(cmds[side], roots[side])
                    wall[phase][side].append(w)
                    cpu[phase][side].append(c)
            expected = "0" + "".join(f".{i}" for i in range(stages))
            assert (roots["dvc"] / f"out{stages - 1}.txt").read_text() == expected
    print(f"{stages} chained script stages, {repeats} interleaved repeats (fresh projects), 2 cores")
    for phase in ("first", "cached"):
        _summary(phase, wall[phase], cpu[phase])


def per_step(stages: int) -> None:
    from mloop.pipelines import LocalExecutor, load_pipeline
    from mloop.tracking.client import Client
    from mloop.workspace import open_workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mloop_project(root, stages)
        client = Client(workspace=open_workspace(cwd=root))
        chain = load_pipeline(f"{root / 'scripts.py'}:chain")
        pool = LocalExecutor(max_workers=2)
        assert chain.run(client=client, compute=pool).ok  # warms the forkserver
        forced = []
        for _ in range(3):
            start = time.perf_counter()
            assert chain.run(force=True, client=client, compute=pool).ok
            forced.append(time.perf_counter() - start)
        client.close()
    starts = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        starts.append(time.perf_counter() - start)
    per = statistics.median(forced) / stages * 1000
    print(f"{'per step':>12}: {per:.0f} ms a script step (forced run of {stages}, median of 3); "
          f"`python -c pass` alone {statistics.median(starts) * 1000:.0f} ms")  # fmt: skip


def digest(files: int) -> None:
    from mloop.pipelines.sourcedir import SourceDigester

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "src")
        for i in range(files):
            folder = root / f"pkg{i % 20}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"mod{i}.py").write_text(f"import json\n\nVALUE = {i}\n\ndef f(x):\n    return x + VALUE\n" * 10)
        (root / "__pycache__").mkdir()
        (root / "__pycache__" / "x.pyc").write_bytes(b"0" * 1000)
        cold, warm, copies = [], [], []
        for _ in range(5):
            d = SourceDigester()
            start = time.perf_counter()
            tree = d.tree(root)
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert d.tree(root).digest == tree.digest
            warm.append(time.perf_counter() - start)
            dest = Path(tmp, "copy")
            start = time.perf_counter()
            from mloop.pipelines.scriptrun import copy_source

            copy_source(root, dest)
            copies.append(time.perf_counter() - start)
            shutil.rmtree(dest)
        print(f"{'digest':>12}: {len(tree.files)} files ({tree.size / 1e6:.1f} MB): first walk + hash "
              f"{statistics.median(cold) * 1000:.0f} ms, again (stat memo) {statistics.median(warm) * 1000:.0f} ms, "
              f"private copy {statistics.median(copies) * 1000:.0f} ms (medians of 5)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stages", type=int, default=20)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--skip-cli", action="store_true", help="only the source-folder digest measurement")
    args = parser.parse_args()
    if not args.skip_cli:
        if not DVC.exists() or shutil.which("git") is None:
            raise SystemExit(f"needs git and {DVC}: run `bash bench/run.sh` once to install DVC")
        cli(args.repeats, args.stages)
    per_step(args.stages)
    digest(args.files)


if __name__ == "__main__":
    main()

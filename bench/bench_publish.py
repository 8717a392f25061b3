"""Published pipelines and the scheduler (issue 10): what publishing, triggering and a scheduler tick cost.

Benchmarks are not tests: they print medians and ratios and never gate CI.

    .venv/bin/python bench/bench_publish.py [--repeats 7] [--stages 20] [--schedules 1000]

1. ``publish``: in process, publishing a chain of N steps that import 5 project modules: the first publish
   (snapshot stored, version created) and publishing the identical definition again (no new version).
2. ``cli``: a fully cached re-run from the command line, ``mloop pipelines run chain.py:chain`` against
   ``mloop pipelines trigger chain`` (the published version: its snapshot checked against its digests and
   loaded from the private folder), fresh processes, interleaved, median.
3. ``tick``: one scheduler tick (list every schedule, compute its due times) over S schedules with nothing due,
   and the status line's next-fire computation, on SQLite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MLOOP = Path(sys.executable).parent / "mloop"


def project(root: Path, stages: int) -> None:
    for i in range(5):
        (root / f"helper{i}.py").write_text(f"def tag(x):\n    return x + '.h{i}'\n")
    lines = ["import helper0, helper1, helper2, helper3, helper4", "from mloop.pipelines import Pipeline, step", "",
             "@step\ndef s0(*, seed: int = 0) -> str:\n    return str(seed)\n"]  # fmt: skip
    lines += [f"@step\ndef s{i}(s{i - 1}: str) -> str:\n    return helper{i % 5}.tag(s{i - 1})\n"
              for i in range(1, stages)]  # fmt: skip
    lines.append(f"chain = Pipeline('chain', [{', '.join(f's{i}' for i in range(stages))}])")
    (root / "chain.py").write_text("\n".join(lines) + "\n")


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    out["MLOOP_HOME"] = str(Path(tempfile.gettempdir()) / "mloop-bench-publish-home")
    return out


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env(), check=True, capture_output=True)
    return time.perf_counter() - start


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f} ms (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--stages", type=int, default=20)
    parser.add_argument("--schedules", type=int, default=1000)
    args = parser.parse_args()

    from mloop.entities import now_ms
    from mloop.pipelines import publish
    from mloop.pipelines.scheduler import Scheduler
    from mloop.tracking.client import Client
    from mloop.workspace import init_workspace

    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        root = Path(tmp)
        project(root, args.stages)
        client = Client(workspace=init_workspace(root))
        sys.path.insert(0, str(root))
        start = time.perf_counter()
        first = publish(client, str(root / "chain.py:chain"))
        first_s = time.perf_counter() - start
        again = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            same = publish(client, str(root / "chain.py:chain"))
            again.append(time.perf_counter() - start)
            assert not same.created
        print(f"publish ({args.stages} steps, {len(first.version.files)} files): first {first_s * 1000:.0f} ms; "
              f"identical again {median_ms(again)}")  # fmt: skip

        subprocess.run([str(MLOOP), "pipelines", "run", "chain.py:chain"], cwd=root, env=env(), check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run(
            [str(MLOOP), "pipelines", "trigger", "chain"], cwd=root, env=env(), check=True, capture_output=True
        )  # fmt: skip  (materialises the snapshot once)
        run, trig = [], []
        for i in range(args.repeats):
            pair = [("run", ["pipelines", "run", "chain.py:chain"]), ("trigger", ["pipelines", "trigger", "chain"])]
            for side, cmd in pair if i % 2 == 0 else pair[::-1]:
                (run if side == "run" else trig).append(timed([str(MLOOP), *cmd], root))
        print(f"cached re-run, CLI:  mloop pipelines run     {median_ms(run)}")
        print(f"                     mloop pipelines trigger {median_ms(trig)}  "
              f"(x{statistics.median(trig) / statistics.median(run):.2f})")  # fmt: skip

        now = now_ms()
        for i in range(args.schedules):
            client.store.create_schedule(f"s{i}", pipeline="chain", cron=f"{i % 60} {i % 24} * * *",
                                         actor="bench", anchor_at=now)  # fmt: skip
        scheduler = Scheduler(client)
        ticks, statuses = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            assert scheduler.tick(now=now + 1) == []
            ticks.append(time.perf_counter() - start)
            start = time.perf_counter()
            scheduler.status(now=now + 1)
            statuses.append(time.perf_counter() - start)
        print(f"scheduler tick, {args.schedules} schedules, none due: {median_ms(ticks)}; "
              f"status line: {median_ms(statuses)}")  # fmt: skip
        client.close()


if __name__ == "__main__":
    main()

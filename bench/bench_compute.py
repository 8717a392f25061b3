"""Compute targets (issue 10): per-step overhead on ``local`` vs ``dask``, and 8 independent 1-second steps on Dask.

Benchmarks are not tests: they print medians and ranges and never gate CI.

    .venv/bin/python bench/bench_compute.py [--repeats 7] [--stages 20]

Measures, in process, on one workspace:

1. ``overhead``: a forced run of a chain of N no-op steps divided by N, on ``local`` (``LocalExecutor``, 2
   processes) and on ``dask`` (``DaskExecutor`` against a running ``distributed.LocalCluster`` of 2 worker
   processes, 1 thread each, that this script starts: the address form), interleaved (the first side
   alternates), after one warm-up run on each. Both include everything a step costs: key, cache lookup, the
   step's run and lineage, and the round trip to a worker; on Dask also the scheduler hop and the fork of the
   attempt process. Each run on ``dask`` also connects a client (once per run, not per step).
2. ``start``: the same chain once on a cluster mloop starts itself (``DaskExecutor(min_workers=2, max_workers=2)``),
   minus the warm figure: what starting and closing a local cluster adds to a run.
3. ``parallel``: 8 independent 1-second steps on the running 2-worker cluster, and on an adaptive cluster mloop
   starts (``min_workers=1, max_workers=2``: it has to grow to 2 workers), with ``local`` (2 processes) beside.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def chain_source(stages: int) -> str:
    lines = ["from mloop.pipelines import Pipeline, step", "", "@step\ndef s0() -> str:\n    return '0'\n"]
    lines += [f"@step\ndef s{i}(s{i - 1}: str) -> str:\n    return s{i - 1} + '.{i}'\n" for i in range(1, stages)]
    lines.append(f"chain = Pipeline('chain', [{', '.join(f's{i}' for i in range(stages))}])")
    return "\n".join(lines) + "\n"


PARALLEL = "\n".join(
    ["import time", "from mloop.pipelines import Pipeline, step", ""]
    + [f"@step(cache=False)\ndef p{i}() -> int:\n    time.sleep(1)\n    return {i}\n" for i in range(8)]
    + [f"par = Pipeline('par', [{', '.join(f'p{i}' for i in range(8))}])", ""]
)


def _range(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} (range {min(values):.1f}-{max(values):.1f}, n={len(values)})"


def timed_run(pipeline: Any, client: Any, compute: Any, *, force: bool = True) -> float:
    start = time.perf_counter()
    result = pipeline.run(force=force, client=client, compute=compute)
    elapsed = time.perf_counter() - start
    assert result.ok, {n: s.error for n, s in result.steps.items()}
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--stages", type=int, default=20)
    args = parser.parse_args()

    from distributed import LocalCluster

    from mloop.pipelines import LocalExecutor, load_pipeline
    from mloop.pipelines.executors.dask import DaskExecutor
    from mloop.tracking.client import Client
    from mloop.workspace import init_workspace

    print(f"load average at start: {os.getloadavg()[0]:.1f} (2-core machine)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "chain.py").write_text(chain_source(args.stages))
        (root / "par.py").write_text(PARALLEL)
        client = Client(workspace=init_workspace(root))
        chain, par = load_pipeline(str(root / "chain.py")), load_pipeline(str(root / "par.py"))
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, silence_logs=40,
                               dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"})  # fmt: skip
        try:
            sides = {"local": LocalExecutor(max_workers=2), "dask": DaskExecutor(cluster.scheduler_address)}
            for compute in sides.values():
                timed_run(chain, client, compute)  # warm-up: forkserver / attempt servers, caches
            per_step: dict[str, list[float]] = {name: [] for name in sides}
            for r in range(args.repeats):
                order = list(sides) if r % 2 == 0 else list(reversed(sides))
                for name in order:
                    per_step[name].append(timed_run(chain, client, sides[name]) / args.stages * 1000)
            print(f"\n1. per-step overhead, forced run of {args.stages} chained no-op steps, ms a step")
            for name, values in per_step.items():
                print(f"   {name:>5}: {_range(values)}")
            ratios = [d / lo for d, lo in zip(per_step["dask"], per_step["local"], strict=True)]
            print(f"   dask / local per pair: median {statistics.median(ratios):.2f}x "
                  f"(range {min(ratios):.2f}-{max(ratios):.2f}x)")  # fmt: skip

            own = timed_run(chain, client, DaskExecutor(min_workers=2, max_workers=2, target="own"))
            warm = statistics.median(per_step["dask"]) * args.stages / 1000
            print(f"\n2. the chain on a cluster mloop starts and closes: {own:.2f} s "
                  f"(warm cluster: {warm:.2f} s; starting + closing adds {own - warm:.2f} s)")  # fmt: skip

            print("\n3. 8 independent 1 s steps")
            print(f"   dask, running 2-worker cluster: {timed_run(par, client, sides['dask']):.2f} s")
            adaptive = DaskExecutor(min_workers=1, max_workers=2, adapt_interval=0.2, target="adaptive")
            print(f"   dask, adaptive cluster mloop starts (1..2 workers): {timed_run(par, client, adaptive):.2f} s")
            print(f"   local, 2 processes: {timed_run(par, client, sides['local']):.2f} s")
        finally:
            cluster.close()
            client.close()
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

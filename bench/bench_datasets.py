"""Dataset versioning: ``mloop data add DIR`` vs ``dvc add DIR``, beside the machine's physical limits.

    python bench/bench_datasets.py                         # all: add-2gb limits readd kill9
    python bench/bench_datasets.py add-2gb limits --repeat 3 --cache both
    python bench/bench_datasets.py readd --small-files 10000 --json
    python bench/bench_datasets.py kill9 --kill-after 0.7,1.0

DVC runs from its own venv (``bench/.venv-dvc``, see ``bench/requirements-dvc.txt``; created on first use),
as a subprocess, in a throwaway git-free repo (``dvc init --no-scm``) with analytics and update checks off
and the default cache type. mloop runs from this interpreter: the ``mloop`` CLI next to it when it has
``data add``, plus an SDK worker (``mloop.Dataset.add``) that reports mloop's own timer and a per-phase
breakdown. Every add runs in a fresh subprocess and a fresh workspace / repo.

add-2gb   200 files x 10 MiB of seeded random bytes (generated once under --data-dir, reused), first add.
          Warm cache: the dataset is read once before each run. Cold cache (root only): ``sync; echo 3 >
          /proc/sys/vm/drop_caches``, then each tool does a tiny add elsewhere so its code is cached again and
          only the data is cold. ``os.sync()`` runs before every timed add, so one side never pays for the
          other's dirty pages, and is timed after it ("+sync after": the time until the data is on disk).
          Neither ``dvc add`` nor the default ``mloop data add`` flushes; ``mloop data add --fsync`` does.
          Sides also include ``--link`` vs DVC's ``cache.type hardlink``. On a reflink file system (run with
          ``MLOOP_BENCH_TMP`` and ``--data-dir`` on Btrfs/XFS) both tools' defaults clone instead of copying.
limits    sequential read of the dataset (1 and N threads, 8 MiB chunks), in-memory hashing (SHA-256, MD5 -
          DVC's hash -, BLAKE3 one thread and ``max_threads=AUTO``), read+BLAKE3 and read+MD5 of the dataset,
          copy (read + write to the same disk, then one sync, or fdatasync per file), mloop's store loop
          re-implemented plainly (read 8 MiB, BLAKE3, write, rename; variants), an alternative store loop
          (``os.copy_file_range`` then BLAKE3 ``update_mmap`` of the copy), and copying the small-file tree.
          N = --threads (default 2 x CPUs, mloop's pool size).
readd     re-adding the unchanged 2 GB directory into the same workspace / DVC repo, and a directory of
          10,000 x 1 KiB files (first add and re-add). Bar: mloop re-adds in < 1 s.
kill9     SIGKILL ``mloop data add`` while it stores blobs (0.7 s and 1.0 s in by default); no version may be
          visible, the next add must create version 1,
          whose digests match the source files and whose blobs verify. PASS/FAIL.

DVC needs the data inside its repo: the dataset folder is moved in with ``os.rename`` (same file system, no
bytes copied, nothing timed) and moved back afterwards. Hard links would be cheaper to set up but make DVC
re-copy every file on checkout (it treats ``nlink > 1`` as a link to re-create), which would be unfair to it.

Every tool subprocess runs with cached bytecode (``PYTHONDONTWRITEBYTECODE`` dropped, ``PYTHONPYCACHEPREFIX``
under the temp dir), as users run them. ``--snapshot-src`` runs mloop from a copy of ``src/mloop`` taken at
start, for long runs while the tree is being edited.

Benchmarks are not tests: medians and ratios are printed, nothing gates on a time.

The code lives in ``bench/_datasets/`` (data, tools, workers, limits, ctx, add, readd, kill9, report); this script
is the command line and the entry point of every worker subprocess (``--worker``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
from _datasets.add import run_add
from _datasets.ctx import Ctx
from _datasets.data import BENCHES
from _datasets.kill9 import run_kill9
from _datasets.limits import run_limits, w_limit, w_noop
from _datasets.readd import run_readd
from _datasets.report import MARKDOWN, print_report
from _datasets.tools import MLOOP_PYTHONPATH
from _datasets.workers import w_add, w_init, w_inspect, w_verify

TASKS = {"init": w_init, "add": w_add, "inspect": w_inspect, "verify": w_verify, "limit": w_limit, "noop": w_noop}

# ============================================================================================ main


def main() -> None:
    if c.is_worker():
        c.worker_main(TASKS)
        return
    parser = argparse.ArgumentParser(description="mloop data add vs dvc add (medians and ratios)")
    parser.add_argument(
        "benches", nargs="*", default=[], metavar="BENCH", help=f"which to run (default all): {', '.join(BENCHES)}"
    )
    parser.add_argument("--repeat", type=int, default=3, help="fresh-subprocess repeats per side (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--from-json", metavar="PATH", help="only print the report of a saved --save document")
    parser.add_argument("--save", metavar="PATH", help="also write the JSON document to PATH")
    parser.add_argument(
        "--data-dir",
        default=str(Path(tempfile.gettempdir()) / "mloop-bench-datasets"),
        help="where the generated datasets live (reused across runs)",
    )
    parser.add_argument("--files", type=int, default=200, help="files in the big dataset (default 200)")
    parser.add_argument("--file-mib", type=int, default=10, help="MiB per big file (default 10)")
    parser.add_argument("--small-files", type=int, default=10_000, help="files in the small-file dataset")
    parser.add_argument("--small-bytes", type=int, default=1024, help="bytes per small file (default 1024)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="N for the N-thread limits (default 2 x CPUs)")
    parser.add_argument("--mem-mib", type=int, default=512, help="buffer for in-memory hashing (MiB)")
    parser.add_argument(
        "--cache",
        choices=["warm", "cold", "both"],
        default="both",
        help="page-cache state for add-2gb and limits (cold needs root; default both)",
    )
    parser.add_argument(
        "--mloop-via",
        choices=["auto", "cli", "sdk"],
        default="auto",
        help="time `mloop data add` (cli) or an SDK worker process (sdk); auto = cli if present",
    )
    parser.add_argument("--kill-after", default="0.7,1.0", help="kill9: seconds after start, comma-separated")
    parser.add_argument("--profile", action="store_true", help="cProfile the first SDK add (main thread)")
    parser.add_argument(
        "--no-refs", action="store_true", help="add-2gb: skip the interleaved reference runs (plain loop, copy)"
    )
    parser.add_argument(
        "--no-link", action="store_true", help="add-2gb: skip the link modes (mloop --link vs DVC hardlink cache)"
    )
    parser.add_argument("--sides", help="add-2gb, readd: subset of sides, separated by ';' (names as in the JSON)")
    parser.add_argument(
        "--mloop-src",
        metavar="DIR",
        help="run mloop from this source tree (PYTHONPATH=DIR, e.g. a git worktree's src/) instead of the install",
    )
    parser.add_argument(
        "--snapshot-src",
        action="store_true",
        help="run mloop from a copy of src/mloop taken at start (for long runs while the tree is being edited)",
    )
    args = parser.parse_args()
    MARKDOWN[0] = args.markdown
    if args.mloop_src:
        if args.snapshot_src:
            parser.error("--mloop-src and --snapshot-src exclude each other")
        MLOOP_PYTHONPATH[:] = [str(Path(args.mloop_src).resolve())]
    if args.from_json:
        print_report(json.loads(Path(args.from_json).read_text()))
        return
    benches = args.benches or list(BENCHES)
    unknown = [b for b in benches if b not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHES)}")
    ctx = Ctx(args)
    doc: dict[str, Any] = {
        "meta": {
            "versions": c.versions(),
            "dvc": ctx.dvc_version if ctx.dvc_version.startswith("dvc") else f"dvc {ctx.dvc_version}",
            "cpus": os.cpu_count(),
            "repeat": args.repeat,
            "cache_modes": ctx.modes,
            "cold_note": ctx.cold_reason,
            "mloop_via": "mloop CLI (`mloop data add`) + SDK worker"
            if ctx.use_cli
            else f"SDK worker process only ({ctx.cli_reason})",
            "data_dir": args.data_dir,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "loadavg_at_start": os.getloadavg(),
            "mloop_source_snapshot": ctx.snapshot,
            "mloop_src": args.mloop_src,
        },
        "results": {},
    }
    runners = {"add-2gb": run_add, "limits": run_limits, "readd": run_readd, "kill9": run_kill9}
    for name in BENCHES:
        if name in benches:
            c.log(f"== {name}")
            try:
                doc["results"][name] = runners[name](ctx)
            except Exception as exc:  # keep the other benchmarks' results; report this one's failure
                import traceback

                doc.setdefault("errors", {})[name] = traceback.format_exc()
                c.log(f"[{name}] FAILED: {type(exc).__name__}: {exc}")
            c.save_json(doc, args.save)  # partial results survive a later failure
    doc["meta"]["loadavg_at_end"] = os.getloadavg()
    c.save_json(doc, args.save)
    if args.json:
        c.emit_json(doc)
    else:
        print_report(doc)
        for name, tb in doc.get("errors", {}).items():
            print(f"\n{name} FAILED:\n{tb}")
    if doc.get("errors"):
        sys.exit(1)


if __name__ == "__main__":
    main()

"""What the tracking SDK loads: ``import mloop; mloop.start_run`` is a start-up cost of every training script."""

from __future__ import annotations

import subprocess
import sys


def test_tracking_sdk_does_not_load_shutil_or_archive_modules() -> None:
    # The holdout guard (imported with the SDK) needs tempfile/shutil only to make and remove a holdout folder;
    # at module level they pulled in bz2 and lzma too: ≈ 5% of the SDK's import time (bench/RESULTS.md §14).
    code = (
        "import sys, mloop; mloop.start_run; import mloop.guard\n"
        "print(sorted(m for m in ('shutil', 'tempfile', 'bz2', 'lzma') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""Checkable habits: module size, the public API, layer imports, lint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mloop

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mloop"


def test_no_module_over_800_lines() -> None:
    """src/mloop (but its migrations) and bench/ (its scripts and their packages; not the venvs or _work/)."""
    bench = ROOT / "bench"
    bench_modules = [*bench.glob("*.py"), *(p for d in bench.glob("_*/") if d.name != "_work" for p in d.rglob("*.py"))]
    modules = [p for p in SRC.rglob("*.py") if "migrations" not in p.parts] + bench_modules
    too_big = {str(p.relative_to(ROOT)): n for p in modules if (n := len(p.read_text().splitlines())) > 800}
    assert bench_modules, "bench/ has no Python modules: did the folder move?"
    assert not too_big, f"split these modules by noun: {too_big}"


def test_public_api_is_pinned_and_sorted() -> None:
    assert mloop.__all__ == sorted(mloop.__all__)
    assert mloop.__all__ == [
        "Client",
        "Dataset",
        "Run",
        "RunTable",
        "__version__",
        "active_run",
        "approve",
        "autolog",
        "end_run",
        "evaluate",
        "gates",
        "get_client",
        "get_dataset",
        "get_run",
        "holdout_access",
        "init_workspace",
        "load_model",
        "log_artifact",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "promote",
        "register_if_better",
        "register_model",
        "rollback",
        "search_runs",
        "set_tags",
        "split_dataset",
        "start_run",
        "use_client",
    ]
    for name in mloop.__all__:
        assert getattr(mloop, name) is not None


def test_import_mloop_is_light() -> None:
    heavy = "('sqlalchemy', 'pandas', 'numpy', 'sklearn')"
    code = f"import sys, mloop; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_layers_import_only_downward() -> None:
    exe = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean() -> None:
    exe = Path(sys.executable).parent / "ruff"
    proc = subprocess.run(
        [str(exe), "check", "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "src/mloop"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

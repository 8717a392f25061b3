"""Checkable habits: module size, the public API, layer imports, lint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

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
    pinned = [
        "Client", "Dataset", "Run", "RunTable", "__version__", "active_run", "approve", "autolog", "automation_history",
        "collected_data", "create_automation", "create_endpoint", "delete_automation", "delete_endpoint", "end_run",
        "evaluate", "gates", "get_client", "get_dataset", "get_endpoint", "get_run", "holdout_access", "init_workspace",
        "list_automations", "list_endpoints", "load_model", "log_artifact", "log_metric", "log_metrics", "log_param",
        "log_params", "promote", "promote_endpoint", "register_if_better", "register_model", "rollback",
        "rollback_endpoint", "search_runs", "set_tags", "split_dataset", "start_run", "update_endpoint", "use_client",
    ]  # fmt: skip
    assert mloop.__all__ == pinned
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


# Independence the architecture promises for packages that later issues add. import-linter refuses contracts
# on modules that do not exist yet, so they are checked here, each as soon as its source package exists.
PLANNED_INDEPENDENCE = {
    "mloop.serving": ("mloop.tracking", "mloop.pipelines", "mloop.monitoring", "mloop.automation", "mloop.cli"),
    "mloop.monitoring": ("mloop.serving", "mloop.automation", "mloop.cli"),
    "mloop.pipelines": ("mloop.serving", "mloop.deployments", "mloop.monitoring", "mloop.automation", "mloop.cli"),
    "mloop.deployments": ("mloop.pipelines", "mloop.automation", "mloop.cli"),
}


def _graph() -> object:
    import grimp

    return grimp.build_graph("mloop", cache_dir=None)


def test_planned_packages_stay_independent() -> None:
    graph: Any = _graph()
    broken = []
    for source, forbidden in PLANNED_INDEPENDENCE.items():
        if source not in graph.modules:
            continue
        for target in forbidden:
            if target in graph.modules and graph.chain_exists(importer=source, imported=target, as_packages=True):
                broken.append(f"{source} -> {target}: {graph.find_shortest_chain(source, target)}")
    assert not broken, broken


def test_library_modules_never_import_the_package_root() -> None:
    """``mloop/__init__`` is the public SDK's lazy facade; code inside the package imports what it uses directly.

    The CLI and its demo (written as a user would write it) may use the facade.
    """
    graph: Any = _graph()
    edges = ("mloop.cli",)
    importers = sorted(m for m in graph.find_modules_that_directly_import("mloop") if not m.startswith(edges))
    assert importers == [], importers


def test_ruff_is_clean() -> None:
    exe = Path(sys.executable).parent / "ruff"
    proc = subprocess.run([str(exe), "check", "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "src/mloop"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

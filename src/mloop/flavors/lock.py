"""The environment lock stored with a model: the Python version and the packages that decide its behaviour."""

from __future__ import annotations

import platform
from typing import Any

__all__ = ["KEY_PACKAGES", "environment_lock", "installed_packages"]

# The packages whose versions decide whether a pickled model behaves the same (checked at load time).
KEY_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib", "xgboost", "lightgbm", "pyarrow")


def installed_packages() -> dict[str, str]:
    """Name -> version of every installed distribution (normalised lower-case names)."""
    from importlib import metadata  # ~20 ms to import: only runs that capture their environment pay for it

    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[name.lower().replace("_", "-")] = dist.version
    return dict(sorted(out.items()))


def environment_lock(packages: dict[str, str]) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "packages": {name: packages[name] for name in KEY_PACKAGES if name in packages},
        "all_packages": packages,
    }

"""Saving a model object (or a scoring-script folder) to a folder of files plus ``mloop-model.json``."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput

__all__ = ["FLAVORS", "META_FILE", "detect_flavor", "save_model"]

FLAVORS = ("sklearn", "python", "script")
META_FILE = "mloop-model.json"
MODEL_FILE = "model.pkl"
SCRIPT_FILE = "score.py"


def _is_sklearn(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return False
    return isinstance(model, BaseEstimator)


def detect_flavor(model: Any) -> str:
    if isinstance(model, (str, Path)):
        return "script"
    if _is_sklearn(model):
        return "sklearn"
    if callable(getattr(model, "predict", None)):
        return "python"
    raise InvalidInput(
        f"Cannot register a {type(model).__name__}: mloop registers scikit-learn estimators, objects with a "
        "predict() method, or a folder holding score.py with init() and run(data)."
    )


def check_fitted(model: Any) -> None:
    """Refuse an unfitted scikit-learn estimator (a pipeline is checked through its last step)."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise InvalidInput(
            f"{type(model).__name__} is not fitted. Call .fit(X, y) before logging or registering it."
        ) from None
    except TypeError as exc:  # not an estimator check_is_fitted understands
        raise InvalidInput(f"Cannot check whether {type(model).__name__} is fitted: {exc}") from None


def _save_script(src: Path, dest: Path) -> dict[str, Any]:
    folder = src if src.is_dir() else src.parent
    entry = SCRIPT_FILE if src.is_dir() else src.name
    if not (folder / entry).is_file():
        raise InvalidInput(f"{str(src)!r} has no {entry}; a script model needs score.py with init() and run(data).")
    text = (folder / entry).read_text()
    for fn in ("def init", "def run"):
        if fn not in text:
            raise InvalidInput(
                f"{folder / entry} must define {fn[4:]}(); the scoring contract is init() and run(data)."
            )
    if src.is_dir():
        shutil.copytree(folder, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    else:  # a single script: only that file (register its folder to ship more files)
        shutil.copy2(src, dest / entry)
    return {"entry": entry}


def save_model(model: Any, dest: Path, *, flavor: str | None = None) -> dict[str, Any]:
    """Write the model's files into ``dest`` and return its metadata (also written to ``mloop-model.json``)."""
    flavor = flavor or detect_flavor(model)
    if flavor not in FLAVORS:
        raise InvalidInput(f"Unknown flavor {flavor!r}; use one of {', '.join(FLAVORS)}.")
    dest.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"flavor": flavor, "format": 1}
    if flavor == "script":
        meta.update(_save_script(Path(model), dest))
    else:
        if flavor == "sklearn":
            check_fitted(model)
            meta["params"] = {k: repr(v)[:500] for k, v in model.get_params(deep=True).items()}
        elif not callable(getattr(model, "predict", None)):
            raise InvalidInput(f"{type(model).__name__} has no predict(); it cannot be a 'python' flavor model.")
        meta["class"] = f"{type(model).__module__}.{type(model).__qualname__}"
        meta["predict_proba"] = callable(getattr(model, "predict_proba", None))
        with (dest / MODEL_FILE).open("wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        meta["entry"] = MODEL_FILE
    (dest / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return meta

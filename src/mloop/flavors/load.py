"""Loading a saved model folder behind one interface: ``predict`` (and ``predict_proba`` when it exists).

Callers must verify the files' digests first (``mloop.registry.loader`` does): pickles are loaded only from
verified, registered files.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys
import uuid
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput
from mloop.flavors.save import META_FILE

__all__ = ["LoadedModel", "load_model_dir"]


class LoadedModel:
    """A loaded model. ``raw`` is the underlying object (or the scoring module for scripts)."""

    def __init__(self, raw: Any, flavor: str, meta: dict[str, Any], ref: str = "") -> None:
        self.raw = raw
        self.flavor = flavor
        self.meta = meta
        self.ref = ref
        if flavor != "script":
            # bound once: a registered model must add (almost) nothing over calling the estimator
            self.predict = raw.predict  # type: ignore[method-assign]
            if callable(getattr(raw, "predict_proba", None)):
                self.predict_proba = raw.predict_proba  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"<LoadedModel {self.ref or '(unregistered)'} flavor={self.flavor}>"

    @property
    def has_proba(self) -> bool:
        return "predict_proba" in self.__dict__

    def predict(self, data: Any) -> Any:  # replaced per instance for object flavors
        return self.raw.run(data)

    def predict_proba(self, data: Any) -> Any:
        raise InvalidInput(f"{self.ref or 'This model'} ({self.flavor}) has no predict_proba().")


def _load_script(folder: Path, entry: str) -> Any:
    name = f"mloop_score_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, folder / entry)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"Cannot import the scoring script {folder / entry}.")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
        module.init()
    finally:
        sys.path.remove(str(folder))
    return module


def load_model_dir(folder: Path, *, ref: str = "") -> LoadedModel:
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise InvalidInput(f"{folder} has no {META_FILE}; it was not saved by mloop.")
    meta = json.loads(meta_path.read_text())
    flavor = meta["flavor"]
    if flavor == "script":
        return LoadedModel(_load_script(folder, meta["entry"]), flavor, meta, ref)
    with (folder / meta["entry"]).open("rb") as fh:
        model = pickle.load(fh)  # digest-verified registered file
    return LoadedModel(model, flavor, meta, ref)

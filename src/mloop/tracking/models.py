"""Logging models to runs and registering them as model versions (with files, signature and lineage).

A logged model is a folder of run artifacts (``model/`` by default) holding the flavor's files and
``mloop-model.json`` (flavor, signature, input example, environment lock, estimator params, target).
Registering it creates a model version that points at the same content-addressed blobs: nothing is copied.
"""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.entities import ModelVersion
from mloop.errors import InvalidInput, NotFound
from mloop.flavors import META_FILE, infer_signature, save_model
from mloop.flavors.lock import environment_lock
from mloop.registry.register import register_from_run

if TYPE_CHECKING:
    from mloop.tracking.client import Client
    from mloop.tracking.run import Run

__all__ = ["log_model", "register_local"]

EXAMPLE_FILE = "input_example.json"


def _example_frame(example: Any) -> Any:
    import pandas as pd

    frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
    return frame.head(5)


def _write_extras(folder: Path, model: Any, meta: dict[str, Any], client: Client, *, input_example: Any,
                  signature_data: Any, target: str | None) -> None:  # fmt: skip
    sample = signature_data if signature_data is not None else input_example
    if sample is not None:
        output = None
        predict = getattr(model, "predict", None)
        if callable(predict):
            try:
                output = predict(_example_frame(sample) if input_example is None else input_example)
            except Exception:  # a signature without output type is still useful
                output = None
        meta["signature"] = infer_signature(sample, output)
    if input_example is not None:
        (folder / EXAMPLE_FILE).write_text(_example_frame(input_example).to_json(orient="split", index=False))
        meta["input_example"] = EXAMPLE_FILE
    meta["environment"] = environment_lock(client.environment_capture.packages())
    meta["target"] = target
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))


def log_model(
    run: Run, model: Any, name: str | None = None, *, path: str = "model", input_example: Any = None,
    signature_data: Any = None, target: str | None = None, flavor: str | None = None, description: str = "",
) -> ModelVersion | None:  # fmt: skip
    """Save ``model`` under the run's ``path``; register it as ``name`` when given."""
    client = run.client
    with tempfile.TemporaryDirectory(prefix="mloop-model-") as tmp:
        folder = Path(tmp)
        meta = save_model(model, folder, flavor=flavor)
        _write_extras(folder, model, meta, client, input_example=input_example, signature_data=signature_data,
                      target=target)  # fmt: skip
        run.log_artifacts(folder, prefix=path)
    if name is None:
        return None
    run.flush()  # the version records the run's metrics as they are now
    return register_from_run(client, run.id, name, path=path, description=description)


def register_local(
    client: Client, path: str | Path, name: str, *, flavor: str | None = None, description: str = ""
) -> ModelVersion:
    """Register a model from disk: a folder saved by mloop, a ``score.py`` folder, or a pickle file you trust."""
    src = Path(path)
    if not src.exists():
        raise NotFound(f"No file or folder at {str(path)!r}.")
    with client.start_run("model-registrations", f"register-{name}", tags={"source": str(src)}) as run:
        if src.is_dir() and (src / META_FILE).is_file():
            run.log_artifacts(src, prefix="model")
        elif src.is_dir() or src.suffix == ".py":
            log_model(run, src, flavor="script")
        elif src.suffix in {".pkl", ".pickle", ".joblib"}:
            with src.open("rb") as fh:
                model = pickle.load(fh)  # the user's own file, loaded at their request
            log_model(run, model, flavor=flavor)
        else:
            raise InvalidInput(
                f"Cannot register {str(path)!r}: give a folder saved by mloop, a folder with score.py, or a "
                ".pkl/.joblib file."
            )
    return register_from_run(client, run.id, name, description=description)

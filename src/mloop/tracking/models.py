"""Logging models to runs and registering them as model versions (with files, signature and lineage).

A logged model is a folder of run artifacts (``model/`` by default) holding the flavor's files and
``mloop-model.json`` (flavor, signature, input example, environment lock, estimator params, target).
Registering it creates a model version that points at the same content-addressed blobs: nothing is copied.
"""

from __future__ import annotations

import json
import pickle
import platform
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.entities import ModelFile, ModelVersion
from mloop.errors import InvalidInput, NotFound
from mloop.flavors import META_FILE, infer_signature, save_model

if TYPE_CHECKING:
    from mloop.tracking.client import Client
    from mloop.tracking.run import Run

__all__ = ["KEY_PACKAGES", "environment_lock", "log_model", "register_from_run", "register_local"]

# The packages whose versions decide whether a pickled model behaves the same (checked at load time).
KEY_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib", "xgboost", "lightgbm", "pyarrow")
EXAMPLE_FILE = "input_example.json"


def environment_lock(packages: dict[str, str]) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "packages": {name: packages[name] for name in KEY_PACKAGES if name in packages},
        "all_packages": packages,
    }


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
    run: Run,
    model: Any,
    name: str | None = None,
    *,
    path: str = "model",
    input_example: Any = None,
    signature_data: Any = None,
    target: str | None = None,
    flavor: str | None = None,
    description: str = "",
) -> ModelVersion | None:
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


def _lineage_inputs(client: Client, run_id: str) -> list[str]:
    return sorted({e.source for e in client.store.list_lineage(f"run:{run_id}", direction="up")
                   if e.source.startswith("data:")})  # fmt: skip


def register_from_run(
    client: Client, run: str, name: str, *, path: str = "model", description: str = ""
) -> ModelVersion:
    """Register the model a run logged under ``path`` (``run:<id>/model`` on the command line)."""
    from mloop.artifacts import normalize_artifact_path

    run_id = client.resolve_run_id(run)
    prefix = normalize_artifact_path(path)
    entries = [e for e in client.list_artifacts(run_id) if e.path.startswith(prefix + "/")]
    meta_entry = next((e for e in entries if e.path == f"{prefix}/{META_FILE}"), None)
    if meta_entry is None:
        raise NotFound(
            f"Run {run_id} has no model at {path!r} (no {prefix}/{META_FILE}). Log one with run.log_model(model), "
            "or pass the artifact folder that holds it."
        )
    meta = json.loads(client.artifacts.get_bytes(meta_entry.digest, name=f"run:{run_id}/{meta_entry.path}"))
    files = tuple(ModelFile(e.path[len(prefix) + 1 :], e.size, e.digest) for e in entries)
    record = client.get_run(run_id)
    env_digest = record.environment_digest
    commit = None
    if env_digest is not None:
        git = client.store.get_environment(env_digest).get("git") or {}
        commit = git.get("commit")
    example = next((f.digest for f in files if f.path == meta.get("input_example")), None)
    version = client.store.create_model_version(
        name, flavor=meta["flavor"], files=files, actor=client.actor, run_id=run_id, source=f"run:{run_id}/{prefix}",
        signature=meta.get("signature"), input_example=example, environment=meta.get("environment") or {},
        params=meta.get("params") or dict(record.params), metrics=dict(record.metrics),
        datasets=_lineage_inputs(client, run_id), code_commit=commit, target=meta.get("target"),
        description=description,
    )  # fmt: skip
    client.store.add_lineage(f"run:{run_id}", version.ref, "output", actor=client.actor)
    return version


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

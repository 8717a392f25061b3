"""Loading a registered model version: resolve, verify every file's digest, check the environment, load.

Files are fetched once into the workspace's local model cache; every load re-hashes them against the
registered digests, so a tampered file (one byte changed) is refused with an :class:`IntegrityError` naming
it. Pickles are unpickled only after that check.
"""

from __future__ import annotations

import platform
import shutil
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.artifacts import hash_file, normalize_artifact_path, parse_digest
from mloop.context import current_context
from mloop.entities import ModelVersion
from mloop.errors import EnvironmentMismatch, IntegrityError, InvalidInput
from mloop.flavors import LoadedModel, load_model_dir
from mloop.refs import parse_ref

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["EnvironmentMismatchWarning", "environment_differences", "load_model", "resolve_model"]


class EnvironmentMismatchWarning(UserWarning):
    """The running Python or key packages differ from the versions a model was registered with."""


def resolve_model(client: Context, ref: str) -> ModelVersion:
    """``model:<name>/<version>``, ``model:<name>@<alias>`` or ``model:<name>`` (the newest version)."""
    r = parse_ref(ref, default_kind="model")
    if r.kind != "model":
        raise InvalidInput(f"{ref!r} is not a model reference; use model:<name>/<version> or model:<name>@<alias>.")
    return client.store.get_model_version(r.name, r.version, r.alias)


def environment_differences(version: ModelVersion, installed: dict[str, str]) -> list[tuple[str, str, str]]:
    """(package, registered version, running version) for Python and each key package that differs."""
    lock = version.environment or {}
    out: list[tuple[str, str, str]] = []
    recorded_py = lock.get("python")
    if recorded_py and recorded_py.rsplit(".", 1)[0] != platform.python_version().rsplit(".", 1)[0]:
        out.append(("python", str(recorded_py), platform.python_version()))
    for name, wanted in sorted((lock.get("packages") or {}).items()):
        have = installed.get(name, "not installed")
        if have != wanted:
            out.append((name, str(wanted), have))
    return out


def _check_environment(client: Context, version: ModelVersion, strict: bool) -> None:
    diffs = environment_differences(version, client.packages())
    if not diffs:
        return
    listing = "; ".join(f"{name} {want} (registered) vs {have} (running)" for name, want, have in diffs)
    message = (
        f"{version.ref} was registered with other package versions: {listing}. Predictions may differ; "
        "install the registered versions"
    )
    if strict:
        raise EnvironmentMismatch(message + ", or load without strict mode (MLOOP_STRICT=0).")
    warnings.warn(message + " (set MLOOP_STRICT=1 to refuse instead).", EnvironmentMismatchWarning, stacklevel=3)


def _verified_folder(client: Context, version: ModelVersion) -> Path:
    folder = client.workspace.settings.local_dir / "models" / version.id
    if not folder.is_dir():
        staging = folder.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            client.artifacts.check_reads([f.digest for f in version.files])  # one guard query for all files
            for f in version.files:
                dest = staging / normalize_artifact_path(f.path)
                dest.parent.mkdir(parents=True, exist_ok=True)
                client.artifacts.get_file(f.digest, dest, name=f"{version.ref}/{f.path}")
            try:
                staging.rename(folder)
            except OSError:
                if not folder.is_dir():
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    for f in version.files:  # re-check on every load: the local copy could have been changed since
        algorithm, _ = parse_digest(f.digest)
        path = folder / normalize_artifact_path(f.path)
        actual = hash_file(path, algorithm) if path.is_file() else "missing"
        if actual != f.digest:
            raise IntegrityError(
                f"File {f.path!r} of {version.ref} does not match its registered digest ({f.digest}, found "
                f"{actual}); refusing to load it. Delete {folder} to fetch a verified copy again, and find out "
                "who changed it."
            )
    return folder


def load_model(ref: str, *, client: Context | None = None, strict: bool | None = None) -> LoadedModel:
    """Load a registered model version behind a uniform ``predict`` / ``predict_proba`` interface."""
    if client is None:
        client = current_context()
    version = resolve_model(client, ref)
    folder = _verified_folder(client, version)
    _check_environment(client, version, client.workspace.settings.strict if strict is None else strict)
    model = load_model_dir(folder, ref=version.ref)
    model.meta["version"] = version.version
    return model


def example_input(client: Context, version: ModelVersion) -> Any:
    """The stored input example as a DataFrame (``None`` when none was logged)."""
    if version.input_example is None:
        return None
    import io

    import pandas as pd

    raw = client.artifacts.get_bytes(version.input_example, name=f"{version.ref}/input_example.json")
    return pd.read_json(io.BytesIO(raw), orient="split")

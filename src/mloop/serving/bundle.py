"""A model bundle: one registered version's files plus a manifest, served without a workspace.

``mloop package --docker`` writes a bundle into the build context (:func:`write_bundle`); the container's
entrypoint, ``mloop serve --bundle DIR``, serves it (:func:`serve_bundle`). The layout::

    bundle/
      mloop-bundle.json     the manifest: name, version, flavor, signature, environment lock, files
      model/<path>          the version's files, byte for byte as registered

The manifest records each file's size, its registered digest and its SHA-256 (so ``sha256sum`` can check a
bundle by hand). Serving a bundle goes through the same verification as the registry's loader
(:func:`mloop.registry.loader.load_model`): every file is re-hashed before anything is unpickled, and a file
that differs, is missing, or is not in the manifest stops the server with an :class:`IntegrityError` naming
it; then the environment lock is compared with what is installed, and the model is loaded and served by the
same app as ``mloop serve`` (:func:`mloop.serving.app.create_app`).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.artifacts import hash_file, normalize_artifact_path
from mloop.entities import ModelFile, ModelVersion
from mloop.errors import EnvironmentMismatch, IntegrityError, InvalidInput

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.flavors import LoadedModel
    from mloop.serving.app import ScoringApp
    from mloop.serving.batching import BatchConfig

__all__ = ["BUNDLE_FORMAT", "MANIFEST_NAME", "app_from_env", "bundle_app", "load_bundle", "read_manifest",
           "serve_bundle", "write_bundle"]  # fmt: skip

BUNDLE_FORMAT = "mloop-bundle/1"
MANIFEST_NAME = "mloop-bundle.json"
MODEL_DIR = "model"
_ENV_BUNDLE, _ENV_MAX_BODY, _ENV_BATCH = "MLOOP_SERVE_BUNDLE", "MLOOP_SERVE_MAX_BODY_BYTES", "MLOOP_SERVE_BATCH"


def manifest_of(version: ModelVersion, sha256: dict[str, str]) -> dict[str, Any]:
    """The manifest of ``version`` (keys sorted when written): what the server needs, nothing time-dependent."""
    env = version.environment or {}
    return {
        "format": BUNDLE_FORMAT,
        "model": {
            "ref": version.ref, "name": version.name, "version": version.version, "id": version.id,
            "model_id": version.model_id, "flavor": version.flavor, "run_id": version.run_id,
            "target": version.target, "signature": None if version.signature is None else dict(version.signature),
            "environment": {"python": env.get("python"), "packages": dict(env.get("packages") or {})},
        },
        "files": [{"path": f.path, "size": f.size, "digest": f.digest, "sha256": sha256[f.path]}
                  for f in sorted(version.files, key=lambda f: f.path)],
    }  # fmt: skip


def write_bundle(context: Context, version: ModelVersion, folder: Path) -> list[Path]:
    """Write ``version``'s files (each verified against its registered digest as it is read) and the manifest
    into ``folder``; return the files written, manifest first."""
    model_dir = folder / MODEL_DIR
    written: list[Path] = []
    sha256: dict[str, str] = {}
    context.artifacts.check_reads([f.digest for f in version.files])
    for f in sorted(version.files, key=lambda f: f.path):
        dest = model_dir / normalize_artifact_path(f.path)
        context.artifacts.get_file(f.digest, dest, name=f"{version.ref}/{f.path}")
        sha256[f.path] = hash_file(dest, "sha256")
        written.append(dest)
    manifest = folder / MANIFEST_NAME
    manifest.write_text(json.dumps(manifest_of(version, sha256), indent=2, sort_keys=True) + "\n")
    return [manifest, *written]


def read_manifest(folder: Path) -> dict[str, Any]:
    """The parsed manifest of the bundle in ``folder`` (its shape checked; no file is hashed here)."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise InvalidInput(f"{str(folder)!r} is not a model bundle: it has no {MANIFEST_NAME}. Write one with "
                           "`mloop package MODEL_REF --docker DIR` (the bundle is DIR/bundle).")  # fmt: skip
    try:
        manifest = json.loads(path.read_text())
        ok = manifest.get("format") == BUNDLE_FORMAT and isinstance(manifest["model"]["name"], str)
        ok = ok and all(isinstance(f["path"], str) and isinstance(f["sha256"], str) for f in manifest["files"])
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise IntegrityError(f"{str(path)!r} is not a valid {BUNDLE_FORMAT} manifest; refusing to serve it. "
                             "Write the bundle again with `mloop package MODEL_REF --docker DIR`.")  # fmt: skip
    return dict(manifest)


def _version(manifest: dict[str, Any]) -> ModelVersion:
    m = manifest["model"]
    files = tuple(ModelFile(path=f["path"], size=int(f["size"]), digest=f["digest"]) for f in manifest["files"])
    return ModelVersion(id=m["id"], model_id=m["model_id"], name=m["name"], version=int(m["version"]),
                        flavor=m["flavor"], created_at=0, actor="", files=files, run_id=m.get("run_id"),
                        signature=m.get("signature"), environment=m.get("environment") or {},
                        target=m.get("target"))  # fmt: skip


def _verify(folder: Path, manifest: dict[str, Any]) -> Path:
    """Re-hash every file against the manifest; refuse missing, changed and unlisted files, naming them."""
    model_dir = folder / MODEL_DIR
    listed = {normalize_artifact_path(f["path"]) for f in manifest["files"]}
    if model_dir.is_dir():
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file() or p.is_symlink()):
            rel = path.relative_to(model_dir).as_posix()
            if rel not in listed:
                raise IntegrityError(
                    f"File {rel!r} in the bundle {str(folder)!r} is not in its manifest; refusing to serve it. "
                    "Remove the file or write the bundle again with `mloop package`."
                )
    for f in manifest["files"]:
        path = model_dir / normalize_artifact_path(f["path"])
        actual = hash_file(path, "sha256") if path.is_file() and not path.is_symlink() else "missing"
        if actual != f["sha256"]:
            raise IntegrityError(
                f"File {f['path']!r} of the bundle {str(folder)!r} ({manifest['model']['ref']}) does not match its "
                f"manifest ({f['sha256']}, found {actual}); refusing to serve it. Write the bundle again with "
                "`mloop package` and find out who changed it."
            )
    return model_dir


def _check_environment(version: ModelVersion, strict: bool) -> None:
    from mloop.flavors.lock import installed_packages
    from mloop.registry.loader import EnvironmentMismatchWarning, environment_differences

    diffs = environment_differences(version, installed_packages())
    if not diffs:
        return
    listing = "; ".join(f"{name} {want} (registered) vs {have} (running)" for name, want, have in diffs)
    message = f"{version.ref} was registered with other package versions: {listing}. Install the bundle's " \
              "requirements.txt"  # fmt: skip
    if strict:
        raise EnvironmentMismatch(message + ", or serve without strict mode (MLOOP_STRICT=0).")
    warnings.warn(message + " (set MLOOP_STRICT=1 to refuse instead).", EnvironmentMismatchWarning, stacklevel=3)


def load_bundle(folder: Path | str, *, strict: bool | None = None) -> tuple[ModelVersion, LoadedModel]:
    """The bundle's version and its model, loaded only after every file matched the manifest."""
    from mloop.flavors import load_model_dir

    folder = Path(folder)
    manifest = read_manifest(folder)
    version = _version(manifest)
    model_dir = _verify(folder, manifest)
    if strict is None:
        from mloop.config import resolve_settings

        strict = resolve_settings().strict
    _check_environment(version, strict)
    # A score.py model is imported from the bundle: no bytecode may be written next to it, or the next start
    # would find a file the manifest does not list (and bytecode there is never trusted: it is refused above).
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        model = load_model_dir(model_dir, ref=version.ref)
    finally:
        sys.dont_write_bytecode = writes
    model.meta["version"] = version.version
    return version, model


def bundle_app(
    folder: Path | str, *, max_body_bytes: int | None = None, batching: BatchConfig | None = None
) -> ScoringApp:
    """The scoring app (the same as ``mloop serve``'s) with the bundle's model verified and loaded."""
    from mloop.context import Context
    from mloop.serving.app import DEFAULT_MAX_BODY_BYTES, create_app

    version, model = load_bundle(folder)
    limit = DEFAULT_MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes
    # The context is never opened (no workspace is needed): the model is installed here, so the app's startup
    # does not load it again.
    app = create_app(version.ref, Context(), max_body_bytes=limit, batching=batching)
    app.state.install(version, model)
    return app


def app_from_env() -> ScoringApp:
    """The app a uvicorn worker builds (``mloop.serving.bundle:app_from_env``, factory)."""
    folder = os.environ.get(_ENV_BUNDLE)
    if not folder:
        raise InvalidInput(f"{_ENV_BUNDLE} is not set; start workers with `mloop serve --bundle DIR --workers N`.")
    from mloop.serving.batching import BatchConfig

    batching = BatchConfig(**json.loads(os.environ[_ENV_BATCH])) if os.environ.get(_ENV_BATCH) else None
    return bundle_app(folder, max_body_bytes=int(os.environ[_ENV_MAX_BODY]), batching=batching)


def serve_bundle(
    folder: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    max_body_bytes: int | None = None,
    log_level: str = "info",
    access_log: bool = False,
    batching: BatchConfig | None = None,
) -> None:
    """Serve the bundle in ``folder`` until interrupted; a file that fails verification stops it before it
    listens (the entrypoint of ``mloop package``'s container)."""
    from mloop.serving.server import batch_env, checked_limit, run_one, run_workers

    limit = checked_limit(port, workers, max_body_bytes)
    if workers == 1:
        run_one(bundle_app(folder, max_body_bytes=limit, batching=batching), host, port, log_level, access_log)
        return
    load_bundle(folder)  # verified once here: a tampered file stops before any worker starts
    env = {_ENV_BUNDLE: str(Path(folder).resolve()), _ENV_MAX_BODY: str(limit)}
    if batching is not None:
        env[_ENV_BATCH] = batch_env(batching)
    run_workers("mloop.serving.bundle:app_from_env", env, host, port, workers, log_level, access_log)

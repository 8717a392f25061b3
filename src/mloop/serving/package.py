"""``mloop package``: a registered model version as a Docker build context and Kubernetes manifests.

The build context (``docker=DIR``) is reproducible: the same version, the same installed mloop and the same
options write the same bytes (sorted, no timestamps; the mloop wheel is built by hatchling, whose wheels are
reproducible)::

    Dockerfile          python:X.Y.Z-slim (the version's recorded Python), requirements, the mloop wheel, the
                        bundle, a non-root user, EXPOSE, HEALTHCHECK on /health/ready, ENTRYPOINT
                        ``mloop serve --bundle /opt/mloop/bundle``
    requirements.txt    every package ``==`` pinned: the version's environment lock (the packages that decide how
                        the model behaves) and the scoring server's own runtime dependencies with what they need,
                        at the versions installed here
    wheels/mloop-*.whl  mloop itself, built from the installed source tree (``pip wheel --no-deps``), or a
                        wheel the caller gives (``mloop_wheel=``)
    bundle/             the model bundle (:mod:`mloop.serving.bundle`): files + manifest with digests

``kubernetes=DIR`` writes the manifests of :mod:`mloop.serving.kubernetes`. See docs/serving.md, "Packaging".
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import AlreadyExists, InvalidInput, shown
from mloop.serving.bundle import write_bundle
from mloop.serving.kubernetes import (
    CONTAINER_PORT,
    FILES,
    RUN_AS_USER,
    Resources,
    kubernetes_manifests,
    resources_for,
    slug,
    write_manifests,
)

if TYPE_CHECKING:
    from mloop.context import Context
    from mloop.entities import ModelVersion

__all__ = ["BUNDLE_PATH", "PackageResult", "dockerfile", "package_model", "requirements"]

BUNDLE_PATH = "/opt/mloop/bundle"  # where the container holds the bundle
_DOCKER_OWNED = ("Dockerfile", "requirements.txt", "wheels", "bundle", ".dockerignore")


@dataclass(frozen=True)
class PackageResult:
    """What :func:`package_model` wrote."""

    model: str
    image: str
    python: str
    docker: str | None = None
    kubernetes: str | None = None
    files: tuple[str, ...] = ()
    resources: Resources | None = None
    requirements: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "image": self.image, "python": self.python, "docker": self.docker,
                "kubernetes": self.kubernetes, "files": list(self.files),
                "resources": None if self.resources is None else self.resources.to_dict(),
                "requirements": dict(self.requirements)}  # fmt: skip


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(lock: dict[str, Any], wheel: Path | None = None) -> dict[str, str]:
    """Name -> ``==`` version of what the container installs (mloop itself apart).

    The lock's packages at their locked versions, plus mloop's runtime dependencies (as the shipped ``wheel``
    declares them, else the installed mloop) and everything they need (markers evaluated for a Linux image with
    the lock's Python, extras followed), at the versions installed here. A locked package not installed here is
    pinned without its own dependencies (pip resolves those when the image is built).
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    locked = {_canonical(k): str(v) for k, v in (lock.get("packages") or {}).items()}
    pins: dict[str, str] = dict(locked)
    queue: list[tuple[str, frozenset[str]]] = [(name, frozenset()) for name in locked]
    python = str(lock.get("python") or platform.python_version())
    target = {
        "python_full_version": python,
        "python_version": ".".join(python.split(".")[:2]),
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
    }  # the image, wherever we run
    own = metadata.requires("mloop") if wheel is None else _wheel_requires(wheel)
    queue += [(r, frozenset()) for r in _applicable(own or [], frozenset(), target)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        text, extras = queue.pop()
        req = Requirement(text)
        key = (_canonical(req.name), frozenset(req.extras) | extras)
        if key in seen or key[0] == "mloop":
            continue
        seen.add(key)
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            if key[0] in locked:
                continue
            if target["python_version"] != ".".join(platform.python_version().split(".")[:2]):
                raise InvalidInput(
                    f"{req.name} is needed under Python {python} (the model's lock) but is not installed here "
                    f"(Python {platform.python_version()}), so it cannot be pinned; package from an environment "
                    f"with Python {target['python_version']} and the model's packages."
                ) from None
            raise InvalidInput(
                f"{req.name} (needed by the scoring server) is not installed here, so it cannot be pinned; "
                "install mloop's dependencies (`pip install mloop`) and package again."
            ) from None
        pins.setdefault(key[0], installed)
        queue += [(r, frozenset()) for r in _applicable(metadata.requires(req.name) or [], key[1], target)]
    return dict(sorted(pins.items()))


def _wheel_requires(wheel: Path) -> list[str]:
    """``Requires-Dist`` of a wheel's METADATA."""
    import zipfile
    from email.parser import HeaderParser

    with zipfile.ZipFile(wheel) as z:
        name = next((n for n in z.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise InvalidInput(f"{str(wheel)!r} has no .dist-info/METADATA; give a wheel built by pip or hatchling.")
        headers = HeaderParser().parsestr(z.read(name).decode("utf-8"))
    return list(headers.get_all("Requires-Dist") or [])


def _applicable(texts: list[str], extras: frozenset[str], target: dict[str, str]) -> list[str]:
    """The requirements that apply on this platform under the ``target`` Python (with ``extras``), as
    ``name[extras]`` strings without markers."""
    from packaging.requirements import Requirement

    out = []
    for text in texts:
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({**target, "extra": e})
                                              for e in (*sorted(extras), "")):  # fmt: skip
            continue
        out.append(f"{req.name}[{','.join(sorted(req.extras))}]" if req.extras else req.name)
    return out


def dockerfile(version: ModelVersion, python: str, wheel: str) -> str:
    """The Dockerfile of the build context (a pure function of its arguments)."""
    url = f"http://127.0.0.1:{CONTAINER_PORT}/health/ready"
    health = f"import sys, urllib.request; sys.exit(urllib.request.urlopen('{url}', timeout=2).status != 200)"
    entry = ["mloop", "serve", "--bundle", BUNDLE_PATH, "--host", "0.0.0.0", "--port", str(CONTAINER_PORT)]
    return f"""\
# {version.ref} ({version.flavor}) served by mloop's scoring server. Written by `mloop package`; the same version
# gives the same bytes. The base image is pinned by its exact tag (the version's recorded Python); pin it by
# digest too (python:{python}-slim@sha256:...) where your registry is reachable.
FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid {RUN_AS_USER} mloop \\
 && useradd --system --uid {RUN_AS_USER} --gid mloop --home-dir /home/mloop --create-home mloop
WORKDIR /opt/mloop
COPY requirements.txt /opt/mloop/requirements.txt
RUN pip install --no-cache-dir -r /opt/mloop/requirements.txt
COPY wheels/{wheel} /opt/mloop/wheels/{wheel}
RUN pip install --no-cache-dir --no-deps /opt/mloop/wheels/{wheel}
COPY bundle/ {BUNDLE_PATH}/
USER {RUN_AS_USER}:{RUN_AS_USER}
EXPOSE {CONTAINER_PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \\
  CMD {json.dumps(["python", "-c", health])}
ENTRYPOINT {json.dumps(entry)}
"""


def _mloop_wheel(out: Path, given: Path | None) -> Path:
    """mloop's wheel in ``out``: ``given``, or built from the source tree this mloop is installed from."""
    out.mkdir(parents=True, exist_ok=True)
    if given is not None:
        if not given.is_file() or not re.match(r"^mloop-[^-]+-.*\.whl$", given.name):
            raise InvalidInput(f"--mloop-wheel {str(given)!r} is not an mloop wheel file (mloop-<version>-...whl); "
                               "build one with `pip wheel --no-deps PATH_TO_MLOOP`.")  # fmt: skip
        return Path(shutil.copyfile(given, out / given.name))
    root = Path(__file__).resolve().parents[3]  # <root>/src/mloop/serving/package.py
    project = root / "pyproject.toml"
    if not project.is_file() or not re.search(r'^name = "mloop"$', project.read_text(), re.M):
        raise InvalidInput(
            f"mloop is not installed from a source tree (no pyproject.toml at {str(root)!r}), so its wheel cannot be "
            "built here; pass mloop_wheel= (--mloop-wheel) with an mloop wheel."
        )
    with tempfile.TemporaryDirectory(prefix="mloop-wheel-") as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp, str(root)],
                              capture_output=True, text=True)  # fmt: skip
        wheels = sorted(Path(tmp).glob("mloop-*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise InvalidInput(f"Building mloop's wheel from {str(root)!r} failed: {done.stderr.strip()[-400:]}. Pass "
                               "--mloop-wheel with a wheel built elsewhere.")  # fmt: skip
        return Path(shutil.copyfile(wheels[0], out / wheels[0].name))


def _prepare(folder: Path, force: bool, owned: tuple[str, ...], flag: str) -> None:
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{flag} {str(folder)!r} is a file; give a folder (it is created if missing).")
    entries = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if entries and not force:
        raise AlreadyExists(f"{flag} {str(folder)!r} is not empty ({', '.join(entries[:5])}); choose an empty or "
                            "new folder, or pass --force to replace what `mloop package` writes there.")  # fmt: skip
    for name in owned:  # --force: only what package writes is replaced; other files stay
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def package_model(
    context: Context,
    ref: str,
    *,
    docker: Path | str | None = None,
    kubernetes: Path | str | None = None,
    image: str | None = None,
    replicas_min: int = 2,
    replicas_max: int = 5,
    target_cpu: int = 70,
    cpu: str | None = None,
    memory: str | None = None,
    force: bool = False,
    mloop_wheel: Path | str | None = None,
) -> PackageResult:
    """Write a Docker build context (``docker``) and/or Kubernetes manifests (``kubernetes``) for ``ref``.

    Everything is checked before anything is written: the reference, the folders, the scaling options and the
    resource quantities (flags, else the version's ``mloop.profile.*`` tags, else defaults).
    """
    from mloop.registry.loader import resolve_model

    if docker is None and kubernetes is None:
        raise InvalidInput("Nothing to write: pass --docker DIR (a build context), --kubernetes DIR (manifests), "
                           "or both.")  # fmt: skip
    docker_dir = None if docker is None else Path(docker).expanduser().resolve()
    kube_dir = None if kubernetes is None else Path(kubernetes).expanduser().resolve()
    if docker_dir is not None and docker_dir == kube_dir:
        raise InvalidInput(f"--docker and --kubernetes are both {str(docker_dir)!r}; give them different folders "
                           "(e.g. build/ and deploy/).")  # fmt: skip
    version = resolve_model(context, ref)
    python = str((version.environment or {}).get("python") or platform.python_version())
    if not re.match(r"^[0-9]+\.[0-9]+\.[0-9]+$", python):
        raise InvalidInput(f"{version.ref} records Python {shown(python)}, which names no python:X.Y.Z-slim image; "
                           "register the model again from a released Python.")  # fmt: skip
    image = image if image is not None else f"mloop-{slug(version.name)}:{version.version}"
    resources = manifests = None
    if kube_dir is not None:
        resources = resources_for(version, cpu=cpu, memory=memory)
        manifests = kubernetes_manifests(version, image=image, resources=resources, replicas_min=replicas_min,
                                         replicas_max=replicas_max, target_cpu=target_cpu)  # fmt: skip
    if docker_dir is not None:
        _prepare(docker_dir, force, _DOCKER_OWNED, "--docker")
    if kube_dir is not None:
        _prepare(kube_dir, force, FILES, "--kubernetes")
    written: list[Path] = []
    pins: dict[str, str] = {}
    if docker_dir is not None:
        wheel = _mloop_wheel(docker_dir / "wheels", None if mloop_wheel is None else Path(mloop_wheel))
        pins = requirements(dict(version.environment or {}), wheel)
        bundle = write_bundle(context, version, docker_dir / "bundle")
        (docker_dir / "requirements.txt").write_text(
            f"# {version.ref}: the environment lock and the scoring server's dependencies (written by mloop package)\n"
            + "".join(f"{name}=={pin}\n" for name, pin in pins.items())
        )  # fmt: skip
        (docker_dir / ".dockerignore").write_text("*\n!Dockerfile\n!requirements.txt\n!wheels/\n!bundle/\n")
        (docker_dir / "Dockerfile").write_text(dockerfile(version, python, wheel.name))
        written += [docker_dir / "Dockerfile", docker_dir / ".dockerignore", docker_dir / "requirements.txt", wheel,
                    *bundle]  # fmt: skip
    if kube_dir is not None and manifests is not None:
        written += write_manifests(kube_dir, manifests)
    return PackageResult(model=version.ref, image=image, python=python,
                         docker=None if docker_dir is None else str(docker_dir),
                         kubernetes=None if kube_dir is None else str(kube_dir),
                         files=tuple(str(p) for p in written), resources=resources, requirements=pins)  # fmt: skip

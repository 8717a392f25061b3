"""Kubernetes manifests for a packaged model: Deployment, Service and HorizontalPodAutoscaler (autoscaling/v2).

Pure functions of their arguments (no I/O but :func:`write_manifests`), so the same version and options give
the same bytes. The container is the one ``mloop package --docker`` builds: it listens on
:data:`CONTAINER_PORT`, answers ``/health/ready`` once the model is verified and loaded (the readiness probe)
and ``/health/live`` while the process runs (the liveness probe), and runs as the non-root user
:data:`RUN_AS_USER`. Resource requests come from the caller (flags), else from the version's
``mloop.profile.cpu_request`` / ``mloop.profile.memory_request`` tags (``mloop profile`` records them), else
from :data:`DEFAULT_CPU` / :data:`DEFAULT_MEMORY`; see :func:`resources_for`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.entities import ModelVersion
from mloop.errors import InvalidInput, shown

__all__ = [
    "CONTAINER_PORT",
    "CPU_TAG",
    "DEFAULT_CPU",
    "DEFAULT_MEMORY",
    "MEMORY_TAG",
    "RUN_AS_USER",
    "Resources",
    "kubernetes_manifests",
    "resources_for",
    "slug",
    "to_yaml",
    "write_manifests",
]  # fmt: skip

CONTAINER_PORT = 8080
RUN_AS_USER = 10001
DEFAULT_CPU, DEFAULT_MEMORY = "500m", "512Mi"
CPU_TAG, MEMORY_TAG = "mloop.profile.cpu_request", "mloop.profile.memory_request"
CPU_LIMIT_FACTOR = 2  # the CPU limit is twice the request (a burst for micro-batches); memory limit = request
_CPU = re.compile(r"^(?:[1-9][0-9]*m|[0-9]+(?:\.[0-9]{1,3})?)$")
_MEMORY = re.compile(r"^[1-9][0-9]*(?:Ki|Mi|Gi|Ti|k|M|G|T)?$")
FILES = ("deployment.yaml", "service.yaml", "hpa.yaml")


@dataclass(frozen=True)
class Resources:
    """CPU and memory requests, and where each came from (``flag``, ``profile`` or ``default``)."""

    cpu: str
    memory: str
    cpu_source: str
    memory_source: str

    @property
    def cpu_limit(self) -> str:
        return f"{_millicores(self.cpu) * CPU_LIMIT_FACTOR}m"

    def to_dict(self) -> dict[str, str]:
        return {"cpu": self.cpu, "memory": self.memory, "cpu_limit": self.cpu_limit, "memory_limit": self.memory,
                "cpu_source": self.cpu_source, "memory_source": self.memory_source}  # fmt: skip


def _millicores(cpu: str) -> int:
    return int(cpu[:-1]) if cpu.endswith("m") else round(float(cpu) * 1000)


def _quantity(value: str, kind: str, where: str, fix: str = "") -> str:
    pattern, example = (_CPU, "500m or 1.5") if kind == "cpu" else (_MEMORY, "256Mi or 1Gi")
    if not isinstance(value, str) or not pattern.match(value) or (kind == "cpu" and _millicores(value) < 1):
        raise InvalidInput(f"{where} {shown(value)} is not a Kubernetes {kind} quantity; {fix}use e.g. {example}.")
    return value


def resources_for(version: ModelVersion, *, cpu: str | None = None, memory: str | None = None) -> Resources:
    """Requests for ``version``: a given value, else the version's profile tag, else the default."""
    tags = version.tags or {}
    picked: list[tuple[str, str]] = []
    for kind, given, tag, default, flag in (("cpu", cpu, CPU_TAG, DEFAULT_CPU, "--cpu"),
                                            ("memory", memory, MEMORY_TAG, DEFAULT_MEMORY, "--memory")):  # fmt: skip
        if given is not None:
            picked.append((_quantity(given, kind, flag), "flag"))
        elif tag in tags:
            fix = f"run `mloop profile {version.ref}` again or pass {flag} to override it, "
            picked.append((_quantity(tags[tag], kind, f"The tag {tag} of {version.ref},", fix), "profile"))
        else:
            picked.append((default, "default"))
    return Resources(picked[0][0], picked[1][0], picked[0][1], picked[1][1])


def slug(name: str) -> str:
    """A DNS-1123 label from a model name: lower case, runs of other characters as ``-``, at most 50 long."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50].strip("-")
    return text or "model"


def _check_scaling(replicas_min: int, replicas_max: int, target_cpu: int) -> None:
    if replicas_min < 1:
        raise InvalidInput(f"--replicas-min must be at least 1, got {replicas_min}.")
    if replicas_max < replicas_min:
        raise InvalidInput(f"--replicas-max ({replicas_max}) is below --replicas-min ({replicas_min}); "
                           "give a maximum at least as large as the minimum.")  # fmt: skip
    if not 1 <= target_cpu <= 100:
        raise InvalidInput(f"--target-cpu must be a percentage of the CPU request from 1 to 100, got {target_cpu}.")


def kubernetes_manifests(
    version: ModelVersion,
    *,
    image: str,
    resources: Resources,
    replicas_min: int = 2,
    replicas_max: int = 5,
    target_cpu: int = 70,
) -> dict[str, dict[str, Any]]:
    """File name -> manifest (Deployment, Service, HorizontalPodAutoscaler) serving ``version`` from ``image``."""
    _check_scaling(replicas_min, replicas_max, target_cpu)
    if not image or any(c.isspace() for c in image):
        raise InvalidInput(f"--image {shown(image)} is not an image name; use e.g. registry.example.com/churn:3.")
    name = f"mloop-{slug(version.name)}"
    selector = {"app.kubernetes.io/name": slug(version.name), "app.kubernetes.io/instance": name}
    labels = {**selector, "app.kubernetes.io/component": "scoring-server", "app.kubernetes.io/managed-by": "mloop",
              "app.kubernetes.io/version": str(version.version)}  # fmt: skip
    meta = {"name": name, "labels": labels, "annotations": {"mloop.dev/model": version.ref}}

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": 2,
                "failureThreshold": failures}  # fmt: skip

    container = {
        "name": "scoring",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "readinessProbe": probe("/health/ready", 5, 3),
        "livenessProbe": probe("/health/live", 10, 3),
        "startupProbe": probe("/health/live", 2, 30),  # loading and verifying a large model may take a while
        "resources": {
            "requests": {"cpu": resources.cpu, "memory": resources.memory},
            "limits": {"cpu": resources.cpu_limit, "memory": resources.memory},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas_min,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels, "annotations": meta["annotations"]},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "securityContext": {"runAsNonRoot": True, "fsGroup": RUN_AS_USER},
                },
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": meta,
        "spec": {"type": "ClusterIP", "selector": selector,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
    }  # fmt: skip
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": replicas_min, "maxReplicas": replicas_max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": target_cpu}}}],
        },
    }  # fmt: skip
    return dict(zip(FILES, (deployment, service, hpa), strict=True))


_PLAIN_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]*$")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a YAML double-quoted scalar: never read as a number or bool
    raise TypeError(f"cannot write {type(value).__name__} to a manifest")


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            k = key if _PLAIN_KEY.match(key) else json.dumps(key)
            if isinstance(item, (Mapping, list)) and item:
                out.append(f"{pad}{k}:")
                out.extend(_lines(item, indent + 2))
            else:
                out.append(f"{pad}{k}: {_empty(item) if isinstance(item, (Mapping, list)) else _scalar(item)}")
        return out
    for item in value:
        if isinstance(item, (Mapping, list)) and item:
            nested = _lines(item, indent + 2)
            out.append(f"{pad}- {nested[0].lstrip()}")
            out.extend(nested[1:])
        else:
            out.append(f"{pad}- {_empty(item) if isinstance(item, (Mapping, list)) else _scalar(item)}")
    return out


def _empty(value: Mapping[str, Any] | list[Any]) -> str:
    return "{}" if isinstance(value, Mapping) else "[]"


def to_yaml(document: Mapping[str, Any]) -> str:
    """Block-style YAML of a manifest (mappings, lists, strings, integers, booleans), keys in the given order."""
    return "\n".join(_lines(document, 0)) + "\n"


def write_manifests(folder: Path, manifests: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    """Write each manifest as YAML into ``folder``; return the paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for file_name, manifest in manifests.items():
        path = folder / file_name
        path.write_text(f"# Written by `mloop package`; {manifest['metadata']['annotations']['mloop.dev/model']}\n"
                        + to_yaml(manifest))  # fmt: skip
        paths.append(path)
    return paths

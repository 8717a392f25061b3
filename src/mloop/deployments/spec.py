"""An endpoint's spec (its desired state) as stored in the workspace: building, checking and reading it (pure).

The spec is a JSON document:

```
{"traffic": [{"model": "model:churn/4", "weight": 10}, {"model": "model:churn/3", "weight": 90}],
 "follow": "model:churn@production" | null,      # roll out the alias' version when it moves
 "shadow": {"model": "model:churn/5", "percent": 100.0} | null,
 "sticky_header": "x-routing-key",               # requests with this header always reach the same version
 "rollout": {...RolloutPolicy...},                 # how a new version is rolled out (steps 100 = all at once)
 "canary": {"model": ..., "stable": ..., "step": 0, "started_at": ms, "step_started_at": ms} | null,
 "previous": "model:churn/2" | null,              # the version ``mloop deploy rollback`` returns to
 "host": "127.0.0.1", "port": 8401, "workers": 1, "stream": "nats://..." | null,
 "collect": {"enabled": true, "flush_interval": 1.0, "max_rows": 100000},
 "batching": {"max_rows": 64, "max_wait": 0.002, "max_queue": 256}}
```

Traffic lists versions pinned to a version number (an alias is resolved when the spec is built, so every
process of the endpoint serves the same versions); during a canary the canary comes first, so sticky keys that
reached it keep reaching it as its share grows (see :mod:`mloop.deployments.router`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mloop.deployments.router import Router
from mloop.errors import InvalidInput

__all__ = [
    "DEFAULT_STICKY_HEADER",
    "canary_traffic",
    "check_traffic",
    "model_ref",
    "parse_model_weight",
    "router_of",
    "stable_version",
    "traffic_of",
    "versions_of",
]

DEFAULT_STICKY_HEADER = "x-routing-key"


def model_ref(text: str) -> str:
    """``churn/3`` or ``model:churn/3`` -> ``model:churn/3`` (aliases kept: ``model:churn@production``)."""
    text = text.strip()
    if not text:
        raise InvalidInput("A model reference is empty; use NAME/VERSION or NAME@ALIAS, e.g. churn/3.")
    return text if text.startswith("model:") else f"model:{text}"


def parse_model_weight(text: str) -> tuple[str, float | None]:
    """``churn/3=90`` -> (``model:churn/3``, 90.0); ``churn/3`` -> (``model:churn/3``, None)."""
    ref, sep, weight = text.partition("=")
    if not sep:
        return model_ref(ref), None
    try:
        value = float(weight)
    except ValueError:
        raise InvalidInput(
            f"Weight {weight!r} in {text!r} is not a number; write MODEL=WEIGHT, e.g. churn/3=90."
        ) from None
    if math.isnan(value) or value < 0 or math.isinf(value):
        raise InvalidInput(f"Weight {weight!r} in {text!r} must be a number >= 0, e.g. churn/3=90.")
    return model_ref(ref), value


def traffic_of(spec: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The live versions and their weights, in the spec's order."""
    items = spec.get("traffic") or []
    return [(str(item["model"]), float(item["weight"])) for item in items]


def versions_of(spec: Mapping[str, Any]) -> list[str]:
    """Every version the endpoint must have loaded: the live ones with a weight, then the shadow."""
    refs = [ref for ref, weight in traffic_of(spec) if weight > 0]
    shadow = spec.get("shadow")
    if shadow and shadow["model"] not in refs:
        refs.append(str(shadow["model"]))
    return refs


def stable_version(spec: Mapping[str, Any]) -> str:
    """The version answering for the endpoint outside a rollout (during one: the version being replaced)."""
    canary = spec.get("canary")
    if canary:
        return str(canary["stable"])
    traffic = traffic_of(spec)
    return max(traffic, key=lambda pair: pair[1])[0]


def canary_traffic(canary: str, stable: str, percent: float) -> list[dict[str, Any]]:
    """Traffic with ``percent`` on the canary (listed first) and the rest on the stable version."""
    if percent >= 100:
        return [{"model": canary, "weight": 100.0}]
    return [{"model": canary, "weight": float(percent)}, {"model": stable, "weight": 100.0 - float(percent)}]


def router_of(spec: Mapping[str, Any], seed: int | None = None) -> Router:
    """The router for ``spec``'s traffic and shadow."""
    shadow = spec.get("shadow") or {}
    return Router(traffic_of(spec), shadow=shadow.get("model"), shadow_percent=float(shadow.get("percent", 0.0)),
                  seed=seed)  # fmt: skip


def check_traffic(pairs: Sequence[tuple[str, float | None]]) -> list[dict[str, Any]]:
    """Weights for ``pairs``: all given (any scale, normalised to 100) or none (an even split)."""
    given = [w for _, w in pairs if w is not None]
    if given and len(given) != len(pairs):
        raise InvalidInput("Give a weight to every model or to none (an even split), e.g. churn/3=90 churn/4=10.")
    refs = [ref for ref, _ in pairs]
    dupes = sorted({r for r in refs if refs.count(r) > 1})
    if dupes:
        raise InvalidInput(f"Model {dupes[0]} is listed twice; list each version once with its weight.")
    weights = list(given) if given else [1.0] * len(pairs)
    total = sum(weights)
    if total <= 0:
        raise InvalidInput(f"Traffic weights {weights} add up to 0; give at least one model a weight.")
    return [{"model": ref, "weight": round(100.0 * w / total, 6)} for ref, w in zip(refs, weights, strict=True)]

"""A monitor's spec: what it watches, against what, how often, which signals with which thresholds, and how it
alerts (checked here; defaults filled in so the stored spec says everything the monitor does).

```
{"endpoint": "churn-api",                          # the collected traffic it watches
 "reference": {"dataset": "data:churn-train/3", "target": "churned", "model": "model:churn/3",
               "sketch": "monitors/<name>/reference-<digest>.json"}   # or {"since": ISO, "until": ISO}
 "window": {"every": "1h"} | {"rows": 10000},
 "grace_seconds": 5,                               # a time window is computed this long after it ends
 "incremental": true,                              # time windows from per-part summaries (monitoring.incremental)
 "features": ["age", ...] | null,                  # null: every input column the reference has
 "drift": {"mode": "fast", "methods": {"age": "psi"}, "thresholds": {"age": 0.2}, "share": 0.5, "min_rows": 30},
 "prediction_drift": {"method": "auto", "threshold": null},
 "quality": {"missing_rate": 0.05, "out_of_range": 0.05, "unseen_categories": 0.05},
 "performance": {"metric": "accuracy", "min": 0.8, "max": null, "min_labelled": 30},
 "estimated": {"metric": "accuracy", "min": 0.8, "rescore": true},   # probabilities by re-scoring inputs
 "technical": {"error_rate": 0.05, "latency_p99_ms": 500},
 "alerts": {"consecutive": 2, "resolve_after": 1, "notify": [{"type": "log"}, {"type": "webhook", "url": ...}]}}
```
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any

from mloop.errors import InvalidInput
from mloop.monitoring.notify import check_notifiers

__all__ = ["DEFAULTS", "check_spec", "parse_every", "window_ms"]

DEFAULTS: dict[str, Any] = {
    "window": {"every": "1h"},
    "grace_seconds": 5.0,
    "incremental": True,
    "features": None,
    "drift": {"mode": "fast", "methods": {}, "thresholds": {}, "share": 0.5, "min_rows": 30},
    "prediction_drift": {"method": "auto", "threshold": None},
    "quality": {"missing_rate": 0.05, "out_of_range": 0.05, "unseen_categories": 0.05},
    "performance": {"metric": None, "min": None, "max": None, "min_labelled": 30},
    "estimated": {"metric": "accuracy", "min": None, "rescore": True},
    "technical": {"error_rate": 0.05, "latency_p99_ms": None},
    "alerts": {"consecutive": 2, "resolve_after": 1, "notify": [{"type": "log"}]},
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"^(\d+)([smhd])$")
PERFORMANCE_METRICS = ("accuracy", "f1", "roc_auc", "mae", "rmse")
ESTIMATED_METRICS = ("accuracy", "f1", "roc_auc")


def parse_every(text: str) -> int:
    """``30s``, ``15m``, ``1h``, ``1d`` -> seconds (at least 1 s)."""
    m = _EVERY.match(str(text).strip().lower())
    if not m or int(m.group(1)) < 1:
        raise InvalidInput(f"Window size {text!r} is not a duration like 30s, 15m, 1h or 1d.")
    return int(m.group(1)) * _UNITS[m.group(2)]


def window_ms(spec: Mapping[str, Any]) -> int | None:
    """The window length in ms for a time window, None for a count window."""
    every = spec["window"].get("every")
    return None if every is None else parse_every(every) * 1000


def _merge(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(defaults))
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _number(where: str, value: Any, low: float = 0.0, high: float = math.inf) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"{where} must be a number between {low:g} and {high:g}, got {value!r}.")


def check_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with defaults filled in, or InvalidInput naming the bad field and the fix."""
    unknown = sorted(set(spec) - set(DEFAULTS) - {"endpoint", "reference"})
    if unknown:
        raise InvalidInput(f"Unknown monitor setting(s) {unknown}; the settings are "
                           f"{sorted([*DEFAULTS, 'endpoint', 'reference'])}.")  # fmt: skip
    out = _merge(DEFAULTS, spec)
    if isinstance(spec.get("window"), Mapping):
        out["window"] = dict(spec["window"])  # a window replaces the default (every *or* rows), never merges
    if not isinstance(out.get("endpoint"), str) or not out["endpoint"]:
        raise InvalidInput("A monitor watches an endpoint: give endpoint=<name> (`mloop monitors create NAME "
                           "--endpoint ENDPOINT`).")  # fmt: skip
    ref = out.get("reference")
    if not isinstance(ref, Mapping) or not (ref.get("dataset") or ref.get("since")):
        raise InvalidInput("A monitor needs a reference: a dataset version (--reference data:NAME/VERSION) or an "
                           "earlier window of the endpoint (--reference-since ISO --reference-until ISO).")  # fmt: skip
    window = out["window"]
    if set(window) - {"every", "rows"} or len([k for k in ("every", "rows") if window.get(k)]) != 1:
        raise InvalidInput(f"window must be {{'every': '1h'}} or {{'rows': 10000}}, got {dict(window)!r}.")
    if window.get("every"):
        parse_every(window["every"])
    else:
        _number("window.rows", window["rows"], 1)
    _number("grace_seconds", out["grace_seconds"], 0, 86400)
    if not isinstance(out["incremental"], bool):
        raise InvalidInput(f"incremental must be true or false, got {out['incremental']!r}.")
    drift = out["drift"]
    if drift["mode"] not in ("fast", "exact"):
        raise InvalidInput(f"drift.mode must be 'fast' or 'exact', got {drift['mode']!r}.")
    _number("drift.share", drift["share"], 0.0, 1.0)
    _number("drift.min_rows", drift["min_rows"], 1)
    for name, limit in out["quality"].items():
        _number(f"quality.{name}", limit, 0, 1)
    perf = out["performance"]
    if perf["metric"] is not None and perf["metric"] not in PERFORMANCE_METRICS:
        raise InvalidInput(f"performance.metric {perf['metric']!r} is not one of {list(PERFORMANCE_METRICS)}.")
    _number("performance.min_labelled", perf["min_labelled"], 1)
    if out["estimated"]["metric"] not in ESTIMATED_METRICS:
        raise InvalidInput(f"estimated.metric must be one of {list(ESTIMATED_METRICS)}.")
    _number("technical.error_rate", out["technical"]["error_rate"], 0, 1)
    _number("technical.latency_p99_ms", out["technical"]["latency_p99_ms"], 0)
    alerts = out["alerts"]
    _number("alerts.consecutive", alerts["consecutive"], 1, 1000)
    _number("alerts.resolve_after", alerts["resolve_after"], 1, 1000)
    alerts["notify"] = check_notifiers(alerts["notify"])
    return out

"""An automation's spec: its trigger, condition, action and limits, checked before anything is stored.

::

    {"on": "monitor.alert",                          # an event type (glob: "monitor.*"), or {"cron": "0 2 * * *"}
     "where": "payload.state == 'opened'",           # optional condition (mloop.automation.rules)
     "do": {"action": "run_pipeline", "pipeline": "retrain", "params": {"data": "sensors@latest"}},
     "cooldown": "10m",                              # no new action within 10 minutes of the last one (default 0)
     "max_per_hour": 3,                              # at most 3 actions in any hour (default 6; 0: no limit)
     "max_chain": 5}                                 # automations triggering automations: at most 5 deep

Strings in the action's fields may hold ``${...}`` templates filled from the event that caused the action:
``${subject}``, ``${type}``, ``${actor}``, ``${id}``, ``${payload.a.b}`` (cron actions have no event: only the
fire time, ``${time}``). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mloop.automation.rules import check_type_pattern, parse_condition
from mloop.errors import InvalidInput

__all__ = ["ACTIONS", "DEFAULT_MAX_CHAIN", "DEFAULT_MAX_PER_HOUR", "check_spec", "parse_seconds", "render"]

DEFAULT_MAX_PER_HOUR = 6
DEFAULT_MAX_CHAIN = 5
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TEMPLATE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")

# action -> (required fields, optional fields)
ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "run_pipeline": (("pipeline",), ("params", "timeout")),
    "promote": ((), ("model", "alias", "policy", "evaluate_on", "target")),
    "deploy": (("endpoint",), ("model", "steps")),
    "rollback": ((), ("endpoint", "model", "alias")),
    "notify": ((), ("log", "webhook", "command", "message", "retries", "timeout")),
}
_EXAMPLE = '{"action": "run_pipeline", "pipeline": "retrain", "params": {"data": "sensors@latest"}}'


def parse_seconds(value: Any, what: str) -> float:
    """``90``, ``"90s"``, ``"10m"``, ``"2h"``, ``"1d"`` -> seconds (InvalidInput names ``what`` otherwise)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a duration like '10m' or a number of seconds, got {value!r}.")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*", str(value))
        if match is None:
            raise InvalidInput(f"{what} must be a duration like '30s', '10m', '2h' or '1d', got {value!r}.")
        seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if not 0 <= seconds <= 366 * 86400:
        raise InvalidInput(f"{what} must be between 0 and 366 days, got {value!r}.")
    return seconds


def _whole(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{what} must be a whole number from {low} to {high}, got {value!r}.")
    return value


def _trigger(on: Any) -> dict[str, str]:
    from mloop.pipelines.schedules import check_cron

    if isinstance(on, Mapping) and set(on) == {"cron"}:
        return {"cron": check_cron(str(on["cron"]))}
    if isinstance(on, str) and on.strip().startswith("cron:"):
        return {"cron": check_cron(on.strip().removeprefix("cron:").strip())}
    if isinstance(on, str):
        return {"event": check_type_pattern(on.strip())}
    raise InvalidInput(
        f"'on' must be an event type such as 'monitor.alert' (or 'monitor.*'), or {{'cron': '0 2 * * *'}}; got {on!r}."
    )


def _action(do: Any) -> dict[str, Any]:
    if not isinstance(do, Mapping) or "action" not in do:
        raise InvalidInput(f"'do' must be a mapping with an 'action', e.g. {_EXAMPLE}; got {do!r}.")
    kind = do["action"]
    if kind not in ACTIONS:
        raise InvalidInput(f"Action {kind!r} is not one of {sorted(ACTIONS)}. Example: {_EXAMPLE}.")
    required, optional = ACTIONS[kind]
    missing = [f for f in required if do.get(f) in (None, "")]
    unknown = sorted(set(do) - {"action", *required, *optional})
    if missing:
        raise InvalidInput(f"Action {kind!r} needs {', '.join(map(repr, missing))}. Example: {_EXAMPLE}.")
    if unknown:
        raise InvalidInput(
            f"Action {kind!r} has no field {', '.join(map(repr, unknown))}; its fields are "
            f"{sorted({*required, *optional})}."
        )
    out = dict(do)
    if kind in ("promote", "deploy") and not out.get("model"):
        out["model"] = "${subject}"  # the version the event is about (model.version_registered, model.alias_moved)
    if kind == "run_pipeline" and not isinstance(out.get("params", {}), Mapping):
        raise InvalidInput(
            f"run_pipeline params must be a mapping of parameter names to values, got {out['params']!r}."
        )
    if kind == "notify":
        targets = [k for k in ("log", "webhook", "command") if out.get(k) is not None]
        if len(targets) != 1:
            raise InvalidInput(
                "A notify action sends to one of 'log' (true or a logger name), 'webhook' (an http(s) "
                "URL) or 'command' (a list: program and arguments); give exactly one."
            )
        if "webhook" in targets and not str(out["webhook"]).startswith(("http://", "https://")):
            raise InvalidInput(f"notify webhook must be an http(s) URL, got {out['webhook']!r}.")
        if "command" in targets and (not isinstance(out["command"], list) or not out["command"]):
            raise InvalidInput(
                f"notify command must be a non-empty list (program and arguments), got {out['command']!r}."
            )
    if kind == "rollback" and not (out.get("endpoint") or out.get("model")):
        raise InvalidInput(
            "A rollback action names an 'endpoint' (roll the endpoint back) or a 'model' with its "
            "'alias' (move the alias back), e.g. {'action': 'rollback', 'endpoint': 'sensors'}."
        )
    if kind == "deploy" and "steps" in out:
        steps = out["steps"]
        if not isinstance(steps, list) or not steps or not all(isinstance(s, int | float) for s in steps):
            raise InvalidInput(f"deploy steps must be a list of percentages such as [10, 50, 100], got {steps!r}.")
    return out


def check_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec, checked and normalised: ``on`` becomes ``{"event": pattern}`` or ``{"cron": expr}``, durations
    become seconds (``cooldown_s``), limits take their defaults."""
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"An automation spec is a mapping with 'on' and 'do', got {spec!r}.")
    known = {"on", "where", "do", "cooldown", "cooldown_s", "max_per_hour", "max_chain", "description"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise InvalidInput(f"Automation spec has no field {', '.join(map(repr, unknown))}; use {sorted(known)}.")
    if "on" not in spec or "do" not in spec:
        raise InvalidInput(
            f"An automation needs 'on' (an event type or a cron) and 'do' (an action), e.g. "
            f"on='monitor.alert', do={_EXAMPLE}."
        )
    where = spec.get("where") or ""
    if not isinstance(where, str):
        raise InvalidInput(f"'where' must be a condition text such as \"payload.state == 'opened'\", got {where!r}.")
    trigger = _trigger(spec["on"])
    if "cron" in trigger and where:
        raise InvalidInput("A cron automation has no event to test: drop 'where' (conditions apply to events).")
    parse_condition(where)
    cooldown = spec.get("cooldown_s", spec.get("cooldown", 0))
    out: dict[str, Any] = {
        "on": trigger,
        "where": where.strip(),
        "do": _action(spec["do"]),
        "cooldown_s": parse_seconds(cooldown, "cooldown"),
        "max_per_hour": _whole(spec.get("max_per_hour", DEFAULT_MAX_PER_HOUR), "max_per_hour", 0, 1_000_000),
        "max_chain": _whole(spec.get("max_chain", DEFAULT_MAX_CHAIN), "max_chain", 1, 50),
    }
    if spec.get("description"):
        out["description"] = str(spec["description"])
    return out


def _lookup(event: Mapping[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def render(value: Any, event: Mapping[str, Any]) -> Any:
    """``value`` with every ``${field}`` filled from ``event`` (recursively in lists and mappings). A string that is
    one template alone takes the field's value as it is (a number stays a number); a missing field is
    InvalidInput naming it."""
    if isinstance(value, Mapping):
        return {k: render(v, event) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, event) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def field(path: str) -> Any:
        found = _lookup(event, path)
        if found is None:
            raise InvalidInput(
                f"Template ${{{path}}} names nothing in the event (type {event.get('type')!r}); the "
                f"event has {sorted(event)} and payload fields {sorted(event.get('payload') or {})}."
            )
        return found

    whole = _TEMPLATE.fullmatch(value)
    if whole:
        return field(whole[1])
    return _TEMPLATE.sub(lambda m: str(field(m[1])), value)

"""Canary rollout: the policy and the decision at each look (pure: figures in, a decision out; no I/O, no clock).

A canary moves through traffic steps (``10% -> 50% -> 100%``). The supervisor scrapes the endpoint, computes the
stable and the canary version's :class:`WindowStats` over the same window (since the step started; see
:mod:`mloop.deployments.promstats`) and calls :func:`decide`, which answers ``hold``, ``step``, ``promote`` or
``rollback`` with one sentence of figures and the figures themselves (recorded in the rollout event).

Rules, in order:

1. **Rollback** when the canary may be judged and exceeds a bound. *Errors* are 5xx answers (a client's 4xx is
   not the model's fault). The error rate is judged once the canary has ``min_requests`` requests, or earlier
   once it has ``fail_fast_errors`` errors; it fails when ``canary rate > baseline + max_error_rate_increase``.
   The baseline is the stable version's rate in the window if the stable served at least half of
   ``min_requests`` there, else 0% (no baseline: at 100% the stable serves nothing; pass the previous step's
   stable window to keep one). p99 is judged once the canary has ``min_requests`` requests and only when both
   sides have ``p99_min_requests`` (default 100: below 100 requests a histogram's p99 is the window's slowest
   request, so one hiccup would decide); it fails when ``canary p99 > max_p99_ratio * stable p99 +
   p99_slack_ms``. A canary short of ``p99_min_requests`` skips the p99 check, as does a stable one at 100%
   (the reason says so); below 100% the stable still serves, so the decision waits for its requests.
2. **Step** (or **promote** from the last step, 100%) when the canary has ``min_requests`` requests, the step
   has lasted ``dwell_seconds`` and no bound is exceeded.
3. Otherwise **hold**; the reason says what it waits for.

Prediction guard (opt-in, ``max_prediction_psi``): before a step or a promotion the controller compares the
canary's predictions with the stable version's over the step's window (:mod:`mloop.deployments.divergence`)
and rolls back when the index exceeds the bound.

Error guard: an excess over the bound rolls the canary back once it is significant (one-sided z-test of "canary
- stable > max_error_rate_increase" on Agresti-Caffo estimates, level ``error_significance``, default 0.05; 1.0
turns it off) or once the canary has served 4 x ``min_requests``; until then the canary holds.

:class:`RolloutPolicy` follows scikit-learn's rule: construction stores values, :meth:`RolloutPolicy.validate`
(called by :func:`decide` and :meth:`RolloutPolicy.from_dict`) checks them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from mloop.errors import InvalidInput, shown

__all__ = [
    "ACTIONS",
    "PLAIN_BOUND_AFTER",
    "Decision",
    "RolloutPolicy",
    "WindowStats",
    "decide",
    "excess_p_value",
    "parse_steps",
]

ACTIONS = ("hold", "step", "promote", "rollback")
PLAIN_BOUND_AFTER = 4  # from this many times min_requests canary requests on, an error excess needs no test


def parse_steps(text: str) -> tuple[float, ...]:
    """``"10,50,100"`` (``%`` signs and spaces allowed) -> ``(10.0, 50.0, 100.0)``, checked like the policy's."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"Rollout steps must be canary percentages like '10,50,100', got {shown(text)}.")
    steps = []
    for part in text.split(","):
        item = part.strip().removesuffix("%").strip()
        try:
            steps.append(float(item))
        except ValueError:
            raise InvalidInput(
                f"Rollout step {shown(part.strip())} in {shown(text)} is not a percentage; write e.g. '10,50,100'."
            ) from None
    return _checked_steps(tuple(steps))


def _checked_steps(steps: Any) -> tuple[float, ...]:
    if not isinstance(steps, (tuple, list)) or not steps:
        raise InvalidInput(f"RolloutPolicy.steps must be canary percentages like (10, 50, 100), got {shown(steps)}.")
    for s in steps:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 100:
            raise InvalidInput(f"RolloutPolicy.steps: {shown(s)} is not a percentage in (0, 100]; e.g. '10,50,100'.")
    values = tuple(float(s) for s in steps)
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise InvalidInput(f"RolloutPolicy.steps must increase step by step, got {values}; e.g. '10,50,100'.")
    if values[-1] != 100.0:
        raise InvalidInput(
            f"RolloutPolicy.steps must end at 100 (the canary takes all traffic before promotion), got {values};"
            f" add 100 as the last step."
        )
    return values


def _number(name: str, value: Any, low: float, high: float = math.inf, *, integer: bool = False) -> None:
    kind = "an integer" if integer else "a number"
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or not (low <= value <= high) or (not integer and math.isnan(value)):
        span = f">= {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        raise InvalidInput(f"RolloutPolicy.{name} must be {kind} {span}, got {shown(value)}.")


@dataclass(frozen=True)
class RolloutPolicy:
    """How a canary moves forward and when it is rolled back (module docstring: the rules)."""

    steps: tuple[float, ...] = (10.0, 50.0, 100.0)  # canary traffic percent per step, increasing, last == 100
    min_requests: int = 100  # canary requests needed in a step before it may move forward
    dwell_seconds: float = 30.0  # minimum time in a step before moving forward
    max_error_rate_increase: float = 0.02  # canary error rate may exceed the baseline by at most this (absolute)
    max_p99_ratio: float = 1.5  # canary p99 may be at most this times stable's p99 ...
    p99_slack_ms: float = 5.0  # ... plus this (tiny absolute differences never fail a canary)
    fail_fast_errors: int = 10  # with this many canary errors over the bound, roll back before min_requests
    p99_min_requests: int = 100  # requests each side needs in the window before p99s are compared
    error_significance: float = 0.05  # level of the excess test for an error rollback (1.0: plain bound)
    max_prediction_psi: float | None = None  # opt-in: roll back when the canary's predictions shift beyond this

    def validate(self) -> RolloutPolicy:
        """Check every field (:class:`~mloop.errors.InvalidInput` names the field and the fix); returns ``self``."""
        _checked_steps(self.steps)
        _number("min_requests", self.min_requests, 1, integer=True)
        _number("dwell_seconds", self.dwell_seconds, 0, 1e9)
        _number("max_error_rate_increase", self.max_error_rate_increase, 0, 1)
        _number("max_p99_ratio", self.max_p99_ratio, 1, 1e6)
        _number("p99_slack_ms", self.p99_slack_ms, 0, 1e9)
        _number("fail_fast_errors", self.fail_fast_errors, 1, integer=True)
        _number("p99_min_requests", self.p99_min_requests, 1, integer=True)
        _number("error_significance", self.error_significance, 1e-12, 1)
        if self.max_prediction_psi is not None:
            _number("max_prediction_psi", self.max_prediction_psi, 1e-6, 100)
        return self

    def get_params(self) -> dict[str, Any]:
        return self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["steps"] = list(self.steps)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutPolicy:
        """A checked policy from its :meth:`to_dict` form (``steps`` may also be a string like ``"10,50,100"``);
        missing fields take their defaults."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"A rollout policy must be a mapping of its fields, got {shown(data)}.")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidInput(f"Unknown rollout policy field(s) {unknown}; the fields are {known}.")
        values = dict(data)
        if "steps" in values:
            steps = values["steps"]
            values["steps"] = parse_steps(steps) if isinstance(steps, str) else _checked_steps(steps)
        return cls(**values).validate()


@dataclass(frozen=True)
class WindowStats:
    """One version's figures over a window: answered requests, 5xx ``errors``, p99 latency (``None``: no
    latency observed), and 4xx ``client_errors`` (shown, never judged)."""

    requests: int
    errors: int
    p99_ms: float | None
    client_errors: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_rate": self.error_rate}

    def validate(self, side: str = "a") -> WindowStats:
        """Counts are integers >= 0 with no more errors than requests; ``p99_ms`` is ``None`` or >= 0."""
        ints = (self.requests, self.errors, self.client_errors)
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in ints):
            raise InvalidInput(f"The {side} window's counts must be integers >= 0, got {self}.")
        if self.errors + self.client_errors > self.requests:
            raise InvalidInput(f"The {side} window has more errors than requests: {self}.")
        p99 = self.p99_ms
        if p99 is not None and (isinstance(p99, bool) or not isinstance(p99, (int, float)) or not p99 >= 0):
            raise InvalidInput(f"The {side} window's p99_ms must be a number >= 0 or None, got {shown(p99)}.")
        return self


@dataclass(frozen=True)
class Decision:
    """What to do now. ``step`` and ``canary_percent`` are the state after the decision (a rollback keeps the
    step it failed at, with 0%; a promotion ends at the last step with 100%)."""

    action: str
    step: int
    canary_percent: float
    reason: str
    figures: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def excess_p_value(
    canary_errors: int, canary_requests: int, stable_errors: int, stable_requests: int, margin: float
) -> float:
    """One-sided p-value for "canary error rate - stable error rate > ``margin``": a z-test on Agresti-Caffo
    estimates (one error and one success added to each side, which keeps small counts honest). With
    ``stable_requests == 0`` (no baseline) it tests "canary error rate > ``margin``" alone."""
    pc = (canary_errors + 1) / (canary_requests + 2)
    variance = pc * (1 - pc) / (canary_requests + 2)
    ps = 0.0
    if stable_requests > 0:
        ps = (stable_errors + 1) / (stable_requests + 2)
        variance += ps * (1 - ps) / (stable_requests + 2)
    z = (pc - ps - margin) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def _pct(rate: float) -> str:
    return f"{100 * rate:.2g}%" if 0 < rate < 0.001 else f"{100 * rate:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _error_check(policy: RolloutPolicy, stable: WindowStats, canary: WindowStats, enough: bool) -> dict[str, Any]:
    """The error-rate rule: ``check`` is pass, pending (not judged yet), not significant, or fail."""
    baseline = stable.requests >= math.ceil(policy.min_requests / 2)
    base_rate = stable.error_rate if baseline else 0.0
    bound = base_rate + policy.max_error_rate_increase
    over = canary.requests > 0 and canary.error_rate > bound + 1e-12  # not over by float rounding alone
    p_value = None
    if over:
        stable_n, stable_e = (stable.requests, stable.errors) if baseline else (0, 0)
        p_value = excess_p_value(canary.errors, canary.requests, stable_e, stable_n, policy.max_error_rate_increase)
    base = f"stable {_pct(base_rate)}" if baseline else f"0% (no baseline: stable served {stable.requests})"
    text = f"canary error rate {_pct(canary.error_rate)} {'>' if over else '<='} {base}"
    text += f" + {_pct(policy.max_error_rate_increase)}"
    if p_value is not None:
        text += f" (p={p_value:.2g})"
    if not over:
        check = "pass"
    elif not (enough or canary.errors >= policy.fail_fast_errors):
        check = "pending"
    else:
        plain = canary.requests >= PLAIN_BOUND_AFTER * policy.min_requests or policy.error_significance >= 1.0
        significant = p_value is not None and p_value <= policy.error_significance
        check = "fail" if plain or significant else "not significant"
    return {"check": check, "text": text, "over": over, "bound": bound, "baseline": baseline, "p_value": p_value}


def _p99_check(
    policy: RolloutPolicy, stable: WindowStats, canary: WindowStats, enough: bool, percent: float
) -> dict[str, Any]:
    """The p99 rule: ``check`` is pending, waiting (for stable requests), skipped, pass or fail."""
    need = policy.p99_min_requests
    if not enough:
        return {"check": "pending", "text": "", "limit": None}
    if canary.requests < need or canary.p99_ms is None:
        text = f"p99 not compared (canary served {canary.requests} requests; needs {need})"
        return {"check": "skipped", "text": text, "limit": None}
    if stable.requests < need or stable.p99_ms is None:
        if percent < 100.0:  # the stable still serves: a few more seconds give it enough requests
            return {
                "check": "waiting",
                "text": f"{stable.requests}/{need} stable requests to compare p99",
                "limit": None,
            }
        text = f"p99 not compared (stable served {stable.requests} requests at 100%; needs {need})"
        return {"check": "skipped", "text": text, "limit": None}
    limit = policy.max_p99_ratio * stable.p99_ms + policy.p99_slack_ms
    check = "fail" if canary.p99_ms > limit else "pass"
    text = (
        f"canary p99 {_ms(canary.p99_ms)} {'>' if check == 'fail' else '<='}"
        f" {policy.max_p99_ratio:g} x stable {_ms(stable.p99_ms)} + {policy.p99_slack_ms:g} ms"
    )
    return {"check": check, "text": text, "limit": limit}


def decide(
    policy: RolloutPolicy, *, step: int, step_started_ms: int, now_ms: int, stable: WindowStats, canary: WindowStats
) -> Decision:
    """The decision at step index ``step`` (started at ``step_started_ms``), given both versions' figures over
    the window since the step started (module docstring: the rules). A clock that went back counts as 0 s.

    At 100% the stable version serves nothing, so pass as ``stable`` its window from the step before (the last
    one in which it served): the canary is then compared with what the stable version really did. With an
    empty stable window the canary's error rate is held to 0% + ``max_error_rate_increase`` and p99 is not
    compared."""
    policy.validate()
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < len(policy.steps):
        raise InvalidInput(
            f"Rollout step index must be 0..{len(policy.steps) - 1} (steps {policy.steps}), got {step!r}."
        )
    stable, canary = stable.validate("stable"), canary.validate("canary")
    percent = policy.steps[step]
    elapsed = max(0.0, (now_ms - step_started_ms) / 1000.0)
    enough, dwelt = canary.requests >= policy.min_requests, elapsed >= policy.dwell_seconds
    err, p99 = _error_check(policy, stable, canary, enough), _p99_check(policy, stable, canary, enough, percent)
    figures: dict[str, Any] = {
        "step": step,
        "canary_percent": percent,
        "elapsed_seconds": round(elapsed, 3),
        "stable": stable.to_dict(),
        "canary": canary.to_dict(),
        "bounds": {
            "max_error_rate": err["bound"],
            "error_baseline": "stable" if err["baseline"] else "none",
            "error_p_value": err["p_value"],
            "error_significance": policy.error_significance,
            "max_p99_ms": p99["limit"],
            "min_requests": policy.min_requests,
            "dwell_seconds": policy.dwell_seconds,
        },
        "checks": {"error_rate": err["check"], "p99": p99["check"]},
    }
    failed = [c["text"] for c in (err, p99) if c["check"] == "fail"]
    if failed:
        return Decision("rollback", step, 0.0, f"rolled back at {percent:g}%: {'; '.join(failed)}.", figures)
    if enough and dwelt and err["check"] == "pass" and p99["check"] != "waiting":
        passed = "; ".join(t for t in (err["text"], p99["text"]) if t)
        summary = f"{canary.requests} canary requests in {elapsed:.0f} s; {passed}"
        if step == len(policy.steps) - 1:
            return Decision("promote", step, 100.0, f"promoted after {percent:g}%: {summary}.", figures)
        after = policy.steps[step + 1]
        return Decision("step", step + 1, after, f"canary {percent:g}% -> {after:g}%: {summary}.", figures)
    waits = []
    if not enough:
        waits.append(f"{canary.requests}/{policy.min_requests} canary requests")
    if not dwelt:
        waits.append(f"{elapsed:.0f}/{policy.dwell_seconds:g} s dwell")
    if p99["check"] == "waiting":
        waits.append(p99["text"])
    if err["check"] == "pending":
        waits.append(f"more evidence ({err['text']}; {canary.errors}/{policy.fail_fast_errors} errors to fail fast)")
    elif err["check"] == "not significant":
        waits.append(f"more requests ({err['text']}: not yet significant at {policy.error_significance:g})")
    return Decision("hold", step, percent, f"holding at {percent:g}%: waiting for {', '.join(waits)}.", figures)

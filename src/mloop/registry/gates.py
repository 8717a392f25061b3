"""Promotion gates: composable checks, combined with ``&``, evaluated against a candidate version.

>>> policy = min_metric("roc_auc", 0.85) & beats("production", metric="roc_auc", margin=0.005) & approvals(1)
>>> parse_policy("min_metric('roc_auc', 0.85) & approvals(1, role='approver')")   # from a workspace file

Checks follow scikit-learn's rule for configuration objects: ``__init__`` only stores its arguments,
validation happens when the check runs, ``get_params()`` returns them. Each check returns
:class:`CheckResult` rows with the measured and the required value, so a refusal can say exactly why.
"""

from __future__ import annotations

import ast
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.entities import Evaluation, ModelVersion
from mloop.errors import InvalidInput, NotFound
from mloop.refs import parse_ref

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = [
    "Check",
    "CheckResult",
    "GateContext",
    "Policy",
    "approvals",
    "beats",
    "evaluated",
    "max_latency_ms",
    "max_metric",
    "min_metric",
    "parse_policy",
    "uncontaminated",
]

LOWER_IS_BETTER = frozenset({"log_loss", "brier", "mae", "rmse", "mse", "mape", "median_ae", "ece"})


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    measured: str
    required: str
    detail: str = ""


@dataclass
class GateContext:
    """What checks look at. ``compare`` runs a champion/challenger comparison (provided by the registry)."""

    client: Context
    candidate: ModelVersion
    alias: str
    roles: Mapping[str, Sequence[str]] = field(default_factory=dict)
    compare: Callable[[ModelVersion, ModelVersion, str, str], Mapping[str, Any]] | None = None

    def latest_evaluation(self, data_ref: str | None = None) -> Evaluation | None:
        evaluations = self.client.store.list_evaluations(self.candidate.name, self.candidate.version, data_ref=data_ref)
        return evaluations[0] if evaluations else None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


class Check(ABC):
    """A promotion check. Combine checks with ``&``."""

    def get_params(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__.lower()}({args})"

    def __and__(self, other: Check) -> Policy:
        left = self.checks if isinstance(self, Policy) else (self,)
        right = other.checks if isinstance(other, Policy) else (other,)
        return Policy(*left, *right)

    @abstractmethod
    def run(self, ctx: GateContext) -> list[CheckResult]: ...


class Policy(Check):
    """All checks must pass."""

    def __init__(self, *checks: Check) -> None:
        self.checks = checks

    def get_params(self) -> dict[str, Any]:
        return {"checks": list(self.checks)}

    def __repr__(self) -> str:
        return " & ".join(repr(c) for c in self.checks) or "policy()"

    def run(self, ctx: GateContext) -> list[CheckResult]:
        return [row for check in self.checks for row in check.run(ctx)]


def _metric_of(ev: Evaluation, metric: str) -> float | None:
    value = ev.metrics.get(metric)
    if isinstance(value, (int, float)):
        return float(value)
    return None


class evaluated(Check):
    """The candidate has an evaluation, on a private holdout unless ``private=False``."""

    def __init__(self, private: bool = True, data: str | None = None) -> None:
        self.private = private
        self.data = data

    def run(self, ctx: GateContext) -> list[CheckResult]:
        evs = ctx.client.store.list_evaluations(ctx.candidate.name, ctx.candidate.version, data_ref=self.data)
        ok = []
        for ev in evs:
            if not self.private:
                ok.append(ev)
                continue
            ref = ev.data_ref.removeprefix("data:")
            name, _, version = ref.partition("/")
            try:
                if ctx.client.store.get_dataset_version(name, int(version) if version.isdigit() else None).private:
                    ok.append(ev)
            except NotFound:
                continue
        required = "an evaluation on a private holdout" if self.private else "an evaluation"
        measured = ok[0].data_ref if ok else ("none" if not evs else "only on non-private data")
        return [CheckResult(repr(self), bool(ok), measured, required)]


class uncontaminated(Check):
    """The candidate's training never touched a private holdout it is evaluated on (always checked).

    :func:`~mloop.registry.promote.check_policy` adds this check to every policy; a caller cannot remove it.
    See :mod:`mloop.registry.contamination` for what counts as touching.
    """

    def run(self, ctx: GateContext) -> list[CheckResult]:
        from mloop.registry.contamination import contamination

        required = "training never read the evaluation holdout"
        holdouts = []
        for ev in ctx.client.store.list_evaluations(ctx.candidate.name, ctx.candidate.version):
            r = parse_ref(ev.data_ref, default_kind="data")
            try:
                private = ctx.client.store.get_dataset_version(r.name, r.version, r.alias).private
            except NotFound:
                continue
            if private and ev.data_ref not in holdouts:
                holdouts.append(ev.data_ref)
        findings = [f for h in holdouts for f in contamination(ctx.client, ctx.candidate, h)]
        if findings:
            more = f" (+{len(findings) - 1} more: {'; '.join(findings[1:])})" if len(findings) > 1 else ""
            return [CheckResult(repr(self), False, f"contaminated: {findings[0]}", required,
                                "retrain on the train split in a new run" + more)]  # fmt: skip
        measured = "clean on " + ", ".join(holdouts) if holdouts else "no holdout evaluation to check"
        return [CheckResult(repr(self), True, measured, required)]


class min_metric(Check):
    """The latest evaluation's ``metric`` is at least ``threshold``."""

    def __init__(self, metric: str, threshold: float, data: str | None = None) -> None:
        self.metric = metric
        self.threshold = threshold
        self.data = data

    def _compare(self, value: float) -> bool:
        return value >= self.threshold

    def _required(self) -> str:
        return f">= {_fmt(float(self.threshold))}"

    def run(self, ctx: GateContext) -> list[CheckResult]:
        ev = ctx.latest_evaluation(self.data)
        if ev is None:
            return [CheckResult(repr(self), False, "not evaluated", self._required(),
                                f"run `mloop evaluate {ctx.candidate.ref} --data HOLDOUT` first")]  # fmt: skip
        value = _metric_of(ev, self.metric)
        if value is None:
            known = ", ".join(k for k, v in ev.metrics.items() if isinstance(v, (int, float)))
            return [CheckResult(repr(self), False, "missing", self._required(), f"metrics available: {known}")]
        passed = not math.isnan(value) and self._compare(value)
        return [CheckResult(repr(self), passed, _fmt(value), self._required(), f"on {ev.data_ref}")]


class max_metric(min_metric):
    """The latest evaluation's ``metric`` is at most ``threshold`` (for losses and errors)."""

    def _compare(self, value: float) -> bool:
        return value <= self.threshold

    def _required(self) -> str:
        return f"<= {_fmt(float(self.threshold))}"


class beats(Check):
    """The candidate beats the version holding ``alias`` on the same holdout, by more than ``margin``.

    A paired bootstrap gives a ``confidence`` interval of the improvement (positive = better, whatever the
    metric's direction); the check passes when its lower bound exceeds ``margin``. With no holder, it passes.
    """

    def __init__(self, alias: str, metric: str, margin: float = 0.0, confidence: float = 0.95) -> None:
        self.alias = alias
        self.metric = metric
        self.margin = margin
        self.confidence = confidence

    def run(self, ctx: GateContext) -> list[CheckResult]:
        required = f"CI{self.confidence:.0%} of {self.metric} gain > {_fmt(float(self.margin))} vs @{self.alias}"
        try:
            champion = ctx.client.store.get_model_version(ctx.candidate.name, alias=self.alias)
        except NotFound:
            return [CheckResult(repr(self), True, f"no @{self.alias} holder", required, "nothing to beat")]
        if champion.id == ctx.candidate.id:
            return [CheckResult(repr(self), False, f"is @{self.alias}", required, "the candidate is the champion")]
        ev = ctx.latest_evaluation()
        if ev is None or ctx.compare is None:
            return [CheckResult(repr(self), False, "not evaluated", required,
                                f"evaluate {ctx.candidate.ref} on a holdout first")]  # fmt: skip
        result = ctx.compare(ctx.candidate, champion, ev.data_ref, self.metric)
        low = float(result["ci_low"])
        high = float(result["ci_high"])
        passed = low > self.margin
        measured = (
            f"{result.get('metric', self.metric)} {_fmt(float(result['improvement']))} [{_fmt(low)}, {_fmt(high)}]"
        )
        return [CheckResult(repr(self), passed, measured, required, f"vs {champion.ref} on {ev.data_ref}")]


class approvals(Check):
    """At least ``count`` distinct people (with ``role``, when given) approved the candidate for this alias."""

    def __init__(self, count: int = 1, role: str | None = None) -> None:
        self.count = count
        self.role = role

    def run(self, ctx: GateContext) -> list[CheckResult]:
        if not isinstance(self.count, int) or self.count < 1:
            raise InvalidInput(f"approvals() needs a whole number of at least 1, got {self.count!r}.")
        rows = ctx.client.store.list_approvals(ctx.candidate.name, ctx.candidate.version, alias=ctx.alias)
        actors = {a.actor for a in rows if self.role is None or self.role in a.roles}
        required = f">= {self.count} approval(s)" + (f" by role {self.role!r}" if self.role else "")
        names = ", ".join(sorted(actors)) or "none"
        return [CheckResult(repr(self), len(actors) >= self.count, f"{len(actors)} ({names})", required)]


class max_latency_ms(Check):
    """Single-row prediction latency (``percentile`` of the latest evaluation's measurement) is low enough."""

    def __init__(self, ms: float, percentile: str = "p95") -> None:
        self.ms = ms
        self.percentile = percentile

    def run(self, ctx: GateContext) -> list[CheckResult]:
        ev = ctx.latest_evaluation()
        required = f"{self.percentile} <= {_fmt(float(self.ms))} ms"
        if ev is None or self.percentile not in ev.latency_ms:
            return [CheckResult(repr(self), False, "not measured", required, "evaluate the candidate first")]
        value = float(ev.latency_ms[self.percentile])
        return [CheckResult(repr(self), value <= self.ms, f"{_fmt(value)} ms", required)]


_CHECKS: dict[str, type[Check]] = {
    "min_metric": min_metric,
    "max_metric": max_metric,
    "beats": beats,
    "approvals": approvals,
    "max_latency_ms": max_latency_ms,
    "evaluated": evaluated,
    "uncontaminated": uncontaminated,
}


def _build(node: ast.AST, text: str) -> Check:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
        return _build(node.left, text) & _build(node.right, text)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CHECKS:
        try:
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
            return _CHECKS[node.func.id](*args, **kwargs)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"Bad arguments in policy {text!r}: {exc}.") from None
    raise InvalidInput(
        f"Cannot read the policy {text!r}: write checks joined by '&', e.g. "
        "\"min_metric('roc_auc', 0.85) & approvals(1, role='approver')\". Checks: " + ", ".join(sorted(_CHECKS))
    )


def parse_policy(text: str) -> Policy:
    """Parse a policy string (only the known checks with literal arguments; nothing is executed)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise InvalidInput(f"Cannot read the policy {text!r}: it is not a valid expression.") from None
    check = _build(tree.body, text)
    return check if isinstance(check, Policy) else Policy(check)

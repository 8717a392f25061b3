"""Cache policies: values that decide whether an earlier step run with the same cache key may be reused.

``cache=True`` is :class:`Reuse` (any finished run with the same key whose outputs still exist),
``cache=False`` is :class:`Never`. Policies compose as values: ``MaxAge(3600) & SameActor()`` reuses only
a run at most an hour old that the same person made. Each policy follows scikit-learn's rule: ``__init__``
stores its keyword arguments, ``get_params()`` returns them, checks happen when the policy is used.
"""

from __future__ import annotations

from typing import Any

from mloop.entities import RunRecord
from mloop.errors import InvalidInput, shown

__all__ = ["CachePolicy", "MaxAge", "Never", "Reuse", "SameActor", "as_policy"]


class CachePolicy:
    """Base class: :meth:`refusal` says why ``previous`` may not be reused, or ``None`` if it may."""

    enabled = True  # False: the step never looks for an earlier run

    def refusal(self, previous: RunRecord, *, now_ms: int, actor: str) -> str | None:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        return dict(vars(self))

    def __and__(self, other: CachePolicy) -> CachePolicy:
        return AllOf(self, other)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CachePolicy) and type(self) is type(other) and self.get_params() == other.get_params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.get_params().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class Reuse(CachePolicy):
    """Reuse any finished run with the same key (the default)."""

    def refusal(self, previous: RunRecord, *, now_ms: int, actor: str) -> str | None:
        return None


class Never(CachePolicy):
    """Always run (``cache=False``)."""

    enabled = False

    def refusal(self, previous: RunRecord, *, now_ms: int, actor: str) -> str | None:
        return "cache disabled for this step"


class MaxAge(CachePolicy):
    """Reuse only runs that ended at most ``seconds`` ago."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def refusal(self, previous: RunRecord, *, now_ms: int, actor: str) -> str | None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float)) or self.seconds < 0:
            raise InvalidInput(f"MaxAge(seconds={shown(self.seconds)}) needs a number of seconds >= 0.")
        age = (now_ms - (previous.end_time or previous.start_time)) / 1000
        return f"cached run is {age:.0f} s old (MaxAge {self.seconds:g} s)" if age > self.seconds else None


class SameActor(CachePolicy):
    """Reuse only runs made by the same actor."""

    def refusal(self, previous: RunRecord, *, now_ms: int, actor: str) -> str | None:
        return None if previous.actor == actor else f"cached run was made by {previous.actor!r}, not {actor!r}"


class AllOf(CachePolicy):
    """Every policy must accept (``a & b``)."""

    def __init__(self, *policies: CachePolicy) -> None:
        self.policies = policies

    @property
    def enabled(self) -> bool:  # type: ignore[override]
        return all(p.enabled for p in self.policies)

    def refusal(self, previous: RunRecord, *, now_ms: int, actor: str) -> str | None:
        for p in self.policies:
            reason = p.refusal(previous, now_ms=now_ms, actor=actor)
            if reason is not None:
                return reason
        return None


def as_policy(cache: bool | CachePolicy, step: str) -> CachePolicy:
    if isinstance(cache, CachePolicy):
        return cache
    if isinstance(cache, bool):
        return Reuse() if cache else Never()
    raise InvalidInput(f"Step {step!r}: cache={shown(cache)} must be True, False or a CachePolicy (e.g. MaxAge(3600)).")

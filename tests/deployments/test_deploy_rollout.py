"""rollout: the policy's checks and round trip, each rule of decide(), Fisher's test against scipy, and whole
rollouts simulated tick by tick (a healthy canary is promoted, a failing one rolled back within its window)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.deployments.rollout import (
    ACTIONS,
    Decision,
    RolloutPolicy,
    WindowStats,
    decide,
    excess_p_value,
    parse_steps,
)
from mloop.errors import InvalidInput

POLICY = RolloutPolicy()
HEALTHY_STABLE = WindowStats(requests=1080, errors=5, p99_ms=10.0)


def at(step: int, canary: WindowStats, *, stable: WindowStats = HEALTHY_STABLE, seconds: float = 31.0,
       policy: RolloutPolicy = POLICY) -> Decision:  # fmt: skip
    return decide(policy, step=step, step_started_ms=1_000, now_ms=1_000 + int(seconds * 1000), stable=stable,
                  canary=canary)  # fmt: skip


# -- the policy -----------------------------------------------------------------------------------------------


def test_policy_defaults_and_round_trip() -> None:
    assert POLICY.validate() is POLICY
    data = POLICY.to_dict()
    assert data["steps"] == [10.0, 50.0, 100.0]
    assert json.loads(json.dumps(data)) == data
    assert RolloutPolicy.from_dict(data) == POLICY
    assert POLICY.get_params() == data
    custom = RolloutPolicy.from_dict({"steps": "5%, 25%, 100%", "min_requests": 20})
    assert custom.steps == (5.0, 25.0, 100.0)
    assert custom.min_requests == 20
    assert custom.dwell_seconds == POLICY.dwell_seconds


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("steps", (), "steps"),
        ("steps", (10.0, 50.0), "end at 100"),
        ("steps", (50.0, 10.0, 100.0), "increase"),
        ("steps", (0.0, 100.0), "(0, 100]"),
        ("steps", (10, "x", 100), "percentage"),
        ("min_requests", 0, "min_requests"),
        ("min_requests", 10.5, "integer"),
        ("min_requests", True, "min_requests"),
        ("dwell_seconds", -1, "dwell_seconds"),
        ("dwell_seconds", math.nan, "dwell_seconds"),
        ("max_error_rate_increase", 1.5, "between 0 and 1"),
        ("max_p99_ratio", 0.5, "max_p99_ratio"),
        ("p99_slack_ms", -0.1, "p99_slack_ms"),
        ("fail_fast_errors", 0, "fail_fast_errors"),
        ("p99_min_requests", 0, "p99_min_requests"),
        ("error_significance", 0.0, "error_significance"),
    ],
)
def test_policy_validation_names_the_field(field: str, value: Any, says: str) -> None:
    policy = RolloutPolicy(**{field: value})  # construction stores; checks come on use
    with pytest.raises(InvalidInput, match="RolloutPolicy") as info:
        policy.validate()
    assert says in str(info.value)
    with pytest.raises(InvalidInput):
        at(0, WindowStats(10, 0, 1.0), policy=policy)


def test_from_dict_refuses_unknown_fields_and_non_mappings() -> None:
    with pytest.raises(InvalidInput, match=r"\['min_request'\].*min_requests"):
        RolloutPolicy.from_dict({"min_request": 5})
    with pytest.raises(InvalidInput, match="mapping"):
        RolloutPolicy.from_dict([("steps", "10,100")])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="end at 100"):
        RolloutPolicy.from_dict({"steps": [10, 50]})


def test_parse_steps() -> None:
    assert parse_steps("10,50,100") == (10.0, 50.0, 100.0)
    assert parse_steps(" 1% , 2.5 ,100% ") == (1.0, 2.5, 100.0)
    assert parse_steps("100") == (100.0,)
    for bad, says in [("", "like '10,50,100'"), ("10,,100", "not a percentage"), ("10,fifty,100", "'fifty'"),
                      ("50,10,100", "increase"), ("10,50", "end at 100"), ("10,50,120", "(0, 100]")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=None) as info:
            parse_steps(bad)
        assert says in str(info.value), (bad, str(info.value))


# -- decide: one rule at a time -------------------------------------------------------------------------------


def test_hold_says_what_it_waits_for() -> None:
    d = at(0, WindowStats(37, 0, 3.0), seconds=12)
    assert (d.action, d.step, d.canary_percent) == ("hold", 0, 10.0)
    assert d.reason == "holding at 10%: waiting for 37/100 canary requests, 12/30 s dwell."
    d = at(0, WindowStats(150, 0, 3.0), seconds=12)
    assert d.action == "hold"
    assert "12/30 s dwell" in d.reason
    assert "canary requests" not in d.reason


def test_step_then_promote() -> None:
    d = at(0, WindowStats(120, 1, 3.0))
    assert (d.action, d.step, d.canary_percent) == ("step", 1, 50.0)
    assert d.reason.startswith("canary 10% -> 50%: 120 canary requests in 31 s; canary error rate 0.8% <= stable")
    assert "canary p99 3.0 ms <= 1.5 x stable 10.0 ms + 5 ms" in d.reason
    d = at(1, WindowStats(600, 2, 9.0), stable=WindowStats(600, 3, 8.0))
    assert (d.action, d.step, d.canary_percent) == ("step", 2, 100.0)
    d = at(2, WindowStats(1200, 1, 3.0), stable=WindowStats(4, 0, 2.0))  # stragglers on the stable at 100%
    assert (d.action, d.step, d.canary_percent) == ("promote", 2, 100.0)
    assert "p99 not compared (stable served 4 requests at 100%; needs 100)" in d.reason
    assert "no baseline" in d.reason


def test_rollback_on_error_rate_with_figures() -> None:
    d = at(0, WindowStats(125, 15, 3.0), stable=WindowStats(1000, 5, 10.0), seconds=5)
    assert (d.action, d.step, d.canary_percent) == ("rollback", 0, 0.0)
    assert d.reason.startswith("rolled back at 10%: canary error rate 12.0% > stable 0.5% + 2.0% (p=")
    assert d.figures["checks"] == {"error_rate": "fail", "p99": "pass"}
    bounds = d.figures["bounds"]
    assert bounds["max_error_rate"] == pytest.approx(0.025)
    assert bounds["error_p_value"] < 0.001
    assert d.figures["canary"] == {"requests": 125, "errors": 15, "p99_ms": 3.0, "client_errors": 0,
                                   "error_rate": 0.12}  # fmt: skip
    assert d.figures["elapsed_seconds"] == 5.0
    assert json.loads(json.dumps(d.to_dict())) == d.to_dict()
    assert d.action in ACTIONS


def test_fail_fast_before_min_requests() -> None:
    assert at(0, WindowStats(15, 10, 3.0), seconds=2).action == "rollback"  # 10 errors: judged early
    d = at(0, WindowStats(8, 5, 3.0), seconds=2)  # 5 errors: not yet
    assert d.action == "hold"
    assert d.figures["checks"]["error_rate"] == "pending"
    assert "5/10 errors to fail fast" in d.reason


def test_client_errors_are_not_errors() -> None:
    d = at(0, WindowStats(200, 0, 3.0, client_errors=150))
    assert d.action == "step"


def test_error_excess_must_be_significant() -> None:
    policy = RolloutPolicy(min_requests=30, dwell_seconds=0)
    stable = WindowStats(270, 0, 2.0)
    d = at(0, WindowStats(30, 1, 2.0), stable=stable, policy=policy)  # 3.3% > 0% + 2%: one error, no evidence
    assert d.action == "hold"
    assert d.figures["bounds"]["error_p_value"] == pytest.approx(0.18, abs=0.01)
    assert d.figures["checks"]["error_rate"] == "not significant"
    assert "not yet significant at 0.05" in d.reason
    plain = RolloutPolicy(min_requests=30, dwell_seconds=0, error_significance=1.0)
    assert at(0, WindowStats(30, 1, 2.0), stable=stable, policy=plain).action == "rollback"
    assert at(0, WindowStats(30, 4, 2.0), stable=stable, policy=policy).action == "rollback"  # p ~ 0.02
    # the guard holds a canary only until it has served 4 x min_requests; then the plain bound decides
    assert at(0, WindowStats(119, 4, 2.0), stable=WindowStats(1080, 0, 2.0), policy=policy).action == "hold"
    assert at(0, WindowStats(120, 4, 2.0), stable=WindowStats(1080, 0, 2.0), policy=policy).action == "rollback"


def test_no_baseline_compares_with_zero() -> None:
    empty = WindowStats(0, 0, None)
    d = at(2, WindowStats(200, 20, 3.0), stable=empty)
    assert d.action == "rollback"
    assert d.reason.startswith(
        "rolled back at 100%: canary error rate 10.0% > 0% (no baseline: stable served 0) + 2.0%"
    )
    assert d.figures["bounds"]["error_baseline"] == "none"
    assert at(2, WindowStats(200, 6, 3.0), stable=empty).action == "hold"  # 3%: not yet significantly over 2%
    assert at(2, WindowStats(400, 12, 3.0), stable=empty).action == "rollback"  # 4 x min_requests: plain bound
    assert at(2, WindowStats(200, 3, 3.0), stable=empty).action == "promote"  # 1.5%
    # a stable window with fewer than min_requests / 2 requests is no baseline either
    assert (
        at(2, WindowStats(200, 3, 3.0), stable=WindowStats(49, 40, 3.0)).figures["bounds"]["error_baseline"] == "none"
    )


def test_p99_rules() -> None:
    slow = at(0, WindowStats(1000, 0, 30.0), stable=WindowStats(9000, 0, 10.0))
    assert slow.action == "rollback"
    assert slow.reason == "rolled back at 10%: canary p99 30.0 ms > 1.5 x stable 10.0 ms + 5 ms."
    assert slow.figures["bounds"]["max_p99_ms"] == 20.0
    assert at(0, WindowStats(1000, 0, 4.0), stable=WindowStats(9000, 0, 1.0)).action == "step"  # slack: 4 <= 6.5
    # too few canary requests for a p99: skipped, with the reason
    few = RolloutPolicy(min_requests=20)
    d = at(0, WindowStats(40, 0, 500.0), policy=few)
    assert (d.action, d.figures["checks"]["p99"]) == ("step", "skipped")
    assert "p99 not compared (canary served 40 requests; needs 100)" in d.reason
    # the stable is short of requests below 100%: wait for it rather than skip
    d = at(1, WindowStats(105, 0, 3.0), stable=WindowStats(95, 0, 3.0))
    assert (d.action, d.figures["checks"]["p99"]) == ("hold", "waiting")
    assert d.reason == "holding at 50%: waiting for 95/100 stable requests to compare p99."
    # both errors and latency over: both in the reason
    both = at(0, WindowStats(1000, 200, 30.0), stable=WindowStats(9000, 0, 10.0))
    assert "error rate 20.0%" in both.reason
    assert "p99 30.0 ms" in both.reason


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInput, match=r"0\.\.2"):
        at(3, WindowStats(1, 0, 1.0))
    with pytest.raises(InvalidInput, match="more errors than requests"):
        at(0, WindowStats(1, 2, 1.0))
    with pytest.raises(InvalidInput, match="stable window's counts"):
        at(0, WindowStats(1, 0, 1.0), stable=WindowStats(-1, 0, 1.0))
    with pytest.raises(InvalidInput, match="p99_ms"):
        at(0, WindowStats(1, 0, math.nan))
    d = decide(POLICY, step=0, step_started_ms=10_000, now_ms=5_000, stable=HEALTHY_STABLE,
               canary=WindowStats(500, 0, 1.0))  # fmt: skip
    assert (d.action, d.figures["elapsed_seconds"]) == ("hold", 0.0)  # the clock went back: 0 s, not negative


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 500), st.integers(1, 500), st.integers(0, 5000), st.integers(0, 5000), st.floats(0, 0.2),
    st.integers(1, 50),
)  # fmt: skip
def test_excess_p_value_is_a_p_value_and_monotone(ce: int, cn: int, se: int, sn: int, margin: float, more: int) -> None:
    ce, se = min(ce, cn), min(se, sn)
    p = excess_p_value(ce, cn, se, sn, margin)
    assert 0.0 <= p <= 1.0
    # where evidence points to an excess (p <= 0.5, the only region a rollback looks at): one more canary error
    # is more evidence, one more stable error less (below it a z-test's wider variance can reverse this)
    if ce < cn and p <= 0.5:
        assert excess_p_value(ce + 1, cn, se, sn, margin) <= p
    if se < sn and p <= 0.5:
        assert excess_p_value(ce, cn, se + 1, sn, margin) >= p
    assert excess_p_value(ce, cn, se, sn, margin + 0.01) >= p  # a wider margin is harder to beat
    del more


@pytest.mark.parametrize(("stable_rate", "canary_n", "stable_n"), [(0.005, 100, 900), (0.02, 300, 300), (0.0, 200, 0)])
def test_excess_test_keeps_its_level_at_the_margin(stable_rate: float, canary_n: int, stable_n: int) -> None:
    """A canary exactly at the bound (stable rate + 2%) is called significantly worse in at most ~5% of windows."""
    rng = np.random.default_rng(11)
    draws = 4000
    canary_e = rng.binomial(canary_n, stable_rate + 0.02, draws)
    stable_e = rng.binomial(stable_n, stable_rate, draws) if stable_n else np.zeros(draws, dtype=int)
    rejected = sum(
        excess_p_value(int(c), canary_n, int(s), stable_n, 0.02) <= 0.05
        for c, s in zip(canary_e, stable_e, strict=True)
    )
    assert rejected / draws <= 0.065
    # and it has power: a canary at stable + 10% is caught in most windows
    bad = rng.binomial(canary_n, stable_rate + 0.10, 500)
    caught = sum(excess_p_value(int(c), canary_n, 0, stable_n, 0.02) <= 0.05 for c in bad)
    assert caught / 500 >= 0.9


def test_excess_p_value_is_cheap() -> None:
    started = time.perf_counter()
    for _ in range(10_000):
        excess_p_value(1_100, 100_000, 9_000, 900_000, 0.02)
    assert time.perf_counter() - started < 1.0  # the supervisor asks every second; this is microseconds


# -- whole rollouts, simulated --------------------------------------------------------------------------------


def simulate(policy: RolloutPolicy, canary_error: float, stable_error: float, *, seed: int, rps: int = 50,
             canary_p99: float = 3.0, max_seconds: int = 600) -> tuple[Decision, int]:  # fmt: skip
    """Drive decide() once a second with binomial traffic until the rollout ends; the decision and the time."""
    rng = np.random.default_rng(seed)
    step, started, window = 0, 0, np.zeros(4, dtype=np.int64)  # stable n, e, canary n, e
    previous_stable = WindowStats(0, 0, None)  # at 100% the supervisor passes the stable's last window
    for second in range(1, max_seconds + 1):
        canary_n = int(rng.binomial(rps, policy.steps[step] / 100))
        window += [rps - canary_n, rng.binomial(rps - canary_n, stable_error),
                   canary_n, rng.binomial(canary_n, canary_error)]  # fmt: skip
        sn, se, cn, ce = (int(v) for v in window)
        stable = WindowStats(sn, se, 3.0 if sn else None) if policy.steps[step] < 100 else previous_stable
        d = decide(policy, step=step, step_started_ms=started * 1000, now_ms=second * 1000, stable=stable,
                   canary=WindowStats(cn, ce, canary_p99 if cn else None))  # fmt: skip
        if d.action in ("promote", "rollback"):
            return d, second
        if d.action == "step":
            previous_stable = stable
            step, started, window = d.step, second, np.zeros(4, dtype=np.int64)
    raise AssertionError(f"rollout did not finish in {max_seconds} s: {d.reason}")


def test_healthy_canary_is_promoted_and_a_failing_one_rolled_back() -> None:
    policy = RolloutPolicy(dwell_seconds=10)
    healthy = [simulate(policy, 0.005, 0.005, seed=s) for s in range(40)]
    assert sum(d.action == "promote" for d, _ in healthy) >= 39  # a false rollback is rare, not impossible
    promoted = [t for d, t in healthy if d.action == "promote"]
    assert max(promoted) < 120  # 10% needs 100 canary requests at 5/s: ~20 s; then 10 s dwells
    failing = [simulate(policy, 0.3, 0.005, seed=s) for s in range(40)]
    assert all(d.action == "rollback" and d.step == 0 for d, _ in failing)
    assert max(t for _, t in failing) <= 20  # fail fast (10 errors) before 100 requests: within the window
    slow = [simulate(policy, 0.005, 0.005, seed=s, canary_p99=50.0) for s in range(10)]
    assert all(d.action == "rollback" and "p99" in d.reason for d, _ in slow)

"""The traffic split (pure): weights within statistical tolerance, sticky keys exact, shadow share, the spec."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop.deployments.router import Router, key_point
from mloop.deployments.spec import canary_traffic, check_traffic, parse_model_weight, router_of, versions_of
from mloop.errors import InvalidInput


def _within(count: int, n: int, p: float, z: float = 4.5) -> bool:
    """``count`` of ``n`` draws is within z standard deviations of ``n * p`` (false alarm ~ 1e-5 per check)."""
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("weights", [{"a": 90, "b": 10}, {"a": 1, "b": 1, "c": 2}, {"a": 0.5, "b": 99.5}])
@pytest.mark.parametrize("keyed", [False, True])
def test_split_proportions_are_within_tolerance(weights: dict[str, float], keyed: bool) -> None:
    router = Router(weights, seed=7)
    n = 40_000
    counts = dict.fromkeys(weights, 0)
    for i in range(n):
        counts[router.choose(f"user-{i}".encode() if keyed else None)] += 1
    total = sum(weights.values())
    for ref, weight in weights.items():
        assert _within(counts[ref], n, weight / total), (ref, counts)


def test_a_chi_square_test_does_not_reject_the_split() -> None:
    from scipy.stats import chisquare

    weights = {"a": 10.0, "b": 30.0, "c": 60.0}
    router = Router(weights)
    n = 20_000
    counts = dict.fromkeys(weights, 0)
    for i in range(n):
        counts[router.choose(f"k{i}".encode())] += 1
    assert chisquare(list(counts.values()), [n * w / 100 for w in weights.values()]).pvalue > 1e-4


@given(st.binary(min_size=1, max_size=40))
def test_sticky_keys_always_reach_the_same_version(key: bytes) -> None:
    a = Router({"model:m/1": 50, "model:m/2": 50}, seed=1)
    b = Router({"model:m/1": 50, "model:m/2": 50}, seed=2)  # another process: same answer
    assert a.choose(key) == a.choose(key) == b.choose(key)


def test_a_growing_canary_keeps_the_keys_it_had() -> None:
    keys = [f"user-{i}".encode() for i in range(5000)]
    small = Router([("canary", 10), ("stable", 90)])
    large = Router([("canary", 50), ("stable", 50)])
    on_canary = [k for k in keys if small.choose(k) == "canary"]
    assert 350 < len(on_canary) < 650
    assert all(large.choose(k) == "canary" for k in on_canary)


def test_shadow_share_and_zero_weight() -> None:
    router = Router({"live": 100, "idle": 0}, shadow="challenger", shadow_percent=25, seed=3)
    n = 20_000
    mirrored = sum(router.mirror(None) == "challenger" for _ in range(n))
    assert _within(mirrored, n, 0.25)
    assert {router.choose(None) for _ in range(1000)} == {"live"}  # a zero weight never answers
    assert Router({"a": 1}, shadow="s", shadow_percent=100).mirror(b"x") == "s"
    assert Router({"a": 1}, shadow="s", shadow_percent=0).mirror(b"x") is None
    assert 0 <= key_point(b"abc") < 1 and key_point(b"abc") == key_point(b"abc")


@pytest.mark.parametrize(
    ("weights", "message"),
    [({}, "at least one model"), ({"a": -1}, "must be a number >= 0"), ({"a": 0}, "add up to 0"),
     ({"a": float("nan")}, "must be a number")],
)  # fmt: skip
def test_bad_weights_are_refused(weights: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Router(weights)


def test_spec_helpers() -> None:
    assert parse_model_weight("churn/3=90") == ("model:churn/3", 90.0)
    assert parse_model_weight("model:churn@prod") == ("model:churn@prod", None)
    with pytest.raises(InvalidInput, match="'x' in 'churn/3=x' is not a number"):
        parse_model_weight("churn/3=x")
    assert check_traffic([("model:a/1", 3.0), ("model:a/2", 1.0)]) == [
        {"model": "model:a/1", "weight": 75.0}, {"model": "model:a/2", "weight": 25.0}]  # fmt: skip
    assert [t["weight"] for t in check_traffic([("model:a/1", None), ("model:a/2", None)])] == [50.0, 50.0]
    with pytest.raises(InvalidInput, match="every model or to none"):
        check_traffic([("model:a/1", 3.0), ("model:a/2", None)])
    with pytest.raises(InvalidInput, match="listed twice"):
        check_traffic([("model:a/1", None), ("model:a/1", None)])
    spec = {"traffic": canary_traffic("model:a/2", "model:a/1", 10), "shadow": {"model": "model:a/3", "percent": 5}}
    assert versions_of(spec) == ["model:a/2", "model:a/1", "model:a/3"]
    router = router_of(spec)
    assert router.shares == {"model:a/2": 0.1, "model:a/1": 0.9} and router.shadow == "model:a/3"

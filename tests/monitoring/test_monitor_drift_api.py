"""The drift API: automatic method choice, per-feature overrides, dataset drift, results, errors, layering."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import mloop.monitoring.drift as drift_module
from mloop.errors import InvalidInput
from mloop.monitoring.drift import (
    DriftResult,
    choose_method,
    data_drift,
    dataset_drift,
    feature_drift,
)
from mloop.monitoring.reference import ReferenceSketch, build_reference

FIELDS = {
    "feature", "method", "statistic", "p_value", "threshold", "drifted", "n_reference", "n_current", "mode",
    "error_bound",
}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "n_ref", "n_cur", "method"),
    [
        ("numeric", 1_000_000, 1000, "ks"),
        ("numeric", 1_000_000, 1001, "wasserstein"),
        ("numeric", 900, 1_000_000, "ks"),  # the smaller sample decides (Evidently: the reference only)
        ("categorical", 50_000, 1000, "chisquare"),
        ("categorical", 50_000, 5000, "jensenshannon"),
    ],
)
def test_automatic_choice_follows_the_documented_table(kind: str, n_ref: int, n_cur: int, method: str) -> None:
    assert choose_method(kind, n_ref, n_cur) == method
    assert f"``{method}``" in (drift_module.__doc__ or "")


def test_data_drift_with_overrides_and_dataset_share() -> None:
    rng = np.random.default_rng(21)
    n = 20_000
    reference = {
        "stable": rng.normal(size=n),
        "shifted": rng.normal(size=n),
        "plan": rng.choice(["free", "pro", "team"], size=n, p=[0.6, 0.3, 0.1]),
        "flag": rng.random(n) < 0.3,  # booleans are categories
    }
    current = {
        "stable": rng.normal(size=5000),
        "shifted": rng.normal(1.0, 1, size=5000),
        "plan": rng.choice(["free", "pro", "team"], size=5000, p=[0.3, 0.3, 0.4]),
        "flag": rng.random(5000) < 0.3,
    }
    sketch = ReferenceSketch.from_dict(json.loads(json.dumps(build_reference(reference).to_dict())))
    results = data_drift(
        sketch,
        current,
        methods={"stable": "psi", "plan": "chisquare"},
        thresholds={"stable": 0.5, "shifted": 0.5},
    )
    by_name = {r.feature: r for r in results}
    assert [r.feature for r in results] == list(current)
    assert by_name["stable"].method == "psi" and by_name["stable"].threshold == 0.5
    assert not by_name["stable"].drifted
    assert by_name["shifted"].method == "wasserstein" and by_name["shifted"].drifted  # ~1.0 sd >= 0.5
    assert by_name["plan"].method == "chisquare" and by_name["plan"].drifted and by_name["plan"].p_value is not None
    assert by_name["flag"].method == "jensenshannon" and not by_name["flag"].drifted
    for result in results:
        assert set(result.to_dict()) == FIELDS and result.mode == "fast"
        json.dumps(result.to_dict())  # plain JSON values
    summary = dataset_drift(results, share=0.5)
    assert summary.n_drifted == 2 and summary.share_drifted == 0.5 and summary.drifted
    assert not dataset_drift(results, share=0.75).drifted
    assert summary.to_dict()["features"][1]["feature"] == "shifted"
    exact = data_drift(reference, current, mode="exact")
    assert [r.drifted for r in exact] == [False, True, True, False] and {r.mode for r in exact} == {"exact"}


def test_thresholds_decide_in_the_documented_direction() -> None:
    rng = np.random.default_rng(22)
    ref, cur = rng.normal(size=2000), rng.normal(0.2, 1, size=2000)
    ks = feature_drift("x", ref, cur, method="ks", mode="exact")
    assert ks.p_value is not None
    assert feature_drift("x", ref, cur, method="ks", threshold=ks.p_value * 2, mode="exact").drifted
    assert not feature_drift("x", ref, cur, method="ks", threshold=ks.p_value / 2, mode="exact").drifted
    w = feature_drift("x", ref, cur, method="wasserstein", mode="exact")
    assert w.statistic is not None and w.p_value is None
    assert feature_drift("x", ref, cur, method="wasserstein", threshold=w.statistic, mode="exact").drifted


def test_errors_name_the_value_and_the_fix() -> None:
    rng = np.random.default_rng(23)
    sketch = build_reference({"x": rng.normal(size=100), "c": np.array(["a", "b"] * 50)})
    with pytest.raises(InvalidInput, match="'chisquare' does not apply to numeric feature 'x'"):
        feature_drift("x", sketch["x"], rng.normal(size=10), method="chisquare")
    with pytest.raises(InvalidInput, match="'ks' does not apply to categorical"):
        feature_drift("c", sketch["c"], np.array(["a"]), method="ks")
    with pytest.raises(InvalidInput, match="Drift mode 'slow'"):
        feature_drift("x", sketch["x"], rng.normal(size=10), mode="slow")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="needs the raw reference"):
        feature_drift("x", sketch["x"], rng.normal(size=10), mode="exact")
    with pytest.raises(InvalidInput, match="no column 'y'"):
        data_drift(sketch, {"y": rng.normal(size=10)})
    with pytest.raises(InvalidInput, match=r"not in the current data: \['z'\]"):
        data_drift(sketch, {"x": rng.normal(size=10)}, thresholds={"z": 0.1})
    with pytest.raises(InvalidInput, match=r"share=1\.5"):
        dataset_drift([], share=1.5)
    with pytest.raises(InvalidInput, match="format 7"):
        ReferenceSketch.from_dict({"format": 7})
    with pytest.raises(InvalidInput, match="no finite values"):
        build_reference({"x": np.array([np.nan, np.inf])})


def test_empty_dataset_drift_and_result_is_frozen() -> None:
    assert not dataset_drift([]).drifted
    result = DriftResult("x", "ks", 0.1, 0.5, 0.05, False, 10, 10, "exact", 0.0)
    with pytest.raises(AttributeError):
        result.drifted = True  # type: ignore[misc]


def test_many_categories_are_pooled_in_the_reference() -> None:
    rng = np.random.default_rng(24)
    values = np.array([f"c{i}" for i in rng.integers(0, 3000, size=30_000)])
    ref = build_reference({"c": values})["c"]
    counts = ref.to_dict()["counts"]
    assert len(counts) == 1001 and "__other__" in counts and ref.n == 30_000
    same = feature_drift("c", ref, values)
    assert same.method == "jensenshannon" and same.statistic == 0.0 and not same.drifted
    # documented limit: with ~1,000 categories a 5,000-row window of the same distribution reads as drift
    sparse = feature_drift("c", ref, values[:5000])
    assert sparse.statistic is not None and sparse.statistic > 0.1


def test_drift_modules_are_pure() -> None:
    """No I/O and no serving/deployments: only numpy, scipy, pyarrow (in-memory counting) and lower mloop layers."""
    allowed = {
        "__future__",
        "collections",
        "dataclasses",
        "typing",
        "math",
        "warnings",
        "numpy",
        "scipy",
        "pyarrow",
        "mloop",
    }
    for name in ("drift", "drift_stats", "binned", "reference"):
        path = Path(drift_module.__file__).with_name(f"{name}.py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for module in modules:
                    assert module.split(".")[0] in allowed, f"{name}.py imports {module}"
                    assert not module.startswith(("mloop.serving", "mloop.deployments")), f"{name}.py imports {module}"


def test_constant_reference_is_not_normalised() -> None:
    """Wasserstein divides by the reference std, or by 1 when the reference is constant (documented)."""
    ref, cur = np.full(2000, 3.0), np.full(2000, 3.5)
    exact = feature_drift("x", ref, cur, method="wasserstein", mode="exact")
    fast = feature_drift("x", build_reference({"x": ref})["x"], cur, method="wasserstein")
    assert exact.statistic == pytest.approx(0.5) and fast.statistic == pytest.approx(0.5)
    assert fast.error_bound == 0.0 and fast.drifted

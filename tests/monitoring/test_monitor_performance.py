"""Live performance of a window: values against scikit-learn, unlabelled rows ignored, every input form,
and the confidence intervals' coverage measured on simulated windows."""

from __future__ import annotations

import json
import math
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, roc_auc_score

from mloop.errors import InvalidInput
from mloop.monitoring.columns import placements, tie_groups
from mloop.monitoring.performance import LivePerformance, live_performance


def _binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, n)
    y = (rng.uniform(size=n) < p).astype(np.int64)
    return p, y, (p > 0.5).astype(np.int64)


def test_binary_values_match_sklearn_on_the_labelled_rows() -> None:
    p, y, pred = _binary(3000, 0)
    truth = y.astype(np.float64)
    truth[::3] = np.nan  # a third still waiting for feedback
    r = live_performance("classification", pred, truth, np.column_stack((1 - p, p)))
    m = ~np.isnan(truth)
    assert (r.rows, r.labelled) == (3000, 2000)
    assert r.value("accuracy") == pytest.approx(accuracy_score(y[m], pred[m]), abs=1e-12)
    assert r.value("f1") == pytest.approx(f1_score(y[m], pred[m]), abs=1e-12)
    assert r.value("roc_auc") == pytest.approx(roc_auc_score(y[m], p[m]), abs=1e-12)
    assert r.labels == (0, 1)  # the float column with NaN is read as the model's integer labels
    assert r.positive == 1
    for name in ("accuracy", "f1", "roc_auc"):
        metric = r.metrics[name]
        assert metric.low < metric.value < metric.high
    assert [r.metrics[k].method for k in ("accuracy", "f1", "roc_auc")] == ["wilson", "delta", "delong"]
    json.dumps(r.to_dict())


def test_multiclass_macro_values_and_argmax_predictions_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 3))
    labels = np.array(["a", "b", "c"])[np.argmax(x + rng.normal(scale=1.5, size=x.shape), axis=1)]
    model = LogisticRegression().fit(x[:1000], labels[:1000])
    proba = model.predict_proba(x[1000:])
    r = live_performance("classification", None, labels[1000:], proba, classes=model.classes_)
    pred = model.predict(x[1000:])
    assert r.value("accuracy") == pytest.approx(accuracy_score(labels[1000:], pred), abs=1e-12)
    assert r.value("f1") == pytest.approx(f1_score(labels[1000:], pred, average="macro"), abs=1e-12)
    assert r.value("roc_auc") == pytest.approx(roc_auc_score(labels[1000:], proba, multi_class="ovr"), abs=1e-12)
    assert r.positive is None
    assert r.labels == ("a", "b", "c")


def test_arrow_columns_with_nulls_give_the_numpy_answer() -> None:
    p, y, pred = _binary(500, 2)
    truth = [None if i % 4 == 0 else int(v) for i, v in enumerate(y)]
    probs = [None if i % 10 == 1 else [1 - v, v] for i, v in enumerate(p)]  # failed requests: no output
    arrow = live_performance(
        "classification", None, pa.chunked_array([pa.array(truth[:200]), pa.array(truth[200:])]),
        pa.chunked_array([pa.array(probs[:250], pa.list_(pa.float64())), pa.array(probs[250:])]),
    )  # fmt: skip
    keep = np.array([t is not None and q is not None for t, q in zip(truth, probs, strict=True)])
    plain = live_performance("classification", pred[keep], y[keep], np.column_stack((1 - p, p))[keep])
    assert (arrow.rows, arrow.labelled) == (500, int(keep.sum()))
    assert arrow.values() | {"rows": 0.0} == plain.values() | {"rows": 0.0}
    listed = live_performance("classification", None, truth, probs)  # plain Python lists with None
    assert listed.values() == arrow.values()
    objects = pa.array(probs, pa.list_(pa.float64())).to_numpy(zero_copy_only=False)  # arrays and None
    assert live_performance("classification", None, truth, objects).values() == arrow.values()
    positive = [None if q is None else q[1] for q in probs]  # a binary model's positive column, with nulls
    assert live_performance("classification", None, truth, np.array(positive, dtype=object)).values() == arrow.values()


def test_missing_predictions_are_taken_from_the_probabilities() -> None:
    """An endpoint that answers probabilities collects a null ``prediction``: rows are not dropped for it."""
    proba = [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]]
    none = live_performance("classification", pa.array([None] * 4, pa.int64()), [0, 1, 0, 0], proba)
    assert (none.labelled, none.value("accuracy")) == (4, 0.75)
    some = live_performance("classification", pa.array([None, 0, None, 1]), [0, 1, 0, 0], proba)
    assert (some.labelled, some.value("accuracy")) == (4, 0.25)  # the collected labels win where they exist


def test_text_feedback_is_aligned_with_numeric_predictions() -> None:
    r = live_performance("classification", [0, 1, 1, 0], ["0", "1", "0", None])
    assert (r.labelled, r.value("accuracy"), r.labels) == (3, 2 / 3, (0, 1))


def test_ground_truth_outside_the_classes_is_left_out_with_a_warning() -> None:
    r = live_performance("classification", [0, 1, 1, 0], [0, 1, 7, 0], [0.1, 0.9, 0.8, 0.3], classes=[0, 1])
    assert r.labelled == 3
    assert r.value("accuracy") == 1.0
    assert any("not one of the model's classes" in w for w in r.warnings)
    text = live_performance("classification", None, ["0", "1", "1"], [0.1, 0.9, 0.8], classes=[0, 1])
    assert (text.labelled, text.value("accuracy")) == (3, 1.0)  # "1" is the class 1, not an unknown label


def test_a_window_without_labels_is_not_an_error() -> None:
    r = live_performance("classification", [0, 1, 1], [None, None, None], [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    assert (r.rows, r.labelled) == (3, 0)
    assert all(math.isnan(m.value) for m in r.metrics.values())
    assert r.to_dict()["metrics"]["accuracy"]["value"] is None
    assert "no row of this window has ground truth" in r.warnings[0]
    assert live_performance("regression", np.empty(0), np.empty(0)).labelled == 0


def test_regression_values_and_intervals() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(size=1000)
    pred = truth + rng.normal(scale=0.5, size=1000)
    truth_with_gaps = np.where(np.arange(1000) % 5 == 0, np.nan, truth)
    r = live_performance("regression", pred, truth_with_gaps)
    m = ~np.isnan(truth_with_gaps)
    assert r.labelled == 800
    assert r.value("mae") == pytest.approx(mean_absolute_error(truth[m], pred[m]), abs=1e-12)
    assert r.value("rmse") == pytest.approx(float(np.sqrt(np.mean((truth[m] - pred[m]) ** 2))), abs=1e-12)
    assert r.metrics["rmse"].low < r.value("rmse") < r.metrics["rmse"].high
    assert not r.warnings  # r2/mape warnings are not about these metrics


def test_wilson_interval_matches_the_textbook_value() -> None:
    r = live_performance("classification", [1] * 10, [1] * 8 + [0] * 2)
    acc = r.metrics["accuracy"]
    assert (acc.low, acc.high) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # 8/10 at 95%
    perfect = live_performance("classification", [1] * 20, [1] * 20).metrics["accuracy"]
    assert perfect.high == 1.0
    assert perfect.low == pytest.approx(0.8389, abs=1e-4)  # not a degenerate [1, 1]


def _delong_bruteforce(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(psi.mean()), math.sqrt(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)


def test_roc_auc_interval_is_delongs_variance() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.uniform(size=300) * 0.5 + 0.4 * y, 1)  # coarse scores: many ties
    r = live_performance("classification", (s > 0.5).astype(int), y, s)
    auc, sd = _delong_bruteforce(y, s)
    z = 1.959963984540054
    assert r.value("roc_auc") == pytest.approx(auc, abs=1e-12)
    assert r.metrics["roc_auc"].low == pytest.approx(auc - z * sd, abs=1e-12)
    assert r.metrics["roc_auc"].high == pytest.approx(auc + z * sd, abs=1e-12)


def test_placements_count_ties_half_and_never_the_row_itself() -> None:
    score = np.array([3.0, 1.0, 3.0, 2.0, 3.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    ranking = tie_groups(score)
    below0, above1 = placements(ranking, y)
    order = ranking[0]
    assert dict(zip(order.tolist(), below0.tolist(), strict=True)) == {1: 0, 3: 1, 0: 1.5, 2: 1, 4: 1.5}
    assert dict(zip(order.tolist(), above1.tolist(), strict=True)) == {1: 3, 3: 2, 0: 0.5, 2: 1, 4: 0.5}


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_intervals_cover_the_population_value_about_95_percent_of_the_time(kind: str) -> None:
    """Population values from one very large sample; 300 windows of 400 rows each; 95% intervals."""
    rng = np.random.default_rng({"binary": 5, "multiclass": 6, "regression": 7}[kind])

    def window(n: int) -> LivePerformance:
        if kind == "binary":
            p = rng.beta(2, 3, n)
            y = (rng.uniform(size=n) < p).astype(int)
            return live_performance("classification", None, y, p)
        if kind == "multiclass":
            proba = rng.dirichlet([1.0, 1.0, 1.0], n)
            y = (rng.uniform(size=(n, 1)) > np.cumsum(proba, axis=1)).sum(axis=1)
            return live_performance("classification", None, y, proba, classes=[0, 1, 2])
        truth = rng.normal(size=n)
        return live_performance("regression", truth + rng.standard_t(5, size=n), truth)

    population = window(400_000)
    names = list(population.metrics)
    covered = dict.fromkeys(names, 0)
    windows = 300
    for _ in range(windows):
        r = window(400)
        for name in names:
            covered[name] += r.metrics[name].low <= population.value(name) <= r.metrics[name].high
    for name in names:
        assert 0.90 <= covered[name] / windows <= 0.99, (name, covered[name] / windows)


def test_bad_inputs_name_the_fix() -> None:
    with pytest.raises(InvalidInput, match="task='anomaly'"):
        live_performance("anomaly", [1], [1])
    with pytest.raises(InvalidInput, match="prediction has 2 rows but ground_truth has 3"):
        live_performance("classification", [1, 0], [1, 0, 1])
    with pytest.raises(InvalidInput, match="classes has 2 labels"):
        live_performance("classification", None, [0, 1], [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], classes=[0, 1])
    with pytest.raises(InvalidInput, match="pass classes="):
        live_performance("classification", None, ["x", "y"], [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    with pytest.raises(InvalidInput, match="need prediction= or probabilities="):
        live_performance("classification", None, [1, 0])
    with pytest.raises(InvalidInput, match="different lengths"):
        live_performance("classification", None, [0, 1], [[0.2, 0.8], [0.1, 0.1, 0.8]])
    with pytest.raises(InvalidInput, match=r"level=1\.5"):
        live_performance("regression", [1.0], [1.0], level=1.5)
    with pytest.raises(InvalidInput, match="must be numbers for regression"):
        live_performance("regression", ["a", "b"], [1.0, 2.0])


def test_values_are_a_flat_time_series_row() -> None:
    r = live_performance("classification", [0, 1, 1, 0], [0, 1, 0, 0])
    assert list(r.values()) == ["rows", "labelled", "accuracy", "accuracy_low", "accuracy_high", "f1", "f1_low",
                                "f1_high"]  # fmt: skip
    assert all(a <= b for a, b in pairwise([r.metrics["f1"].low, r.value("f1"), r.metrics["f1"].high]))


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), min_size=4, max_size=50),
    scores=st.lists(st.integers(0, 5), min_size=50, max_size=50),
)
def test_delong_matches_the_pairwise_definition(labels: list[int], scores: list[int]) -> None:
    y = np.array(labels)
    assume(2 <= y.sum() <= y.size - 2)
    s = np.array(scores[: y.size], dtype=np.float64) / 5
    r = live_performance("classification", (s > 0.5).astype(int), y, s)
    auc, sd = _delong_bruteforce(y, s)
    assert r.value("roc_auc") == pytest.approx(auc, abs=1e-12)
    assert r.metrics["roc_auc"].sd == pytest.approx(sd, abs=1e-12)

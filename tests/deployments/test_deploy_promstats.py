"""promstats: the scoring server's real exposition parsed into per-version counts, windows between scrapes
(counter resets included), and histogram_quantile against numpy on the same samples."""

from __future__ import annotations

import bisect
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.deployments.promstats import ModelCounts, Scrape, parse_scrape, quantile, window
from mloop.errors import InvalidInput
from mloop.serving.metrics import ServerMetrics

BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CANARY, STABLE = "model:churn/4", "model:churn/3"


def exposition(metrics: ServerMetrics) -> str:
    return metrics.render()[0].decode()


def served(model: str, answers: list[tuple[str, int, float]]) -> ServerMetrics:
    """A real metrics object that has answered ``answers`` (path, status, seconds)."""
    metrics = ServerMetrics(model)
    for path, status, seconds in answers:
        metrics.observe(path, status, seconds)
    return metrics


def test_parse_counts_only_scoring_routes_and_splits_statuses() -> None:
    answers = [("/predict", 200, 0.002)] * 5 + [("/predict", 500, 0.2), ("/predict", 503, 0.001)]
    answers += [("/invocations", 200, 0.004), ("/v2/models/m/infer", 200, 0.003), ("/predict", 422, 0.001)]
    answers += [("/metrics", 200, 0.001)] * 7 + [("/health", 500, 0.001), ("/v2/models/m", 200, 0.001)]
    scrape = parse_scrape(exposition(served(CANARY, answers)))
    counts = scrape[CANARY]
    assert counts.total == 10  # /metrics, /health and the v2 metadata route are not scoring
    assert counts.errors == 2  # 500 and 503
    assert counts.client_errors == 1
    assert [le for le, _ in counts.buckets] == [*BOUNDS, math.inf]
    assert counts.buckets[-1][1] == 10
    assert dict(counts.buckets)[0.0025] == 7  # 5 x 2 ms, 503 at 1 ms, 422 at 1 ms
    assert counts.started is not None  # single-process mode exposes _created
    assert STABLE not in scrape


def test_window_first_and_between_scrapes() -> None:
    metrics = served(CANARY, [("/predict", 200, 0.002)] * 100)
    first = parse_scrape(exposition(metrics))
    assert window(None, first, CANARY).requests == 100
    for _ in range(40):
        metrics.observe("/predict", 500, 0.2)
    for _ in range(60):
        metrics.observe("/predict", 200, 0.002)
    stats = window(first, parse_scrape(exposition(metrics)), CANARY)
    assert (stats.requests, stats.errors, stats.error_rate) == (100, 40, 0.4)
    assert stats.p99_ms is not None and 100.0 < stats.p99_ms <= 250.0  # the 200 ms answers' bucket
    assert window(first, first, CANARY).to_dict() == {
        "requests": 0, "errors": 0, "p99_ms": None, "client_errors": 0, "error_rate": 0.0,
    }  # fmt: skip
    assert window(first, first, STABLE).requests == 0  # a version the scrape does not know served nothing


def test_restart_counts_after_alone() -> None:
    before = parse_scrape(exposition(served(CANARY, [("/predict", 200, 0.002)] * 50)))
    after_text = exposition(served(CANARY, [("/predict", 500, 0.002)] * 80))  # a new process: counters from 0
    stats = window(before, parse_scrape(after_text), CANARY)
    assert (stats.requests, stats.errors) == (80, 80)  # not 80 - 50: the 200s went down, so it restarted
    # without _created (multiprocess mode) the fall of the 200 series alone reveals the restart
    no_created = "\n".join(line for line in after_text.splitlines() if "_created" not in line)
    assert parse_scrape(no_created)[CANARY].started is None
    assert window(before, parse_scrape(no_created), CANARY).requests == 80


def test_restart_seen_by_created_even_when_counts_grew() -> None:
    before = parse_scrape(exposition(served(CANARY, [("/predict", 200, 0.002)] * 10)))
    after = parse_scrape(exposition(served(CANARY, [("/predict", 200, 0.002)] * 30)))
    assert window(before, after, CANARY).requests == 30  # not 20: _created moved


def test_changed_bucket_bounds_mean_a_restart() -> None:
    before = Scrape({CANARY: ModelCounts({"200": 5.0}, ((0.1, 5.0), (math.inf, 5.0)))})
    after = Scrape({CANARY: ModelCounts({"200": 9.0}, ((0.2, 9.0), (math.inf, 9.0)))})
    assert window(before, after, CANARY).requests == 9


def test_bad_text_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="Prometheus"):
        parse_scrape('mloop_requests_total{model="m" 1\n')
    assert parse_scrape("").models == {}
    assert parse_scrape("# nothing but a comment\nother_metric 1\n").models == {}


WORKER = """
import sys
from mloop.serving.metrics import ServerMetrics
m = ServerMetrics(sys.argv[1])
for _ in range(int(sys.argv[2])):
    m.observe("/predict", int(sys.argv[3]), 0.003)
if len(sys.argv) > 4:
    sys.stdout.write(m.render()[0].decode())
"""


def test_multiprocess_workers_are_summed(tmp_path: Path) -> None:
    """Two worker processes in prometheus-client's multiprocess mode: one scrape shows their sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def worker(*args: str) -> str:
        cmd = [sys.executable, "-c", WORKER, *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout

    worker(CANARY, "30", "200")
    worker(CANARY, "5", "500")
    worker(STABLE, "7", "200")
    first = parse_scrape(worker(CANARY, "0", "200", "render"))
    assert (first[CANARY].total, first[CANARY].errors, first[STABLE].total) == (35, 5, 7)
    assert first[CANARY].started is None
    worker(CANARY, "10", "500")  # a restarted worker: a new file, the dead one's counts stay
    stats = window(first, parse_scrape(worker(CANARY, "0", "200", "render")), CANARY)
    assert (stats.requests, stats.errors) == (10, 10)


# -- quantile -------------------------------------------------------------------------------------------------


def binned(samples: np.ndarray) -> list[tuple[float, float]]:
    """Cumulative counts of ``samples`` in the server's buckets (le is inclusive)."""
    ordered = np.sort(samples)
    return [(le, float(np.searchsorted(ordered, le, side="right"))) for le in (*BOUNDS, math.inf)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(-4.5, 1.5), min_size=1, max_size=400),
    st.floats(0.0, 1.0),
)
def test_quantile_lies_in_the_bucket_of_the_true_quantile(logs: list[float], q: float) -> None:
    samples = 10.0 ** np.asarray(logs)  # 0.03 ms .. 30 s, log-uniform-ish
    estimate = quantile(q, binned(samples))
    true = float(np.quantile(samples, q, method="inverted_cdf"))
    assert estimate is not None
    b = bisect.bisect_left(BOUNDS, true)  # the bucket (lo, hi] holding the true quantile
    if b == len(BOUNDS):
        assert estimate == BOUNDS[-1]  # above the last finite bound: that bound
    else:
        lo = BOUNDS[b - 1] if b else 0.0
        assert lo <= estimate <= BOUNDS[b]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-4.5, 1.5), min_size=1, max_size=200), st.floats(0, 1), st.floats(0, 1))
def test_quantile_is_monotone_in_q(logs: list[float], q1: float, q2: float) -> None:
    buckets = binned(10.0 ** np.asarray(logs))
    lo, hi = sorted((q1, q2))
    a, b = quantile(lo, buckets), quantile(hi, buckets)
    assert a is not None and b is not None and a <= b


def test_quantile_matches_histogram_quantile_examples() -> None:
    buckets = [(0.2, 20.0), (0.1, 10.0), (math.inf, 20.0)]  # any order
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.99, [(0.1, 0.0), (0.2, 0.0), (math.inf, 5.0)]) == 0.2  # all in +Inf: highest bound
    assert quantile(0.99, [(0.1, 0.0), (math.inf, 0.0)]) is None  # no observations
    assert quantile(0.5, []) is None
    assert quantile(0.5, [(math.inf, 3.0)]) is None  # one bucket: nothing to interpolate
    assert quantile(0.5, [(0.1, 5.0), (0.2, 4.0), (math.inf, 6.0)]) == pytest.approx(0.1 * 3 / 5)  # made monotone
    for q in (-0.1, 1.5, math.nan, True, "0.9"):
        with pytest.raises(InvalidInput, match="between 0 and 1"):
            quantile(q, buckets)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=r"\+Inf"):
        quantile(0.5, [(0.1, 1.0), (0.2, 2.0)])


def test_window_p99_against_numpy() -> None:
    rng = np.random.default_rng(7)
    latencies = rng.lognormal(mean=math.log(0.004), sigma=0.6, size=5000)
    metrics = ServerMetrics(CANARY)
    for seconds in latencies:
        metrics.observe("/predict", 200, float(seconds))
    stats = window(None, parse_scrape(exposition(metrics)), CANARY)
    true_ms = float(np.quantile(latencies, 0.99)) * 1000
    assert stats.p99_ms is not None
    b = bisect.bisect_left(BOUNDS, true_ms / 1000)
    assert BOUNDS[b - 1] * 1000 <= stats.p99_ms <= BOUNDS[b] * 1000


# -- counter resets -------------------------------------------------------------------------------------------

answer = st.tuples(st.sampled_from([200, 200, 200, 404, 500, 503]), st.floats(0.0001, 20.0))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(answer, max_size=30),
    st.lists(answer, max_size=30),
    st.lists(answer, max_size=30),
    st.booleans(),
    st.booleans(),
)
def test_window_counts_through_resets(
    first: list[tuple[int, float]],
    between: list[tuple[int, float]],
    after_restart: list[tuple[int, float]],
    restart: bool,
    created: bool,
) -> None:
    """Answers ``first`` before the first scrape, ``between`` after it, then (if ``restart``) a new process
    answers ``after_restart``. Without a restart the window is exact; with one it is the new process's answers
    (``increase()``'s rule) when ``_created`` shows the restart, and never more than what really happened."""

    def text(metrics: ServerMetrics) -> str:
        body = exposition(metrics)
        return body if created else "\n".join(line for line in body.splitlines() if "_created" not in line)

    metrics = served(CANARY, [("/predict", s, t) for s, t in first])
    before = parse_scrape(text(metrics))
    for status, seconds in between:
        metrics.observe("/predict", status, seconds)
    if restart:
        metrics = served(CANARY, [("/predict", s, t) for s, t in after_restart])
    stats = window(before, parse_scrape(text(metrics)), CANARY)
    happened = between + after_restart if restart else between
    errors = sum(1 for s, _ in happened if s >= 500)
    if not restart:
        assert (stats.requests, stats.errors) == (len(between), errors)
        assert stats.client_errors == sum(1 for s, _ in between if s == 404)
    elif created and after_restart:
        assert (stats.requests, stats.errors) == (len(after_restart), sum(1 for s, _ in after_restart if s >= 500))
    else:
        assert 0 <= stats.requests <= len(happened)
        assert 0 <= stats.errors <= errors

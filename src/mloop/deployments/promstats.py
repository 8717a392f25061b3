"""Per-version request counts and latency from an endpoint's Prometheus ``/metrics`` (pure: text in, values out).

A canary rollout compares the canary with the stable version over the same window: the supervisor scrapes the
scoring server's exposition every second or so, :func:`parse_scrape` turns each scrape into cumulative counts per
model version (:class:`Scrape`), and :func:`window` subtracts two scrapes into a
:class:`~mloop.deployments.rollout.WindowStats` (requests, 5xx errors, p99) for one version.

- Only the scoring routes count (``predict``, ``invocations``, ``v2_infer``): ``/health`` and ``/metrics`` are
  answered with the version's label too, and the supervisor's own scrapes must not dilute the error rate.
- An *error* is a 5xx answer (503 shed by a full queue included: the version could not serve its share); a 4xx
  answer is the client's fault and is counted apart (``client_errors``), never as an error.
- Counters only grow, except when the server restarts. When any of a version's series went down between the
  two scrapes, or its ``_created`` timestamps moved (prometheus-client exposes them in single-process mode),
  the version restarted and ``after`` alone is the window, as Prometheus' ``increase()`` counts a reset. In
  multiprocess mode (several workers) prometheus-client keeps a dead worker's counter files, so one worker's
  restart does not lower the sums; only a whole restart does, and then ``after`` alone is exact.
- :func:`quantile` is Prometheus' ``histogram_quantile``: find the bucket holding the rank and interpolate
  linearly inside it. Its resolution is the bucket bounds (0.5 ms, 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms,
  1, 2.5, 5, 10 s): a p99 of "3.4 ms" says the true p99 lies in (2.5 ms, 5 ms]; above the last finite bound
  (10 s) the answer is that bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mloop.deployments.rollout import WindowStats
from mloop.errors import InvalidInput, shown

__all__ = ["SCORING_ROUTES", "ModelCounts", "Scrape", "parse_scrape", "quantile", "window"]

SCORING_ROUTES = frozenset({"predict", "invocations", "v2_infer"})
REQUESTS = "mloop_requests"  # the counter's family name (samples: mloop_requests_total)
LATENCY = "mloop_request_duration_seconds"
_CREATED = (f"{REQUESTS}_created", f"{LATENCY}_created")

Buckets = tuple[tuple[float, float], ...]  # (upper bound in seconds, cumulative count), ascending, ends at +Inf


@dataclass(frozen=True)
class ModelCounts:
    """One version's cumulative figures in one scrape, summed over the scoring routes (and over workers).

    ``requests`` maps an HTTP status (as exposed, e.g. ``"200"``) to answered requests; ``buckets`` is the latency
    histogram in seconds; ``started`` is the oldest ``_created`` timestamp of its series (``None`` when the
    server does not expose them, as in multiprocess mode).
    """

    requests: Mapping[str, float] = field(default_factory=dict)
    buckets: Buckets = ()
    started: float | None = None

    @property
    def total(self) -> int:
        return round(sum(self.requests.values()))

    @property
    def errors(self) -> int:
        """5xx answers."""
        return round(sum(n for status, n in self.requests.items() if status.startswith("5")))

    @property
    def client_errors(self) -> int:
        """4xx answers (the client's fault; not counted as errors)."""
        return round(sum(n for status, n in self.requests.items() if status.startswith("4")))


@dataclass(frozen=True)
class Scrape:
    """Every version's :class:`ModelCounts` in one exposition, by version ref (the ``model`` label)."""

    models: Mapping[str, ModelCounts] = field(default_factory=dict)

    def __getitem__(self, model: str) -> ModelCounts:
        return self.models[model]

    def __contains__(self, model: object) -> bool:
        return model in self.models


def _le(text: str) -> float:
    try:
        bound = float(text)
    except ValueError:
        raise InvalidInput(
            f"Histogram bucket bound le={shown(text)} is not a number; is this a Prometheus scrape?"
        ) from None
    if math.isnan(bound):
        raise InvalidInput("Histogram bucket bound le='NaN' is not a bound; is this a Prometheus scrape?")
    return bound


def parse_scrape(text: str) -> Scrape:
    """Parse a Prometheus text exposition into per-version cumulative counts (see the module docstring).

    Series of other metrics are ignored; a series listed twice (two expositions pasted together) is added up.
    """
    from prometheus_client.parser import text_string_to_metric_families

    requests: dict[str, dict[str, float]] = {}
    buckets: dict[str, dict[float, float]] = {}
    started: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            if family.name not in (REQUESTS, LATENCY, *_CREATED):
                continue
            for sample in family.samples:
                model, route = sample.labels.get("model"), sample.labels.get("route")
                if model is None or route not in SCORING_ROUTES:
                    continue
                if family.name in _CREATED:
                    started[model] = min(started.get(model, math.inf), sample.value)
                elif sample.name == f"{REQUESTS}_total":
                    by_status = requests.setdefault(model, {})
                    status = sample.labels.get("status", "")
                    by_status[status] = by_status.get(status, 0.0) + sample.value
                elif sample.name == f"{LATENCY}_bucket":
                    by_le = buckets.setdefault(model, {})
                    le = _le(sample.labels.get("le", ""))
                    by_le[le] = by_le.get(le, 0.0) + sample.value
    except ValueError as exc:  # the parser's own complaint about a malformed line
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"Cannot parse the metrics scrape as Prometheus text: {exc}. Scrape GET /metrics.") from None
    models = {}
    for model in sorted(requests.keys() | buckets.keys()):
        ordered = tuple(sorted(buckets.get(model, {}).items()))
        models[model] = ModelCounts(requests.get(model, {}), ordered, started.get(model))
    return Scrape(models)


def _restarted(before: ModelCounts, after: ModelCounts) -> bool:
    """Did the version's server restart between the two scrapes (a reset, as Prometheus detects one)?"""
    if before.started is not None and after.started is not None and after.started != before.started:
        return True
    if any(after.requests.get(status, 0.0) < n for status, n in before.requests.items()):
        return True
    if before.buckets and after.buckets:
        if [le for le, _ in before.buckets] != [le for le, _ in after.buckets]:
            return True  # other bucket bounds: a different server configuration
        return any(a < b for (_, a), (_, b) in zip(after.buckets, before.buckets, strict=True))
    return bool(before.buckets) and not after.buckets


def window(before: Scrape | None, after: Scrape, model: str) -> WindowStats:
    """``model``'s requests, 5xx errors and p99 between two scrapes (``before=None``: since the server started).

    A version absent from ``after`` served nothing (zeros). After a restart (see :func:`_restarted`) the window
    is ``after`` alone.
    """
    now = after.models.get(model)
    if now is None:
        return WindowStats(requests=0, errors=0, p99_ms=None)
    then = before.models.get(model) if before is not None else None
    if then is None or _restarted(then, now):
        then = ModelCounts()
    delta = ModelCounts(
        {status: n - then.requests.get(status, 0.0) for status, n in now.requests.items()},
        _bucket_delta(then.buckets, now.buckets),
    )
    p99 = quantile(0.99, delta.buckets)
    return WindowStats(
        requests=delta.total,
        errors=delta.errors,
        p99_ms=None if p99 is None else p99 * 1000.0,
        client_errors=delta.client_errors,
    )


def _bucket_delta(then: Buckets, now: Buckets) -> Buckets:
    if not then:
        return now
    return tuple((le, n - old) for (le, n), (_, old) in zip(now, then, strict=True))


def quantile(q: float, buckets: Iterable[tuple[float, float]] | Sequence[tuple[float, float]]) -> float | None:
    """The ``q``-quantile of a histogram, as Prometheus' ``histogram_quantile`` computes it; ``None`` if empty.

    ``buckets`` are ``(upper bound, cumulative count)`` pairs (any order) and must include the ``+Inf`` bucket.
    The rank ``q * count`` falls in the first bucket whose cumulative count reaches it; the answer interpolates
    linearly between that bucket's lower and upper bound (the lowest bucket starts at 0). When the rank is in
    the ``+Inf`` bucket the answer is the highest finite bound (``q=0``: the first non-empty bucket's lower bound,
    where Prometheus answers NaN when the lowest bucket is empty). Resolution: the true quantile lies in the same
    bucket as the answer, nothing finer (see the module docstring).
    """
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
        raise InvalidInput(f"Quantile q must be a number between 0 and 1 (0.99 for p99), got {shown(q)}.")
    pairs = sorted((float(le), float(n)) for le, n in buckets)
    if not pairs:
        return None
    if not math.isinf(pairs[-1][0]) or pairs[-1][0] < 0:
        raise InvalidInput(
            f"A histogram needs its le='+Inf' bucket to give a quantile; the highest bound is {pairs[-1][0]!r}."
        )
    if len(pairs) < 2:
        return None
    counts, running = [], 0.0
    for _, n in pairs:  # cumulative counts never fall (Prometheus' ensureMonotonic)
        running = max(running, n)
        counts.append(running)
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    b = next((i for i in range(len(pairs) - 1) if counts[i] >= rank and counts[i] > 0), len(pairs) - 1)
    if b == len(pairs) - 1:
        return pairs[-2][0]
    end = pairs[b][0]
    if b == 0 and end <= 0:
        return end
    start, count = 0.0, counts[b]
    if b > 0:
        start = pairs[b - 1][0]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)

"""The monitoring report: the Rich summary and the self-contained HTML file (parsed, escaped, sized)."""

from __future__ import annotations

import math
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import matplotlib
import numpy as np
import pytest
from rich.console import Console

from mloop.entities import Monitor, MonitorAlert, MonitorResult
from mloop.errors import InvalidInput
from mloop.monitoring.report import describe_spec, print_summary, render_html, sparkline, summary_rows, write_html

T0 = 1_764_547_200_000  # 2025-12-01 00:00 UTC
HOUR = 3_600_000
HOSTILE = "<script>alert('x')</script>"
MARKUP = "[bold red]$x$[/bold red]"


def _monitor(name: str = "churn-drift") -> Monitor:
    reference = {"dataset": "data:churn/3", "target": "churned", "model": "model:churn/2", "sketch": "monitors/x.json"}
    spec = {"endpoint": "churn-api", "reference": reference, "window": {"every": "1h"}}
    return Monitor(id="m1", name=name, spec=spec, created_at=T0, updated_at=T0, actor="alice")


def _numeric_detail(rng: np.random.Generator, shift: float) -> dict[str, Any]:
    reference = np.sort(rng.normal(size=4000))
    edges = reference[np.linspace(0, len(reference) - 1, 201).astype(int)]
    ref_counts = np.histogram(reference, edges)[0]
    current = rng.normal(shift, 1.0, size=1000)
    cur_counts = [int((current < edges[0]).sum()), *np.histogram(current, edges)[0], int((current >= edges[-1]).sum())]
    return {"method": "psi", "p_value": None, "kind": "numeric",
            "reference": {"edges": [round(float(e), 6) for e in edges], "counts": [0, *map(int, ref_counts), 0]},
            "current": {"edges": [round(float(e), 6) for e in edges], "counts": cur_counts}}  # fmt: skip


def _categorical_detail(shift: float) -> dict[str, Any]:
    names = [f"plan-{i}" for i in range(15)] + ["<b>bold</b>", "$x$"]
    current = {"categories": [*names[:5], "unseen"], "counts": [20, 30, 40, int(50 + 100 * shift), 60, 5]}
    reference = {"categories": names, "counts": [100 + 10 * i for i in range(len(names))]}
    return {"method": "chi2", "p_value": 0.01, "kind": "categorical", "reference": reference, "current": current}


def _results(features: list[str], windows: int, *, seed: int = 0) -> list[MonitorResult]:
    rng = np.random.default_rng(seed)
    out = []

    def add(w: int, signal: str, feature: str, value: float | None, threshold: float | None, *,
            higher_is_worse: bool = True, rows: int = 1000, detail: dict[str, Any] | None = None) -> None:  # fmt: skip
        start = T0 + w * HOUR
        if value is None or threshold is None:
            status = "unknown" if value is None else "ok"
        else:
            status = "breach" if (value > threshold if higher_is_worse else value < threshold) else "ok"
        out.append(MonitorResult(start, start + HOUR, signal, feature, value, threshold, status, rows, detail or {}))

    for w in range(windows):
        shift = w / max(windows - 1, 1)
        drifted = 0
        for i, feature in enumerate(features):
            value = 0.05 + 0.3 * shift * (i % 3) / 2 + 0.01 * float(rng.random())
            drifted += value > 0.2
            detail = _categorical_detail(shift) if i % 4 == 3 else _numeric_detail(rng, shift * (i % 3) / 2)
            add(w, "data_drift", feature, value, 0.2, detail=detail)
            add(w, "missing_rate", feature, 0.02 * (i % 5) * shift, 0.05)
            add(w, "out_of_range", feature, 0.001 * i, 0.01)
        add(w, "dataset_drift", "", drifted / len(features), 0.5)
        add(w, "prediction_drift", "prediction", 0.1 + 0.1 * shift, 0.2, detail=_numeric_detail(rng, shift / 2))
        labelled = int(50 + 10 * w)
        accuracy = 0.9 - 0.15 * shift
        add(w, "accuracy", "", accuracy if w % 7 else None, 0.8, higher_is_worse=False, rows=labelled,
            detail={"ci_low": accuracy - 0.05, "ci_high": accuracy + 0.04})  # fmt: skip
        add(w, "estimated_accuracy", "", accuracy + 0.01, 0.8, higher_is_worse=False)
        add(w, "request_rate", "", 120.0 + 10 * math.sin(w), None)
        add(w, "error_rate", "", 0.002 * (w % 5), 0.01)
        add(w, "latency_p50_ms", "", 12.0 + w % 3, None)
        add(w, "latency_p99_ms", "", 80.0 + 5 * (w % 4), 100.0)
    return out


def _alerts() -> list[MonitorAlert]:
    return [
        MonitorAlert(id="a1", monitor="churn-drift", signal="data_drift", feature=HOSTILE, state="open",
                     opened_at=T0 + 3 * HOUR, updated_at=T0 + 5 * HOUR, windows=3,
                     figures={"value": 0.31, "threshold": 0.2, "rows": 1200, "windows": 3, "method": "psi",
                              "p_value": None, "window_start": T0 + 5 * HOUR, "window_end": T0 + 6 * HOUR}),
        MonitorAlert(id="a2", monitor="churn-drift", signal="error_rate", feature="", state="resolved",
                     opened_at=T0, updated_at=T0 + HOUR, windows=1, figures={}, resolved_at=T0 + HOUR),
    ]  # fmt: skip


class _Parsed(HTMLParser):
    """Every start tag with its attributes, text per tag, and unclosed structural tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in {"section", "table", "svg", "div", "html", "body", "header", "details"}:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in {"section", "table", "svg", "div", "html", "body", "header", "details"}:
            assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Parsed:
    parsed = _Parsed()
    parsed.feed(page)
    parsed.close()
    assert parsed.open == [], f"unclosed: {parsed.open}"
    return parsed


def test_sparkline_scales_between_min_and_max_and_leaves_gaps() -> None:
    assert sparkline([0.0, 0.5, 1.0]) == "\u2581\u2585\u2588"
    assert sparkline([1.0, None, float("nan"), 1.0]) == "\u2584  \u2584"
    assert sparkline([None, None]) == "  "


def test_summary_rows_take_the_latest_window_of_each_signal_and_feature() -> None:
    results = _results(["age", "plan"], 14)
    rows = summary_rows(results, trend=7)
    keys = [(r["signal"], r["feature"]) for r in rows]
    assert keys[:3] == [("dataset_drift", ""), ("data_drift", "age"), ("data_drift", "plan")]
    assert len(keys) == len(set(keys)) == len({(r.signal, r.feature) for r in results})
    last_start = T0 + 13 * HOUR
    assert all(r["window_start"] == last_start for r in rows)
    accuracy = next(r for r in rows if r["signal"] == "accuracy")
    assert accuracy["status"] == "breach" and accuracy["rows"] == 180 and len(accuracy["trend"]) == 7
    assert accuracy["history"][-1] == pytest.approx(0.75) and accuracy["history"][0] is None  # window 7 unlabelled
    with pytest.raises(InvalidInput, match="trend=0"):
        summary_rows(results, trend=0)


def test_describe_spec_names_source_reference_and_window() -> None:
    fixed = {"endpoint": "api", "reference": {"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
             "window": {"rows": 10000}}  # fmt: skip
    assert describe_spec(fixed) == [
        ("source", "endpoint api"),
        ("reference", "window 2026-01-01T00:00:00Z \u2192 2026-01-02T00:00:00Z"),
        ("window", "10,000 rows"),
    ]
    assert describe_spec({}) == [("source", "\u2013"), ("reference", "\u2013"), ("window", "\u2013")]


def test_rich_summary_shows_statuses_trends_and_open_alerts_without_markup_injection() -> None:
    console = Console(record=True, width=180, color_system=None)
    print_summary(_monitor(), _results(["age", MARKUP], 8), _alerts(), console=console)
    text = console.export_text()
    assert "Monitor churn-drift" in text and "endpoint churn-api" in text and "window: every 1h" in text
    assert "reference: data:churn/3, model model:churn/2" in text
    assert MARKUP in text  # printed as text, not interpreted as Rich markup
    for word in ("dataset_drift", "latency_p99_ms", "ok", "breach", "unknown"):
        assert word in text
    assert "Open alerts (1)" in text and HOSTILE in text and "value 0.31, threshold 0.2, rows 1,200, method psi" in text
    assert any(ch in text for ch in "\u2581\u2588")

    empty = Console(record=True, width=120)
    print_summary(_monitor(), [], [], console=empty)
    text = empty.export_text()
    assert "No windows recorded yet: run `mloop monitors run churn-drift`." in text and "No open alerts." in text


def test_html_report_is_one_self_contained_escaped_deterministic_page(tmp_path: Path) -> None:
    features = ["age", HOSTILE, MARKUP, "plan_type"]  # the 4th is categorical
    results = _results(features, 6)
    rc_before = dict(matplotlib.rcParams)
    page = render_html(_monitor(), results, _alerts(), generated_at="2026-12-03 16:00 UTC")
    assert dict(matplotlib.rcParams) == rc_before  # the report's style does not leak
    some = [r for r in results if (r.signal, r.feature) in {("data_drift", "plan_type"), ("accuracy", "")}]
    assert render_html(_monitor(), some, _alerts()) == render_html(_monitor(), some, _alerts())  # deterministic
    assert page.count("generated at") == 1 and "2026-12-03 16:00 UTC" in page

    parsed = _parse(page)
    assert "<script" not in page.lower()  # neither ours nor the hostile feature name's
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    for tag, attrs in parsed.tags:
        assert tag not in {"script", "link", "img", "iframe", "object", "embed"}
        for name in ("src", "href", "xlink:href"):
            value = attrs.get(name) or ""
            assert not value or value.startswith("#"), f"<{tag} {name}={value!r}> is not an in-page reference"
    ids = [attrs["id"] for _, attrs in parsed.tags if attrs.get("id")]
    assert len(ids) == len(set(ids)), "duplicate ids across inlined charts"
    targets = {attrs[n][1:] for _, attrs in parsed.tags for n in ("href", "xlink:href") if attrs.get(n)}
    assert targets <= set(ids)

    text = "".join(parsed.text)
    for feature in features:
        assert feature in text  # each feature has its section (the parser unescapes)
    sections = [a.get("id") for tag, a in parsed.tags if tag == "section"]
    assert [s for s in sections if s and s.startswith("feature-")] == [f"feature-{i}" for i in range(len(features))]
    for anchor in ("alerts", "dataset-drift", "features", "prediction-drift", "performance", "quality", "technical"):
        assert anchor in sections
    for chunk in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        ElementTree.fromstring(chunk)  # every inlined chart is well-formed SVG after compaction
    svgs = [a for tag, a in parsed.tags if tag == "svg"]
    assert len(svgs) == 1 + 2 * len(features) + 2 + 1 + 2 + 3  # dataset, features, prediction, perf, quality, tech
    assert "plan-3" in text and "&lt;b&gt;bold&lt;/b&gt;" in page and "(" in text  # categories drawn, escaped
    assert "labelled rows" in text and "estimated accuracy" in text and "p99 threshold" in text


def test_html_report_says_what_is_missing_instead_of_failing() -> None:
    broken = MonitorResult(T0, T0 + HOUR, "data_drift", "age", None, 0.2, "unknown", 3,
                           {"method": "ks", "reference": {"edges": [1, 2], "counts": [1, 2, 3, 4]},
                            "current": {"edges": [1, 2], "counts": [1]}})  # fmt: skip
    page = render_html(_monitor(), [broken], [])
    _parse(page)
    assert "No distribution stored for the latest window." in page
    assert page.count("No results for these signals in the windows shown.") == 5
    assert "No open alerts." in page
    empty = render_html(_monitor(), [], [])
    assert empty.count("No results for these signals") == 6
    with pytest.raises(InvalidInput, match="max_windows=0"):
        render_html(_monitor(), [], [], max_windows=0)


def test_write_html_draws_the_last_windows_and_reports_its_size(tmp_path: Path) -> None:
    results = [r for r in _results(["age"], 30) if r.signal in {"request_rate", "latency_p99_ms"}]
    size = write_html(tmp_path / "report.html", _monitor(), results, [], max_windows=12)
    page = (tmp_path / "report.html").read_text()
    assert size == len(page.encode()) == (tmp_path / "report.html").stat().st_size
    assert "30 windows (charts show the last 12)" in page
    assert "2025-12-01 00:00 \u2192 2025-12-02 06:00 UTC" in page  # the header spans all windows
    with pytest.raises(InvalidInput, match="existing folder"):
        write_html(tmp_path / "missing" / "report.html", _monitor(), results, [])


def test_html_report_charts_the_most_drifted_features_and_lists_the_rest() -> None:
    results = [r for r in _results(["a", "b", "c", "d"], 4) if r.signal == "data_drift"]
    page = render_html(_monitor(), results, [], max_features=1)
    parsed = _parse(page)
    assert [a["id"] for t, a in parsed.tags if t == "section" and a.get("class") == "feature"] == ["feature-0"]
    assert "3 more features" in page and "<td>a</td>" in page and "<td>d</td>" in page
    charted = page[page.index('id="feature-0"') : page.index('id="features-rest"')]
    assert "<h3>c</h3>" in charted  # c drifts most (value grows with its index modulo 3)
    with pytest.raises(InvalidInput, match="max_features=-1"):
        render_html(_monitor(), results, [], max_features=-1)


def test_html_report_for_20_features_and_48_windows_is_small_enough_to_mail(capsys: pytest.CaptureFixture[str]) -> None:
    features = [f"feature_{i:02d}" for i in range(20)]
    results = _results(features, 48)
    started, cpu = time.perf_counter(), time.process_time()
    page = render_html(_monitor(), results, _alerts(), generated_at="2026-12-03 16:00 UTC")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    size = len(page.encode())
    with capsys.disabled():
        print(f"\nHTML report, 20 features x 48 windows: {size / 1e6:.2f} MB in {seconds:.1f} s ({cpu:.1f} s CPU)")
    assert size < 2_000_000
    parsed = _parse(page)
    assert sum(1 for tag, a in parsed.tags if tag == "section" and a.get("class") == "feature") == 20


def test_the_report_draws_what_the_window_signals_compute() -> None:
    import pyarrow as pa

    from mloop.monitoring.reference import build_reference
    from mloop.monitoring.signals import PREDICTION, window_signals
    from mloop.monitoring.spec import check_spec

    rng = np.random.default_rng(1)
    plans, labels = np.array(["basic", "pro", "<i>team</i>"]), np.array(["no", "yes"])
    n = 3000
    reference = {"age": rng.normal(40, 10, n), "plan": plans[rng.integers(0, 3, n)],
                 PREDICTION: labels[rng.integers(0, 2, n)]}  # fmt: skip
    sketch = build_reference(reference, bins=200)
    spec = check_spec({"endpoint": "churn-api", "reference": {"dataset": "data:churn/3"},
                       "performance": {"metric": "accuracy", "min": 0.8}})  # fmt: skip
    results: list[MonitorResult] = []
    for w in range(3):
        m = 400
        truth = rng.integers(0, 2, m)
        predicted = np.where(rng.random(m) < 0.9 - 0.1 * w, truth, 1 - truth)
        table = pa.table({
            "input.age": rng.normal(40 + 4 * w, 10, m), "input.plan": plans[rng.integers(0, 3 - w, m)],
            "prediction": labels[predicted], "ground_truth": labels[truth], "status": np.full(m, 200),
            "latency_ms": rng.gamma(2.0, 5.0, m), "request_id": [f"r{w}-{i}" for i in range(m)],
        })  # fmt: skip
        results += window_signals(table, T0 + w * HOUR, T0 + (w + 1) * HOUR, sketch, spec, ["age", "plan"],
                                  task="classification", classes=["no", "yes"])  # fmt: skip
    signals = {r.signal for r in results}
    assert {"data_drift", "dataset_drift", "prediction_drift", "accuracy", "latency_p99_ms"} <= signals
    monitor = Monitor(id="m2", name="live", spec=spec, created_at=T0, updated_at=T0, actor="alice")
    page = render_html(monitor, results, [])
    parsed = _parse(page)
    assert "No distribution stored" not in page  # the detail signals.py stores is what the charts read
    assert [a["id"] for t, a in parsed.tags if t == "section" and a.get("class") == "feature"] == [
        "feature-0", "feature-1"]  # fmt: skip
    assert "&lt;i&gt;team&lt;/i&gt;" in page and "<i>" not in page
    assert "labelled rows" in page and "invalid_requests" in page
    assert "reference</dt><dd>data:churn/3</dd>" in page and "every 1h" in page

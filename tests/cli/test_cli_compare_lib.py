"""``mloop.tracking.compare``: the library behind ``mloop runs compare``."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.entities import Metric
from mloop.errors import InvalidInput, NotFound
from mloop.tracking.client import Client
from mloop.tracking.compare import _nice_ticks, _thin, compare_runs, metric_histories, render_html, write_chart
from mloop.workspace import init_workspace


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    c = Client(workspace=init_workspace(tmp_path / "ws"))
    yield c
    c.close()


def test_compare_runs_lines_up_params_and_metrics(client: Client) -> None:
    with client.start_run("e", "a", params={"lr": 0.1, "depth": 3}) as a:
        a.log_metric("acc", 0.8)
    with client.start_run("e", "b", params={"lr": 0.1}) as b:
        b.log_metrics({"acc": 0.9, "loss": 0.2})
    result = compare_runs(client, [a.id, f"run:{b.id}", a.id])  # a repeated run is compared once
    assert [r.name for r in result.runs] == ["a", "b"]
    assert result.params == {"depth": ("3", None), "lr": ("0.1", "0.1")}
    assert result.metrics == {"acc": (0.8, 0.9), "loss": (None, 0.2)}
    assert result.differing_params == ["depth"]
    d = result.to_dict()
    assert d["params"]["depth"] == {a.id: "3", b.id: None}
    assert compare_runs(client, [a.id, b.id], metrics=["loss"]).metrics == {"loss": (None, 0.2)}
    with pytest.raises(NotFound, match=r"'f1'.*acc, loss"):
        compare_runs(client, [a.id, b.id], metrics=["f1"])
    with pytest.raises(InvalidInput, match="at least one run"):
        compare_runs(client, [])


def test_histories_and_charts_with_gaps(client: Client, tmp_path: Path) -> None:
    with client.start_run("e", "a") as a:
        for step, value in enumerate([1.0, 0.5, math.nan, 0.25, 0.2, math.inf, 0.1, 0.05]):
            a.log_metric("loss", value, step=step)
    with client.start_run("e", "b <&>") as b:
        b.log_metric("loss", 0.3, step=2)
    histories = metric_histories(client, [a.id, b.id])
    assert [p.step for p in histories["loss"][a.id]] == list(range(8))
    page = write_chart(client, [a.id, b.id], tmp_path / "c.HTML").read_text()
    assert "b &lt;&amp;&gt;" in page  # names are escaped
    svg = page[page.index("<svg") : page.index("</svg>") + 6]
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f".//{ns}polyline")) == 3  # NaN and inf break the line of a
    assert write_chart(client, [a, b], tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_chart_needs_a_metric_and_a_known_format(client: Client, tmp_path: Path) -> None:
    with client.start_run("e", "quiet") as run:
        pass
    with pytest.raises(NotFound, match="nothing to chart"):
        write_chart(client, [run.id], tmp_path / "c.png")
    with pytest.raises(InvalidInput, match=r"\.png or \.html"):
        write_chart(client, [run.id], tmp_path / "c.svg")


def test_long_histories_are_thinned_keeping_extremes() -> None:
    points = [Metric("m", float(i % 997), i) for i in range(100_000)]
    points[54_321] = Metric("m", -5.0, 54_321)
    thin = _thin(points)
    assert len(thin) <= 2000
    assert thin[0] == points[0] and thin[-1] == points[-1]
    assert Metric("m", -5.0, 54_321) in thin
    assert [p.step for p in thin] == sorted(p.step for p in thin)
    html = render_html({"m": {"r": points}}, {"r": "run r"}, "t")
    assert len(html) < 200_000


def test_nice_ticks() -> None:
    assert _nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert _nice_ticks(-0.5, 0.5, integer=True) == [0.0]
    assert _nice_ticks(0, 19.95, integer=True) == [0, 5, 10, 15]

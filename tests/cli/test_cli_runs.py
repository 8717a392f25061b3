"""``mloop runs ...`` and ``mloop experiments list`` against a real SQLite workspace."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from cli_cases import Invoke, Seeded


def test_experiments_list(mloop: Invoke, seeded: Seeded) -> None:
    data = json.loads(mloop("experiments", "list", "--json").stdout)
    assert [e["name"] for e in data] == ["iris", "other"]
    assert set(data[0]) == {"experiment_id", "name", "created_at", "deleted"}
    assert "iris" in mloop("experiments", "list").stdout


def test_runs_list_table(mloop: Invoke, seeded: Seeded) -> None:
    out = mloop("runs", "list").stdout
    for name, run_id in seeded.runs.items():
        assert name in out
        assert run_id[-8:] in out
    assert "FINISHED" in out and "loss" in out
    assert "experiment" in out  # runs from two experiments


def test_runs_list_json_filter_order(mloop: Invoke, seeded: Seeded) -> None:
    rows = json.loads(mloop("runs", "list", "--json").stdout)
    assert len(rows) == 4
    assert rows[0]["name"] == "delta"  # newest first
    assert rows[0]["experiment"] == "other" and rows[0]["deleted"] is False

    rows = json.loads(
        mloop(
            "runs", "list", "-e", "iris", "--filter", "params.model = 'rf'", "--order-by", "metrics.loss ASC", "--json"
        ).stdout
    )
    assert [r["name"] for r in rows] == ["beta", "alpha"]
    assert rows[0]["params.lr"] == "0.01"
    assert rows[0]["metrics.loss"] == 0.01

    rows = json.loads(mloop("runs", "list", "--order-by", "metrics.acc DESC", "--max", "2", "--json").stdout)
    assert [r["name"] for r in rows] == ["beta", "alpha"] or [r["name"] for r in rows] == ["beta", "gamma"]
    assert len(rows) == 2


def test_runs_list_bad_filter(mloop: Invoke, seeded: Seeded) -> None:
    result = mloop("runs", "list", "--filter", "metrics.acc >> 0.9", code=2)
    assert result.stderr.startswith("error: ")
    assert "metrics.acc >> 0.9" in result.stderr or ">>" in result.stderr
    assert result.stdout == ""


def test_runs_list_unknown_experiment(mloop: Invoke, seeded: Seeded) -> None:
    result = mloop("runs", "list", "--experiment", "nope", code=3)
    assert "'nope'" in result.stderr and "mloop experiments list" in result.stderr


def test_runs_list_max_must_be_positive(mloop: Invoke, seeded: Seeded) -> None:
    result = mloop("runs", "list", "--max", "0", code=2)
    assert "--max" in result.stderr


def test_runs_show(mloop: Invoke, seeded: Seeded) -> None:
    run_id = seeded.runs["alpha"]
    out = mloop("runs", "show", run_id).stdout
    for text in (
        run_id,
        "alpha",
        "iris",
        "lr",
        "0.1",
        "loss",
        "team",
        "model/card.txt",
        "data/alpha.bin",
        "blake3:",
        "python",
        "packages",
    ):
        assert text in out, text

    data = json.loads(mloop("runs", "show", f"run:{run_id}", "--json").stdout)
    assert data["run_id"] == run_id and data["experiment"] == "iris" and data["status"] == "FINISHED"
    assert data["params"] == {"lr": "0.1", "model": "rf"}
    assert data["metrics"]["loss"] == 0.1  # the latest value: 0.1 * 10 / 10
    assert data["tags"] == {"team": "ml"}
    assert {a["path"]: a["size"] for a in data["artifacts"]} == {"model/card.txt": 12, "data/alpha.bin": 5000}
    env = data["environment"]
    assert env["python"] and env["packages"] > 0 and "git_commit" in env


def test_runs_show_short_ids(mloop: Invoke, seeded: Seeded) -> None:
    run_id = seeded.runs["beta"]
    for short in (run_id[-8:], run_id[-12:], f"run:{run_id[-8:]}"):
        assert json.loads(mloop("runs", "show", short, "--json").stdout)["run_id"] == run_id


def test_runs_show_ambiguous_prefix(mloop: Invoke, seeded: Seeded) -> None:
    prefix = seeded.runs["alpha"][:8]  # ids start with their creation time: these runs share it
    result = mloop("runs", "show", prefix, code=2)
    assert prefix in result.stderr and "full id" in result.stderr


def test_runs_show_unknown_id(mloop: Invoke, seeded: Seeded) -> None:
    missing = "0123456789abcdef0123456789abcdef"
    result = mloop("runs", "show", missing, code=3)
    assert result.stderr.startswith("error: ")
    assert missing in result.stderr and "mloop runs list" in result.stderr

    result = mloop("runs", "show", "deadbeef", code=3)
    assert "'deadbeef'" in result.stderr and "mloop runs list" in result.stderr


def test_runs_show_malformed_id(mloop: Invoke, seeded: Seeded) -> None:
    result = mloop("runs", "show", "not-a-run", code=2)
    assert "'not-a-run'" in result.stderr and "run:<id>" in result.stderr


def test_runs_compare_table_and_json(mloop: Invoke, seeded: Seeded) -> None:
    a, b, c = seeded.runs["alpha"], seeded.runs["beta"], seeded.runs["gamma"]
    out = mloop("runs", "compare", a, b, c).stdout
    assert "* params.lr" in out and "* params.model" in out
    assert "metrics.loss" in out and "differ" in out
    for name in ("alpha", "beta", "gamma"):
        assert name in out

    data = json.loads(mloop("runs", "compare", a, b, "--json").stdout)
    assert [r["run_id"] for r in data["runs"]] == [a, b]
    assert data["params"]["lr"] == {a: "0.1", b: "0.01"}
    assert data["differing_params"] == ["lr"]
    assert set(data["metrics"]) == {"acc", "loss"}
    assert data["chart"] is None

    data = json.loads(mloop("runs", "compare", a, b, "--metric", "loss", "--json").stdout)
    assert list(data["metrics"]) == ["loss"]


def test_runs_compare_chart_png(mloop: Invoke, seeded: Seeded, tmp_path: Path) -> None:
    target = tmp_path / "charts" / "loss.png"
    out = mloop("runs", "compare", seeded.runs["alpha"], seeded.runs["beta"], "--chart", str(target)).stdout
    assert "Chart written to" in out
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert target.stat().st_size > 1000


def test_runs_compare_chart_html(mloop: Invoke, seeded: Seeded, tmp_path: Path) -> None:
    target = tmp_path / "cmp.html"
    data = json.loads(
        mloop(
            "runs",
            "compare",
            seeded.runs["alpha"],
            seeded.runs["gamma"],
            "-m",
            "loss",
            "--chart",
            str(target),
            "--json",
        ).stdout
    )
    assert data["chart"] == str(target)
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1 and "<polyline" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page
    svg = page[page.index("<svg") : page.index("</svg>") + len("</svg>")]
    ET.fromstring(svg)  # well-formed


def test_runs_compare_errors(mloop: Invoke, seeded: Seeded, tmp_path: Path) -> None:
    a, b = seeded.runs["alpha"], seeded.runs["beta"]
    result = mloop("runs", "compare", a, b, "--chart", str(tmp_path / "x.pdf"), code=2)
    assert "x.pdf" in result.stderr and ".png or .html" in result.stderr
    result = mloop("runs", "compare", a, b, "--metric", "f1", code=3)
    assert "'f1'" in result.stderr and "acc, loss" in result.stderr
    mloop("runs", "compare", code=2)  # at least one run


def test_delete_and_restore(mloop: Invoke, seeded: Seeded) -> None:
    run_id = seeded.runs["gamma"]
    out = mloop("runs", "delete", run_id[-8:]).stdout
    assert f"Deleted run:{run_id}" in out and "mloop runs restore" in out
    listed = {r["run_id"] for r in json.loads(mloop("runs", "list", "--json").stdout)}
    assert run_id not in listed and len(listed) == 3
    deleted = json.loads(mloop("runs", "list", "--deleted", "--json").stdout)
    assert [r["run_id"] for r in deleted] == [run_id] and deleted[0]["deleted"] is True
    assert len(json.loads(mloop("runs", "list", "--all", "--json").stdout)) == 4
    assert "deleted" in mloop("runs", "show", run_id).stdout  # still inspectable

    assert f"Restored run:{run_id}" in mloop("runs", "restore", run_id).stdout
    assert run_id in {r["run_id"] for r in json.loads(mloop("runs", "list", "--json").stdout)}

    result = mloop("runs", "delete", "0123456789abcdef0123456789abcdef", code=3)
    assert "0123456789abcdef0123456789abcdef" in result.stderr


def test_artifacts_and_download(mloop: Invoke, seeded: Seeded, tmp_path: Path) -> None:
    run_id = seeded.runs["alpha"]
    out = mloop("runs", "artifacts", run_id).stdout
    assert "model/card.txt" in out and "5.0 kB" in out and "2 artifact(s)" in out
    entries = json.loads(mloop("runs", "artifacts", run_id, "--json").stdout)
    assert sorted(e["path"] for e in entries) == ["data/alpha.bin", "model/card.txt"]
    assert all(e["digest"].startswith("blake3:") for e in entries)

    dest = tmp_path / "out"
    mloop("runs", "download", run_id, "--dest", str(dest))
    assert (dest / "model" / "card.txt").read_text() == "model alpha\n"
    assert (dest / "data" / "alpha.bin").read_bytes() == b"alpha" * 1000

    one = tmp_path / "one"
    out = mloop("runs", "download", run_id, "model/card.txt", "-d", str(one)).stdout
    assert str(one / "model" / "card.txt") in out
    assert not (one / "data").exists()

    result = mloop("runs", "download", run_id, "nope.txt", "-d", str(one), code=3)
    assert "'nope.txt'" in result.stderr

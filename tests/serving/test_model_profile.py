"""``mloop profile``: the real scoring server driven at rising concurrency; figures, recorded tags, bad flags."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import mloop
from mloop.errors import InvalidInput, MloopError
from mloop.serving.profile import (
    TAGS,
    ProfileLevel,
    cpu_request,
    knee_of,
    memory_request,
    parse_concurrency,
    profile_model,
)
from mloop.tracking.client import Client

MLOOP = str(Path(sys.executable).parent / "mloop")
MIB = 2**20


@pytest.fixture
def profiled(client: Client, churn: Any) -> Client:
    """model:churn/1 (no input example) and model:churn/2, the same pipeline logged with a 3-row input example."""
    model, x = churn
    with mloop.start_run("churn-example") as run:
        run.log_model(model, "churn", signature_data=x, input_example=x.head(3))
    return client


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_profile_reports_levels_and_records_tags(profiled: Client) -> None:
    seen: list[ProfileLevel] = []
    report = profile_model(profiled, "model:churn", concurrency=(1, 4),
                           duration=0.6, warmup=0.2, rows=1, on_level=seen.append)  # fmt: skip
    assert report.ref == "model:churn/2" and report.rows == 1
    assert [lv.concurrency for lv in report.levels] == [1, 4] and list(report.levels) == seen
    for lv in report.levels:
        assert lv.requests > 20 and lv.errors == 0, lv
        assert lv.throughput == pytest.approx(lv.requests / 0.6, rel=0.5)
        assert 0 < lv.p50_ms <= lv.p99_ms < 5000  # type: ignore[operator]
        assert 0.05 < lv.server_cpu <= (os.cpu_count() or 1) + 0.5  # the server worked, at most all cores
        assert 60 * MIB < lv.peak_rss < 4096 * MIB  # a Python process with sklearn loaded
    assert report.levels[1].peak_rss >= report.levels[0].peak_rss  # a high-water mark
    assert report.knee in (1, 4)
    knee = next(lv for lv in report.levels if lv.concurrency == report.knee)
    assert report.cpu_request == cpu_request(knee.server_cpu)
    assert int(report.memory_request.removesuffix("Mi")) * MIB >= 1.25 * report.levels[1].peak_rss
    tags = profiled.store.get_model_version("churn", 2).tags
    assert tags == report.tags and set(tags) == set(TAGS.values())
    assert re.fullmatch(r"\d+m", tags[TAGS["cpu"]]) and re.fullmatch(r"\d+Mi", tags[TAGS["memory"]])
    results = json.loads(tags[TAGS["results"]])
    assert results["knee"] == report.knee and [lv["concurrency"] for lv in results["levels"]] == [1, 4]
    assert results["levels"][0]["requests"] == report.levels[0].requests
    assert profiled.store.get_model_version("churn", 1).tags == {}  # only the profiled version
    assert [e.subject for e in profiled.store.list_events(types=["model.version_tagged"]).items] == ["model:churn/2"]


@pytest.mark.slow
def test_cli_profile_json_without_recording(profiled: Client) -> None:
    folder = profiled.workspace.settings.workspace
    assert folder is not None
    env = {k: v for k, v in os.environ.items() if k not in ("MLOOP_URI", "MLOOP_ARTIFACT_URI")}
    args = ["profile", "model:churn/2", "-c", "2", "-d", "0.4", "--warmup", "0", "--no-record", "--json"]
    proc = subprocess.run([MLOOP, *args], cwd=folder.parent, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ref"] == "model:churn/2" and out["rows"] == 3 and out["tags"] == {}
    (level,) = out["levels"]
    assert level["concurrency"] == 2 and level["requests"] > 5 and level["errors"] == 0
    assert out["cpu_request"].endswith("m") and out["memory_request"].endswith("Mi")
    assert profiled.store.get_model_version("churn", 2).tags == {}


def test_a_model_without_input_example_is_refused_naming_it(client: Client, churn: Any) -> None:
    with pytest.raises(InvalidInput, match=r"model:churn/1 has no stored input example"):
        profile_model(client, "model:churn/1", concurrency=(1,), duration=0.1)


@pytest.mark.slow
def test_a_tampered_model_stops_the_profile_naming_the_file(profiled: Client) -> None:
    mloop.load_model("model:churn/2")  # fills the verified local cache, which is then changed
    version = profiled.store.get_model_version("churn", 2)
    pkl = profiled.workspace.settings.local_dir / "models" / version.id / "model.pkl"
    pkl.write_bytes(pkl.read_bytes()[:-1] + b"!")
    with pytest.raises(MloopError, match=r"exited with code 6 before it was ready(.|\n)*'model.pkl'"):
        profile_model(profiled, "model:churn/2", concurrency=(1,), duration=0.1, record=True)
    assert profiled.store.get_model_version("churn", 2).tags == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "0,2"], "--concurrency level 0 is out of range; use 1 to 4096"),
        (["-c", "4,2"], "--concurrency '4,2' must rise with no repeats"),
        (["-c", "a,b"], "--concurrency 'a,b' is not a comma-separated list of whole numbers"),
        (["-d", "0"], "--duration must be more than 0 and at most 3600 seconds, got 0.0"),
        (["--rows", "0"], "--rows must be at least 1, got 0"),
        (["--warmup", "-1"], "--warmup must be 0 to 600 seconds, got -1.0"),
    ],
)
def test_bad_flags_are_named(profiled: Client, args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from mloop.cli.app import build_app

    uri = profiled.workspace.settings.store_uri
    result = CliRunner().invoke(build_app("profile"), ["--uri", uri, "profile", "model:churn/2", *args])
    assert result.exit_code != 0 and message in result.output, result.output
    assert profiled.store.get_model_version("churn", 2).tags == {}


def test_unknown_model_is_not_found(client: Client, churn: Any) -> None:
    from mloop.errors import NotFound

    with pytest.raises(NotFound, match="latest is 1"):
        profile_model(client, "model:churn/7", concurrency=(1,), duration=0.1)


def test_requests_and_knee() -> None:
    assert [cpu_request(c) for c in (0.0, 0.1, 0.93, 1.0, 1.01, 2.5)] == ["100m", "100m", "950m", "1000m", "1050m",
                                                                          "2500m"]  # fmt: skip
    assert memory_request(200 * MIB) == "256Mi" and memory_request(1) == "16Mi"
    assert memory_request(int(204.8 * MIB)) == "256Mi" and memory_request(int(204.9 * MIB)) == "272Mi"

    def level(c: int, tput: float) -> ProfileLevel:
        return ProfileLevel(c, 100, tput, 1.0, 2.0, 0, 0.5 * c, 100 * MIB)

    assert knee_of([level(1, 100), level(2, 170), level(4, 195), level(8, 200), level(16, 190)]).concurrency == 4
    assert knee_of([level(1, 500), level(2, 480)]).concurrency == 1
    assert parse_concurrency("1,2,4,8,16,32") == (1, 2, 4, 8, 16, 32)

"""Formatting helpers of the CLI."""

from __future__ import annotations

import json
import math

from mloop.cli.output import human_duration, human_size, jsonable, short_digest, short_id


def test_human_size() -> None:
    assert human_size(0) == "0 B"
    assert human_size(999) == "999 B"
    assert human_size(5000) == "5.0 kB"
    assert human_size(1_234_567) == "1.2 MB"
    assert human_size(3 * 10**12) == "3.0 TB"
    assert human_size(None) == "-"


def test_human_duration() -> None:
    assert human_duration(None) == "-"
    assert human_duration(12) == "12ms"
    assert human_duration(1500) == "1.5s"
    assert human_duration(125_000) == "2m05s"
    assert human_duration(3_720_000) == "1h02m"


def test_jsonable_spells_non_finite_numbers() -> None:
    value = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": (1, "x", None)}
    assert json.dumps(jsonable(value), allow_nan=False) == (
        '{"a": "NaN", "b": ["Infinity", "-Infinity", 1.5], "c": [1, "x", null]}'
    )


def test_short_forms() -> None:
    assert short_id("01a2013dd63b77f7ae766bdb0edff073") == "0edff073"
    assert short_digest("blake3:" + "ab" * 32) == "blake3:abababababab"

"""Stream URLs: the defaults, every option, and errors that name the bad value."""

from __future__ import annotations

import pytest

from mloop.deployments.streaming import parse_stream_url, subject_matches
from mloop.errors import InvalidInput


def test_nats_defaults() -> None:
    spec = parse_stream_url("nats://127.0.0.1:4222/sensors.temp", "churn-live")
    assert (spec.transport, spec.server, spec.input, spec.out) == (
        "nats", "nats://127.0.0.1:4222", "sensors.temp", "sensors.temp.predictions")  # fmt: skip
    assert (spec.group, spec.batch, spec.key, spec.proba, spec.start, spec.ack_wait) == (
        "mloop-churn-live", 1000, None, False, "all", 30.0)  # fmt: skip


def test_redis_defaults_and_options() -> None:
    spec = parse_stream_url(
        "redis://:secret@localhost/sensors?out=preds&group=g1&batch=50&key=device&proba=true&start=new"
        "&ack_wait=2.5&consumer=c7&field=payload&maxlen=1000&db=2", "ep")  # fmt: skip
    assert spec.server == "redis://:secret@localhost:6379"
    assert (spec.input, spec.out, spec.group, spec.batch, spec.key, spec.proba, spec.start, spec.ack_wait) == (
        "sensors", "preds", "g1", 50, "device", True, "new", 2.5)  # fmt: skip
    assert spec.options == {"consumer": "c7", "field": "payload", "maxlen": "1000", "db": "2"}
    assert "secret" not in spec.describe()
    assert parse_stream_url("redis://127.0.0.1:6379/events", "a b").out == "events:predictions"
    assert parse_stream_url("redis://127.0.0.1:6379/events", "a b").group == "mloop-a-b"


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("kafka://127.0.0.1:9092/topic", "'kafka'"),
        ("nats:///subject", "no host"),
        ("nats://127.0.0.1:4222/", "no subject"),
        ("redis://127.0.0.1:6379", "no stream"),
        ("nats://127.0.0.1:99999/s", "port"),
        ("nats://127.0.0.1:4222/s?batch=0", "'0'"),
        ("nats://127.0.0.1:4222/s?batch=many", "'many'"),
        ("nats://127.0.0.1:4222/s?batch=20000", "'20000'"),
        ("nats://127.0.0.1:4222/s?ack_wait=-1", "'-1'"),
        ("nats://127.0.0.1:4222/s?proba=maybe", "'maybe'"),
        ("nats://127.0.0.1:4222/s?start=latest", "'latest'"),
        ("nats://127.0.0.1:4222/s?colour=red", "'colour'"),
        ("nats://127.0.0.1:4222/s?field=data", "'field'"),  # a Redis-only option
        ("redis://127.0.0.1:6379/s?stream=S", "'stream'"),  # a NATS-only option
        ("nats://127.0.0.1:4222/s?key=", "'key' is empty"),
        ("nats://127.0.0.1:4222/s?batch=1&batch=2", "'batch' is given twice"),
        ("nats://127.0.0.1:4222/a..b", "'a..b'"),
        ("nats://127.0.0.1:4222/sensors.>", "?out="),
        ("nats://127.0.0.1:4222/sensors.>?out=sensors.predictions", "'sensors.predictions' is matched"),
        ("nats://127.0.0.1:4222/s?out=p.*", "'p.*' has a wildcard"),
        ("nats://127.0.0.1:4222/s?group=a.b", "'a.b'"),
        ("redis://127.0.0.1:6379/s?out=s", "'s'"),
        ("redis://127.0.0.1:6379/s?maxlen=none", "'none'"),
        ("redis://127.0.0.1:6379/s?db=-1", "'-1'"),
    ],
)
def test_errors_name_the_value(url: str, named: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_stream_url(url, "ep")
    assert named in str(info.value)


def test_password_is_not_shown_in_errors() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_stream_url("redis://:hunter2@127.0.0.1:6379/s?colour=red", "ep")
    assert "hunter2" not in str(info.value)


def test_subject_matching() -> None:
    assert subject_matches("a.>", "a.b.c") and subject_matches("a.*", "a.b") and subject_matches("a.b", "a.b")
    assert not subject_matches("a.*", "a.b.c") and not subject_matches("a.>", "a") and not subject_matches("a", "a.b")

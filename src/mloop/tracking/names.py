"""Readable default run names (``brisk-otter-42``)."""

from __future__ import annotations

import random

__all__ = ["random_run_name"]

_ADJECTIVES = (
    "amber",
    "bold",
    "brisk",
    "calm",
    "clever",
    "crisp",
    "dapper",
    "eager",
    "fair",
    "gentle",
    "glad",
    "honest",
    "jolly",
    "keen",
    "lucid",
    "mellow",
    "nimble",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "zesty",
)
_NOUNS = (
    "badger",
    "bison",
    "crane",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "gecko",
    "heron",
    "ibis",
    "koala",
    "lemur",
    "lynx",
    "marten",
    "newt",
    "otter",
    "owl",
    "panda",
    "puffin",
    "quail",
    "raven",
    "seal",
    "stoat",
    "tapir",
    "viper",
    "walrus",
    "yak",
    "zebra",
)


def random_run_name(rng: random.Random | None = None) -> str:
    r = rng or random.Random()
    return f"{r.choice(_ADJECTIVES)}-{r.choice(_NOUNS)}-{r.randint(1, 99)}"

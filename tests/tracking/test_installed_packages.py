"""The package list a run's environment records: read from the METADATA headers, as the full parse would give."""

from __future__ import annotations

from importlib import metadata

from mloop.flavors.lock import _name_version, installed_packages


def test_the_fast_read_matches_the_full_metadata_parse() -> None:
    full: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            full[name.lower().replace("_", "-")] = dist.version
    assert installed_packages() == dict(sorted(full.items()))
    assert installed_packages()["sqlalchemy"] == metadata.version("sqlalchemy")


def test_only_the_header_block_is_read() -> None:
    text = "Metadata-Version: 2.1\nName: Some_Pkg\nSummary: x\nVersion: 1.2\n\nVersion: 9 in the description\n"
    assert _name_version(text) == ("Some_Pkg", "1.2")
    assert _name_version("Name: a\n\nVersion: 1\n") == ("a", None)  # no version header: the caller falls back

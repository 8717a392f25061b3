"""Path options with a default (``runs download --dest``, ``init DIR``) work when left out: typer passes the
default ``Path`` through the same parser that checks typed paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_cases import Invoke, Seeded


def test_runs_download_defaults_to_the_working_folder(
    mloop: Invoke, seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "here"
    out.mkdir()
    monkeypatch.chdir(out)
    result = mloop("runs", "download", seeded.runs["alpha"])
    assert "Downloaded to" in result.stdout
    assert (out / "model" / "card.txt").read_text() == "model alpha\n" and (out / "data" / "alpha.bin").is_file()


def test_a_typed_path_is_still_checked(mloop: Invoke, seeded: Seeded) -> None:
    result = mloop("runs", "download", seeded.runs["alpha"], "--dest", "a\x00b", code=2)
    assert "NUL byte" in result.output

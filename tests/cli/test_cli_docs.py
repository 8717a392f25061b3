"""The CLI reference (docs/cli.md) is generated from --help and must be current and complete."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date() -> None:
    gen = _generator()
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == gen.render(), (
        "docs/cli.md is stale: run `python docs/gen_cli.py`"
    )


def test_every_command_is_documented() -> None:
    gen = _generator()
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    paths = list(gen.command_paths())
    assert len(paths) >= 17
    for path in paths:
        name = " ".join(("mloop", *path))
        assert f"\n## {name}\n" in text, name
        assert f"Usage: {name} " in text, name

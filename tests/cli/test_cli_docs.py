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


def test_readme_quick_start_puts_mloop_on_path() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = quick.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(commands) == 2, commands  # two commands, nothing else to type
    assert "source .venv/bin/activate" in commands[0] and commands[0].endswith("mloop demo")
    assert "source .venv/bin/activate" in quick.split("```", 2)[2]  # and the prose says it for new shells


def test_documented_guarantees() -> None:
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert '"NaN"' in cli and '"Infinity"' in cli and '"-Infinity"' in cli
    assert "mloop init" in cli.split("## Commands", 1)[0]  # a store that does not exist is an error
    datasets = (DOCS / "datasets.md").read_text(encoding="utf-8")
    assert "outside the folder" in datasets  # the symlink rule

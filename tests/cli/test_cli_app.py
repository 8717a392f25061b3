"""The root command: version, help of every command, fast imports, and the installed entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_cases import Invoke, Seeded
from typer.main import get_command

from mloop import __version__
from mloop.cli.app import app

HEAVY = ("sqlalchemy", "pandas", "numpy", "matplotlib", "sklearn", "rich", "mloop.tracking", "mloop.store")
MLOOP = Path(sys.executable).parent / "mloop"


def _paths(command: Any = None, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    command = command if command is not None else get_command(app)
    out = [path]
    for name, sub in getattr(command, "commands", {}).items():
        out.extend(_paths(sub, (*path, name)))
    return out


COMMANDS = _paths()


def test_command_tree() -> None:
    assert {" ".join(p) for p in COMMANDS} == {
        "",
        "init",
        "info",
        "gc",
        "demo",
        "lineage",
        "evaluate",
        "score",
        "serve",
        "profile",
        "package",
        "deploy",
        "deploy create",
        "deploy update",
        "deploy list",
        "deploy show",
        "deploy status",
        "deploy logs",
        "deploy promote",
        "deploy rollback",
        "deploy start",
        "deploy stop",
        "deploy delete",
        "deploy data",
        "monitors",
        "monitors create",
        "monitors list",
        "monitors run",
        "monitors show",
        "monitors pause",
        "monitors resume",
        "monitors delete",
        "automations",
        "automations create",
        "automations list",
        "automations show",
        "automations history",
        "automations pause",
        "automations resume",
        "automations delete",
        "automations apply",
        "experiments",
        "experiments list",
        "runs",
        "runs list",
        "runs show",
        "runs compare",
        "runs delete",
        "runs restore",
        "runs artifacts",
        "runs download",
        "events",
        "events list",
        "data",
        "data add",
        "data list",
        "data versions",
        "data show",
        "data diff",
        "data get",
        "data alias",
        "data delete",
        "data split",
        "data unprotect",
        "models",
        "models list",
        "models versions",
        "models show",
        "models register",
        "models promote",
        "models alias",
        "models check",
        "models approve",
        "models rollback",
        "models archive",
        "models policy",
        "models compare",
        "pipelines",
        "pipelines run",
        "pipelines plan",
        "pipelines explain",
        "pipelines logs",
        "pipelines resume",
        "compute",
        "compute list",
        "compute create",
        "compute show",
        "compute delete",
        "compute default",
        "pipelines publish",
        "pipelines trigger",
        "pipelines published",
        "pipelines versions",
        "pipelines alias",
        "schedules",
        "schedules create",
        "schedules list",
        "schedules show",
        "schedules pause",
        "schedules resume",
        "schedules delete",
        "scheduler",
    }


def test_version(mloop: Invoke) -> None:
    assert mloop("--version").stdout.strip() == f"mloop {__version__}"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "mloop")
def test_help_of_every_command(mloop: Invoke, path: tuple[str, ...]) -> None:
    out = mloop(*path, "--help").stdout
    assert out.startswith(f"Usage: mloop {' '.join(path)}".rstrip())
    assert "--help" in out


def test_no_arguments_shows_help(mloop: Invoke) -> None:
    result = mloop(code=2)
    assert "Usage: mloop" in result.output


def test_listings_have_json() -> None:
    listings = [
        "info",
        "experiments list",
        "runs list",
        "runs show",
        "runs compare",
        "runs artifacts",
        "events list",
        "gc",
        "lineage",
        "evaluate",
        "score",
        "data add",
        "data list",
        "data versions",
        "data show",
        "data diff",
        "data get",
        "data split",
        "models list",
        "models versions",
        "models show",
        "models register",
        "models promote",
        "models alias",
        "models check",
        "models policy",
        "models compare",
    ]
    root = get_command(app)
    for path in listings:
        command: Any = root
        for part in path.split():
            command = command.commands[part]
        assert any("--json" in p.opts for p in command.params), path


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['mloop', 'runs', 'list', '--help']\n"
        "from mloop.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip() == "[]"
    assert "Usage: mloop runs list" in proc.stdout


@pytest.mark.parametrize(
    ("argv", "built"),
    [
        (["runs", "list"], "runs"),
        (["--uri", "sqlite:///x.db", "--artifacts", "a", "pipelines", "run", "p.py"], "pipelines"),
        (["--uri=sqlite:///x.db", "data", "--help"], "data"),
        (["--help"], None),
        (["--version"], None),
        (["no-such-command"], None),
        ([], None),
    ],
)
def test_a_command_line_builds_only_the_command_it_names(argv: list[str], built: str | None) -> None:
    from mloop.cli.app import COMMANDS, _invoked, build_app

    assert _invoked(argv) == built
    names = set(get_command(build_app(built)).commands)  # type: ignore[attr-defined]
    assert names == ({built} if built else set(COMMANDS))


def test_only_the_named_command_is_imported() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['mloop', 'runs', 'list', '--help']\n"
        "from mloop.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('mloop.cli.')), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(proc.stderr.strip()))
    assert "mloop.cli.runs" in loaded
    assert not loaded & {"mloop.cli.pipelines", "mloop.cli.data", "mloop.cli.models", "mloop.cli.demo"}
    unknown = subprocess.run([sys.executable, "-m", "mloop.cli.app", "runz"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "No such command 'runz'" in unknown.stderr  # the whole app answers


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MLOOP), *args], capture_output=True, text=True, env=env, timeout=120)


def test_installed_entry_point(seeded: Seeded) -> None:
    env = {**os.environ, "MLOOP_URI": seeded.store_uri, "MLOOP_ARTIFACT_URI": seeded.artifact_uri}
    proc = _run("runs", "list", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert {r["run_id"] for r in json.loads(proc.stdout)} == set(seeded.runs.values())

    missing = "0123456789abcdef0123456789abcdef"
    proc = _run("runs", "show", missing, env=env)
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ")
    assert missing in proc.stderr and "mloop runs list" in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = _run("--version", env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == f"mloop {__version__}"


def test_entry_point_global_uri_option(seeded: Seeded) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"MLOOP_URI", "MLOOP_ARTIFACT_URI"}}
    proc = _run("--uri", seeded.store_uri, "--artifacts", seeded.artifact_uri, "info", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["store_uri"] == seeded.store_uri
    assert info["sources"]["store_uri"] == "argument"
    assert info["sources"]["artifact_uri"] == "argument"

"""What several commands share: the global options, opening the client, arguments spelled once, name checks.

Every command module imports its shared pieces from here (and printing from :mod:`mloop.cli.output`), never
from another command module, so the command modules do not import each other in a loop. Like the rest of the
CLI, nothing heavy is imported at module level.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mloop.entities import DatasetVersion
    from mloop.tracking.client import Client

__all__ = [
    "FULL_ID_LENGTH",
    "DataNameArg",
    "DataRefArg",
    "Globals",
    "JsonOpt",
    "ModelNameArg",
    "ModelRefArg",
    "VersionArg",
    "data_ref",
    "dataset_name",
    "globals_of",
    "model_name",
    "open_client",
    "private_note",
    "resolve_run",
]

FULL_ID_LENGTH = 32

# arguments and options used by several commands, so each is spelled (and documented) once -------------------
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
DataRefArg = Annotated[
    str, typer.Argument(metavar="REF", help="data:<name>/<version>, data:<name>@<alias> or data:<name> (latest).")
]
DataNameArg = Annotated[str, typer.Argument(metavar="NAME", help="A dataset name (or data:<name>).")]
ModelRefArg = Annotated[
    str, typer.Argument(metavar="REF", help="model:<name>/<version>, model:<name>@<alias> or model:<name> (newest).")
]
ModelNameArg = Annotated[str, typer.Argument(metavar="NAME", help="A model name (or model:<name>).")]
VersionArg = Annotated[int, typer.Argument(metavar="VERSION", min=1, help="The version number.")]


# the workspace the global options select -------------------------------------------------------------------
@dataclass(frozen=True)
class Globals:
    """The root options, passed to :func:`mloop.workspace.open_workspace` (``None`` = resolve as usual)."""

    uri: str | None = None
    artifact_uri: str | None = None


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Globals) else Globals()


@contextmanager
def open_client(ctx: typer.Context) -> Iterator[Client]:
    """A :class:`~mloop.tracking.client.Client` over the workspace the global options select, closed after."""
    from mloop.tracking.client import Client

    g = globals_of(ctx)
    client = Client(g.uri, g.artifact_uri)
    try:
        yield client
    finally:
        client.close()


def resolve_run(client: Client, text: str) -> str:
    """A run id from ``<id>``, ``run:<id>`` or a unique start or end (8+ hex characters) of an id."""
    return client.resolve_run_id(text)


# names and references given on the command line ------------------------------------------------------------
def local_path(text: str | Path) -> Path:
    """A path argument: refused with a usage error (exit 2) when no file system can hold it (NUL, not UTF-8).

    Used as ``parser=`` of path options, so typer never ``stat``s such a value itself (which raises ValueError).
    Typer also passes an option's default through it, which is a ``Path`` already.
    """
    if isinstance(text, Path):
        return text
    try:
        text.encode()
        ok = "\x00" not in text
    except UnicodeEncodeError:
        ok = False
    if not ok:
        raise typer.BadParameter(f"{text!r:.80} holds a NUL byte or text that is not UTF-8; give a plain path.")
    return Path(text)


def _name_only(text: str, kind: str, noun: str, example: str) -> str:
    """The bare name in ``NAME`` or ``<kind>:NAME`` (a version or alias is a mistake here)."""
    from mloop.errors import InvalidInput
    from mloop.refs import parse_ref

    ref = parse_ref(text, default_kind=kind)
    if ref.kind != kind or ref.version is not None or ref.alias is not None:
        hint = f"`{example}` or `{kind}:{example}`"
        raise InvalidInput(f"{text!r} is not a {noun} name; give the name alone, e.g. {hint}.")
    return ref.name


def dataset_name(text: str) -> str:
    """The dataset name in ``NAME`` or ``data:NAME``."""
    return _name_only(text, "data", "dataset", "sensors")


def model_name(text: str) -> str:
    """The model name in ``NAME`` or ``model:NAME``."""
    return _name_only(text, "model", "model", "churn")


def data_ref(text: str) -> str:
    """``text`` with the ``data:`` prefix it may lack (``sensors/3`` -> ``data:sensors/3``)."""
    from mloop.errors import InvalidInput
    from mloop.refs import parse_ref

    ref = parse_ref(text, default_kind="data")
    if ref.kind != "data":
        raise InvalidInput(f"{text!r} is not a dataset reference; use data:<name>/<version> or data:<name>@<alias>.")
    return str(ref)


# notes printed by several commands ---------------------------------------------------------------------------
def private_note(v: DatasetVersion) -> str:
    """What a private holdout is, printed under one (``data show``, ``data split``)."""
    return (
        f"{v.ref} is a private holdout: training code cannot read it (nor its files); only evaluation can, "
        "every read is audited, and a model whose training touched it is never promoted."
    )

"""Arguments and options shared by several commands, so each is spelled (and documented) once."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["DataNameArg", "DataRefArg", "JsonOpt", "ModelNameArg", "ModelRefArg", "VersionArg"]

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

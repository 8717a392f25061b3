"""``mloop data split``: split a table version into NAME-train and a private NAME-holdout.

The command is registered on the ``mloop data`` group by :mod:`mloop.cli.data`; the split itself is
:func:`mloop.datasets.splits.split_dataset`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mloop.cli.common import DataRefArg as RefArg
from mloop.cli.common import JsonOpt, open_client, private_note

__all__ = ["split"]


def split(
    ctx: typer.Context,
    ref: RefArg,
    holdout: Annotated[
        float, typer.Option("--holdout", metavar="FRACTION", help="Share of rows held back, between 0 and 1.")
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Random seed (same seed, same split).")] = 0,
    stratify: Annotated[
        str | None, typer.Option("--stratify", metavar="COLUMN", help="Keep this column's class shares in both.")
    ] = None,
    by_time: Annotated[
        str | None, typer.Option("--by-time", metavar="COLUMN", help="Hold back the latest rows by this column.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Split a table version into NAME-train and a private NAME-holdout.

    Both are new versions linked to the source (lineage). The holdout is private: training code cannot read
    it, only evaluation. The same source, seed and options give the same versions (no duplicates).

    \b
    Examples:
      mloop data split data:sensors/3 --holdout 0.2 --seed 7 --stratify label
      mloop data split data:sensors@latest --holdout 0.1 --by-time timestamp
    """
    from mloop.cli.output import cell, print_json, stdout_console, table
    from mloop.datasets.splits import split_dataset

    with open_client(ctx) as client:
        result = split_dataset(ref, holdout=holdout, seed=seed, stratify=stratify, by_time=by_time, client=client)
    parts = {"train": result.train.info, "holdout": result.holdout.info}
    if as_json:
        print_json(
            {
                "source": result.source.ref,
                "created": result.created,
                **{role: v.to_dict() for role, v in parts.items()},
            }
        )
        return
    console = stdout_console()
    how = f"stratified by {stratify}" if stratify else f"latest by {by_time}" if by_time else "random"
    verb = "Split" if result.created else "Unchanged: this split already exists;"
    console.print(
        cell(
            f"{verb} {result.source.ref} ({result.source.info.rows} rows, {holdout:g} held back, {how}, seed {seed}).",
            "green" if result.created else "yellow",
        )
    )
    table(["part", "ref", "rows", ""],
          [["train", cell(parts["train"].ref, "cyan"), parts["train"].rows, ""],
           ["holdout", cell(parts["holdout"].ref, "cyan"), parts["holdout"].rows, cell("private", "magenta")]],
          show_header=False)  # fmt: skip
    console.print(cell(private_note(parts["holdout"]), "magenta"))

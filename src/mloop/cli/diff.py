"""``mloop data diff``: what changed between two dataset versions (files, rows, schema).

The command is registered on the ``mloop data`` group by :mod:`mloop.cli.data`; the comparison itself is
:func:`mloop.datasets.diff.diff_versions`, over manifests and stored profiles only.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mloop.cli.common import JsonOpt, open_client

__all__ = ["diff"]


def diff(
    ctx: typer.Context,
    ref_a: Annotated[str, typer.Argument(metavar="REF_A", help="The older version, e.g. data:sensors/1.")],
    ref_b: Annotated[str, typer.Argument(metavar="REF_B", help="The newer version, e.g. data:sensors/2.")],
    as_json: JsonOpt = False,
) -> None:
    """Show what changed between two versions: files, and for tables rows and schema.

    Only manifests and stored profiles are compared; no data is downloaded.

    \b
    Examples:
      mloop data diff data:sensors/1 data:sensors/2
      mloop data diff data:sensors@prod data:sensors@latest --json
    """
    from mloop.cli.output import cell, human_size, print_json, stdout_console, table
    from mloop.datasets.dataset import get_dataset
    from mloop.datasets.diff import diff_versions

    with open_client(ctx) as client:
        result = diff_versions(get_dataset(ref_a, client=client), get_dataset(ref_b, client=client))
    as_dict = result.to_dict()
    if as_json:
        print_json(as_dict)
        return
    console = stdout_console()
    console.print(cell(f"{result.a} → {result.b}", "bold"))
    rows: list[list[Any]] = [[cell("+", "green"), e.path, human_size(e.size)] for e in result.added]
    rows += [[cell("-", "red"), e.path, human_size(e.size)] for e in result.removed]
    rows += [[cell("~", "yellow"), x.path, f"{human_size(x.size)} → {human_size(y.size)}"] for x, y in result.changed]
    if rows:
        table(["", "file", "size"], rows)
        console.print(cell(f"{len(result.added)} added, {len(result.removed)} removed, {len(result.changed)} "
                           f"changed, {result.unchanged} unchanged."))  # fmt: skip
    else:
        console.print(cell(f"Same files ({result.unchanged} unchanged).", "dim"))
    a_rows, b_rows = result.rows
    if a_rows is not None or b_rows is not None:
        delta = f" ({b_rows - a_rows:+d})" if a_rows is not None and b_rows is not None else ""
        console.print(cell(f"Rows: {a_rows} → {b_rows}{delta}"))
    if as_dict["schema"] is not None:
        changes = _schema_rows(as_dict["schema"])
        if changes:
            table(["schema", "column"], changes)
        else:
            console.print(cell("Same schema.", "dim"))


def _schema_rows(schema: dict[str, Any]) -> list[list[str]]:
    rows = [["+ added", f"{name} ({kind})"] for name, kind in schema.get("added", [])]
    rows += [["- removed", f"{name} ({kind})"] for name, kind in schema.get("removed", [])]
    rows += [["~ retyped", f"{name} ({a} → {b})"] for name, a, b in schema.get("retyped", [])]
    return rows

"""``mloop score``: batch-score a CSV/Parquet file, folder or dataset version with a registered model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mloop.cli.common import JsonOpt, local_path, open_client

__all__ = ["score"]


@contextmanager
def _row_progress(enabled: bool) -> Iterator[tuple[Callable[[int | None], None], Callable[[int], None]]]:
    """A Rich progress bar over rows on stderr; yields (set_total, advance) callbacks."""
    if not enabled:
        yield (lambda n: None), (lambda n: None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mloop.cli.output import stderr_console

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                   TimeElapsedColumn(), console=stderr_console(), transient=True)  # fmt: skip
    with bar:
        task = bar.add_task("Scoring", total=None)
        yield (lambda n: bar.update(task, total=n)), (lambda n: bar.advance(task, n))


def score(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(metavar="MODEL", help="model:<name>/<version>, model:<name>@<alias> or model:<name>.")
    ],
    source: Annotated[
        str,
        typer.Argument(metavar="INPUT", help="A CSV or Parquet file or folder, or a dataset version data:<name>/<v>."),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="OUTPUT", help="The scores file (.parquet, .pq or .csv).",
                     parser=local_path),
    ],
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", metavar="N", min=1, help="Rows per chunk.")] = 100_000,
    workers: Annotated[int, typer.Option("--workers", "-w", metavar="N", min=1, help="Scoring processes.")] = 1,
    id_column: Annotated[
        str | None,
        typer.Option("--id-column", metavar="COLUMN", help="Keep this input column as the row id (default: row_id, "
                     "the row's position)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", metavar="NAME", help="Register the output as a version of this "
                                 "dataset (default: <model>-scores).")
    ] = None,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="Register the output as a dataset version.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Score a file, folder or dataset version with a registered model, in chunks.

    Memory stays flat whatever the input's size. Each output row keeps a row id and the model version; the
    output appears only when complete, and is registered as a dataset version with lineage to the model and
    (for a dataset-version input) the input.

    \b
    Examples:
      mloop score model:churn@production customers.parquet -o scores.parquet
      mloop score churn/3 data:customers/7 -o scores.csv --workers 4 --id-column customer_id
    """
    from mloop.cli.output import cell, heading, print_json, stdout_console
    from mloop.serving.batch import score_file

    with open_client(ctx) as client, _row_progress(not as_json) as (on_start, advance):
        result = score_file(client, model, source, output, chunk_rows=chunk_rows, workers=workers,
                            id_column=id_column, name=name, register=register, on_start=on_start,
                            progress=advance)  # fmt: skip
    if as_json:
        print_json(result.to_dict())
        return
    rate = result.rows / result.seconds if result.seconds else 0.0
    heading(f"Scored {result.rows} rows of {result.input} with {result.model} in {result.seconds:.1f} s "
            f"({rate:,.0f} rows/s, {result.workers} worker{'s' if result.workers > 1 else ''}).")  # fmt: skip
    stdout_console().print(cell(f"Wrote {result.output}", "green"))
    if result.dataset:
        stdout_console().print(cell(f"Registered as {result.dataset}", "green"))

"""``mloop profile``: throughput, latency and memory of a model's scoring server, and its pod's requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli.common import JsonOpt, open_client

if TYPE_CHECKING:
    from mloop.serving.profile import ProfileLevel

__all__ = ["profile"]


@contextmanager
def _level_progress(enabled: bool, levels: int) -> Iterator[Callable[[ProfileLevel], None]]:
    """A Rich progress bar over the concurrency levels on stderr; yields the per-level callback."""
    if not enabled:
        yield lambda level: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mloop.cli.output import stderr_console

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("levels"),
                   TimeElapsedColumn(), console=stderr_console(), transient=True)  # fmt: skip
    with bar:
        task = bar.add_task("Profiling", total=levels)

        def done(level: ProfileLevel) -> None:
            bar.update(task, advance=1, description=f"Profiling (c={level.concurrency}: "
                                                    f"{level.throughput:,.0f} req/s)")  # fmt: skip

        yield done


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def profile(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(metavar="MODEL_REF", help="model:<name>/<version>, model:<name>@<alias> or model:<name>.")
    ],
    concurrency: Annotated[
        str, typer.Option("--concurrency", "-c", metavar="LIST", help="Concurrent connections per level, rising.")
    ] = "1,2,4,8,16,32",
    duration: Annotated[
        float, typer.Option("--duration", "-d", metavar="SECONDS", help="Recorded seconds per level.")
    ] = 5.0,
    warmup: Annotated[
        float, typer.Option("--warmup", metavar="SECONDS", help="Unrecorded seconds before each level.")
    ] = 1.0,
    rows: Annotated[
        int | None, typer.Option("--rows", metavar="N", help="Rows of the input example per request (default: all).")
    ] = None,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Record the recommended requests as tags on the version.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Profile a model's scoring server at rising concurrency and record the pod's CPU/memory requests.

    Starts `mloop serve MODEL_REF` on a free loopback port, drives POST /predict with the model's stored input
    example at each concurrency level, and reports throughput, p50/p99 latency, errors, the server's CPU and
    its peak memory. Records the tags mloop.profile.cpu_request (CPU at the knee of the curve),
    mloop.profile.memory_request (peak RSS + 25%) and mloop.profile.results (the figures as JSON) on the model
    version; `mloop package --kubernetes` uses them as resource requests.

    \b
    Examples:
      mloop profile model:churn@production
      mloop profile churn/3 --concurrency 1,4,16 --duration 10 --json
    """
    from mloop.serving.profile import parse_concurrency, profile_model

    levels = parse_concurrency(concurrency)
    with open_client(ctx) as client, _level_progress(not as_json, len(levels)) as on_level:
        report = profile_model(client, model, concurrency=levels, duration=duration, warmup=warmup, rows=rows,
                               record=record, on_level=on_level)  # fmt: skip
    if as_json:
        from mloop.cli.output import print_json

        print_json(report.to_dict())
        return
    _print(report)


def _print(report: Any) -> None:
    from mloop.cli.output import cell, heading, stdout_console, table

    heading(f"Profile of {report.ref}: {report.rows} row(s) a request, {report.duration:g} s a level")
    rows = []
    for lv in report.levels:
        mark = " (knee)" if lv.concurrency == report.knee else ""
        rows.append([f"{lv.concurrency}{mark}", f"{lv.throughput:,.0f}", _ms(lv.p50_ms), _ms(lv.p99_ms),
                     str(lv.errors), f"{lv.server_cpu:.2f}", f"{lv.peak_rss / 2**20:,.0f} MiB"])  # fmt: skip
    table(["concurrency", "req/s", "p50 ms", "p99 ms", "errors", "server CPU", "peak RSS"], rows)
    requests = f"Recommended requests: cpu {report.cpu_request}, memory {report.memory_request}"
    if report.tags:
        stdout_console().print(cell(f"{requests} (recorded as tags on {report.ref})", "green"))
    else:
        stdout_console().print(cell(f"{requests} (not recorded: --no-record)"))

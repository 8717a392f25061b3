"""``mloop gc``: purge deleted runs and free the artifact bytes nothing references any more."""

from __future__ import annotations

from typing import Annotated

import typer

from mloop.cli.common import JsonOpt, open_client

__all__ = ["gc"]


def gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be removed; change nothing.")] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            metavar="SECONDS",
            min=0,
            help="Keep unreferenced blobs younger than this (uploads in flight may need them).",
        ),
    ] = 3600.0,
    keep_deleted_runs: Annotated[
        bool, typer.Option("--keep-deleted-runs", help="Do not purge deleted runs; only free unreferenced blobs.")
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Re-hash every kept blob and remove corrupt ones (slow: reads all).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Purge deleted runs and free unused blobs.

    Deleted runs are removed for good, then artifact blobs no run references any more (and older than
    --grace) are deleted. --dry-run reports what would go.

    \b
    Examples:
      mloop gc --dry-run
      mloop gc --grace 0
    """
    from dataclasses import asdict

    from mloop.cli.output import cell, human_size, print_json, stdout_console
    from mloop.tracking.gc import collect_garbage

    with open_client(ctx) as client:
        report = collect_garbage(
            client, dry_run=dry_run, grace_s=grace, purge_runs=not keep_deleted_runs, verify=verify
        )
    if as_json:
        print_json(asdict(report))
        return
    console = stdout_console()
    verb = ("Would purge", "would remove", "would free") if dry_run else ("Purged", "removed", "freed")
    line = (
        f"{verb[0]} {len(report.purged_runs)} deleted run(s), {verb[1]} {report.blobs_removed} blob(s), "
        f"{verb[2]} {human_size(report.bytes_freed)}"
    )
    if report.temp_bytes_freed:
        line += f" (+ {human_size(report.temp_bytes_freed)} of stale uploads)"
    console.print(cell(line + ".", "bold"))
    for run_id in report.purged_runs:
        console.print(cell(f"  run:{run_id}"))
    for digest in report.corrupt:
        console.print(cell(f"  corrupt blob {'would be ' if dry_run else ''}removed: {digest}", "red"))
    console.print(cell(f"{report.blobs_kept} blob(s) kept (referenced, or younger than {grace:g}s).", "dim"))
    if dry_run:
        console.print("Nothing was changed; run without --dry-run to do it.")

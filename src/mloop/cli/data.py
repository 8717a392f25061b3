"""``mloop data``: add dataset versions, list and inspect them, diff, fetch, alias, split and delete them.

REF arguments accept ``data:<name>/<version>``, ``data:<name>@<alias>`` and ``data:<name>`` (the latest
version); the ``data:`` prefix may be left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli.common import DataNameArg as NameArg
from mloop.cli.common import DataRefArg as RefArg
from mloop.cli.common import JsonOpt, data_ref, dataset_name, local_path, open_client, private_note
from mloop.cli.data_get import get
from mloop.cli.data_unprotect import unprotect
from mloop.cli.diff import diff
from mloop.cli.splits import split

if TYPE_CHECKING:
    from mloop.entities import DatasetVersion
    from mloop.entities.profile import TableProfile

__all__ = ["app"]

app = typer.Typer(
    help="Datasets: add versions, list, show, diff, get, alias, split, delete, unprotect.", no_args_is_help=True
)


# helpers ---------------------------------------------------------------------------------------------------
def _kind(v: DatasetVersion) -> str:
    return f"table ({v.format})" if v.kind == "table" and v.format else v.kind


@contextmanager
def _byte_progress(
    description: str, total: int | None, *, enabled: bool
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """A Rich progress bar over bytes on stderr; yields (advance, set_total) callbacks (thread-safe)."""
    if not enabled:  # --json: no bar, and no Rich progress machinery to import
        yield (lambda n: None), (lambda n: None)
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from mloop.cli.output import stderr_console

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
        transient=True,
        disable=not enabled,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield (lambda n: bar.advance(task, n)), (lambda n: bar.update(task, total=n))


def _stat(value: Any) -> str | None:
    from mloop.cli.output import format_number

    if value is None or isinstance(value, str):
        return value
    return str(value) if isinstance(value, int) else format_number(value)


def _profile_rows(profile: TableProfile) -> list[list[Any]]:
    """One row per column: name, type, missing, then min/mean/max (numbers, dates) or the top categories."""
    rows = []
    for col in profile.columns:
        missing = f"{col.missing} ({col.missing_fraction:.0%})" if col.missing else "0"
        top = ", ".join(f"{value} ({n})" for value, n in col.top[:5])
        if col.cardinality is not None and col.cardinality > len(col.top[:5]):
            top += f" … {'~' if col.approximate else ''}{col.cardinality} distinct"
        rows.append([col.name, col.type, missing, _stat(col.min), _stat(col.mean), _stat(col.max), top])
    return rows


# commands --------------------------------------------------------------------------------------------------
@app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="PATH", help="A file or a folder to snapshot.", parser=local_path)],
    name: Annotated[str, typer.Option("--name", "-n", metavar="NAME", help="The dataset it becomes a version of.")],
    message: Annotated[str, typer.Option("--message", "-m", metavar="TEXT", help="What this version is.")] = "",
    link: Annotated[
        bool,
        typer.Option(
            "--link",
            help="Hard-link files into a local store instead of copying; makes them read-only "
            "(`mloop data unprotect` before editing them).",
        ),
    ] = False,
    fsync: Annotated[
        bool,
        typer.Option("--fsync", help="Flush new files to disk before recording the version (survives a power cut)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Snapshot a file or folder as a new dataset version.

    Files are stored content-addressed (each distinct file once, whatever the version). Files the stat cache
    has seen unchanged (same inode, size and modification time) are not read again, so re-adding a large
    folder costs only a scan. A CSV, Parquet or JSON-lines table also gets a schema, a row count and a column
    profile. Adding content identical to an existing version creates nothing and names that version. Large
    files are cloned where the file system can (Btrfs, XFS), otherwise copied; --link hard-links them instead.

    \b
    Examples:
      mloop data add data/sensors --name sensors -m "October dump"
      mloop data add churn.csv --name churn --json
    """
    from mloop.cli.output import cell, human_size, print_json, stdout_console
    from mloop.datasets.dataset import Dataset

    with open_client(ctx) as client, _byte_progress(f"Adding {path}", None, enabled=not as_json) as (advance, size):
        result = Dataset.add(
            path, name, message=message, client=client, progress=advance, on_start=size, link=link,
            fsync=True if fsync else None,
        )  # fmt: skip
    info, stats = result.dataset.info, result.stats
    if as_json:
        print_json(
            {
                **info.to_dict(),
                "created": result.created,
                "seconds": result.seconds,
                "hashed_files": stats.hashed_files,
                "hashed_bytes": stats.hashed_bytes,
                "stored_as": stats.stored_as,
            }
        )
        return
    console = stdout_console()
    if not result.created:
        console.print(cell(f"Unchanged: identical to {info.ref}; no new version.", "yellow"))
        return
    rate = stats.hashed_bytes / 1e6 / result.seconds if result.seconds > 0 else 0.0
    console.print(
        cell(
            f"Created {info.ref} ({info.file_count} files, {human_size(info.total_size)}, "
            f"{human_size(stats.hashed_bytes)} hashed and {stats.stored_as} in {result.seconds:.2f} s, "
            f"{rate:.1f} MB/s)",
            "green",
        )
    )
    if info.kind == "table":
        console.print(cell(f"Table: {info.rows} rows ({info.format}). `mloop data show {info.ref}` shows its profile."))
    if stats.stored_as == "linked":
        note = f"Linked files are now read-only; run `mloop data unprotect {path}` before editing them."
        console.print(cell(note, "dim"))


@app.command("list")
def list_datasets(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List datasets: name, latest version, number of versions."""
    from mloop.cli.output import cell, format_time, print_json, table
    from mloop.datasets.versions import list_datasets as all_datasets

    with open_client(ctx) as client:
        found = all_datasets(client)
    if as_json:
        print_json([d.to_dict() for d in found])
        return
    table(
        ["name", "latest", "versions", "created"],
        [[cell(d.name, "cyan"), d.latest_version, d.version_count, format_time(d.created_at)] for d in found],
        caption=f"{len(found)} dataset(s)." if found else "No datasets yet: `mloop data add PATH --name NAME`.",
    )


@app.command("versions")
def versions(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """List the versions of a dataset, newest first."""
    from mloop.cli.output import cell, format_time, human_size, print_json, table
    from mloop.datasets.versions import list_dataset_versions

    dataset = dataset_name(name)
    with open_client(ctx) as client:
        found = list_dataset_versions(client, dataset)
    if as_json:
        print_json([v.to_dict() for v in found])
        return
    table(["version", "created", "files", "size", "kind", "rows", "aliases", "private", "message"],
          [[cell(v.version, "cyan"), format_time(v.created_at), v.file_count, human_size(v.total_size), _kind(v),
            v.rows, ", ".join(v.aliases), cell("private", "magenta") if v.private else "", v.message]
           for v in found],
          caption=f"{len(found)} version(s) of {dataset}. `mloop data show data:{dataset}/N` for one.",
          no_wrap=["version", "created"])  # fmt: skip


@app.command("show")
def show(
    ctx: typer.Context,
    ref: RefArg,
    max_files: Annotated[int, typer.Option("--files", metavar="N", min=0, help="List at most N files.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Show a dataset version: its details, files, and for tables the schema and column profile.

    Nothing is downloaded: files and profiles come from the metadata store.

    \b
    Examples:
      mloop data show data:sensors/3
      mloop data show data:sensors@prod --json
    """
    from mloop.cli.output import cell, format_time, human_size, print_json, short_digest, stdout_console, table
    from mloop.datasets.dataset import get_dataset

    with open_client(ctx) as client:
        ds = get_dataset(ref, client=client)
        files, profile = ds.files(), ds.profile()
    v = ds.info
    shown = files[:max_files]
    if as_json:
        print_json(
            {
                **v.to_dict(),
                "files": [e.to_dict() for e in shown],
                "files_shown": len(shown),
                "profile": None if profile is None else profile.to_dict(),
            }
        )
        return
    console = stdout_console()
    console.print(cell(f"Dataset version {v.ref}", "bold"))
    table(["attribute", "value"], [
        ["created", f"{format_time(v.created_at)} by {v.actor}"],
        ["message", v.message or "-"],
        ["kind", _kind(v)],
        ["rows", v.rows],
        ["files", f"{v.file_count} ({human_size(v.total_size)})"],
        ["aliases", ", ".join(v.aliases) or "-"],
        ["private", cell("yes: holdout", "magenta") if v.private else "no"],
        ["source", f"{v.source} ({v.role})" if v.source else "-"],
        ["manifest", v.manifest_digest],
    ], no_wrap=["attribute"])  # fmt: skip
    if v.private:
        console.print(cell(private_note(v), "magenta"))
    if shown:
        more = f"Showing {len(shown)} of {len(files)} files; --files N for more." if len(shown) < len(files) else None
        table(
            ["file", "size", "digest"],
            [[e.path, human_size(e.size), short_digest(e.digest)] for e in shown],
            caption=more or f"{len(files)} file(s).",
            no_wrap=["digest"],
        )
    if profile is not None:
        table(
            ["column", "type", "missing", "min", "mean", "max", "top values"],
            _profile_rows(profile),
            title=f"Profile ({profile.rows} rows, {len(profile.columns)} columns)",
            no_wrap=["column"],
        )


app.command("diff")(diff)


app.command("get")(get)


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[int, typer.Argument(metavar="VERSION", min=1, help="The version the alias points at.")],
    alias_: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. prod, baseline (not `latest`).")],
) -> None:
    """Point an alias at a version (moving it if it exists).

    Then use data:NAME@ALIAS wherever a REF is accepted. `latest` is computed and cannot be set.

    \b
    Example:
      mloop data alias sensors 3 prod
    """
    from mloop.cli.output import cell, stdout_console
    from mloop.datasets.versions import set_dataset_alias

    dataset = dataset_name(name)
    with open_client(ctx) as client:
        v = set_dataset_alias(client, dataset, version, alias_)
    stdout_console().print(cell(f"data:{dataset}@{alias_} → {v.ref}", "green"))


@app.command("delete")
def delete(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="data:<name>/<version> (or an alias of one).")],
    force: Annotated[bool, typer.Option("--force", help="Delete even if a registered model depends on it.")] = False,
) -> None:
    """Delete a dataset version.

    Refused (exit 5) when a registered model was made from it, unless --force. The files stay in the artifact
    store until `mloop gc` finds nothing else (other versions, runs) references them.
    """
    from mloop.cli.output import cell, stdout_console
    from mloop.datasets.lineage import delete_dataset_version

    with open_client(ctx) as client:
        deleted = delete_dataset_version(client, data_ref(ref), force=force)
    console = stdout_console()
    console.print(cell(f"Deleted {deleted}.", "green"))
    console.print("Its bytes stay until `mloop gc` frees what nothing else references.")


app.command("split")(split)
app.command("unprotect")(unprotect)

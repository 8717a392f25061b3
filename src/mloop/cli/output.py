"""Printing for the CLI: Rich tables for people, plain JSON for programs, and errors to exit codes.

Rich is imported inside the functions so that importing the CLI (and ``mloop --help``) stays fast. Values
that come from users (run names, params, paths) are printed as plain :class:`rich.text.Text`, never as markup.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from mloop.errors import MloopError

__all__ = [
    "STATUS_STYLES",
    "cell",
    "format_number",
    "format_time",
    "heading",
    "human_duration",
    "human_size",
    "jsonable",
    "print_json",
    "report_error",
    "short_digest",
    "short_id",
    "stderr_console",
    "stdout_console",
    "table",
]

_PIPE_WIDTH = 160
STATUS_STYLES = {"FINISHED": "green", "FAILED": "red", "RUNNING": "yellow", "KILLED": "magenta"}


def stdout_console() -> Console:
    """Rich console on stdout; when it is not a terminal (a pipe, a file) lines are not cut at 80 columns."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def report_error(exc: MloopError) -> int:
    """Print ``error: <message>`` in red to stderr and return the exit code of the error's class."""
    from rich.text import Text

    from mloop.cli.exit_codes import exit_code

    stderr_console().print(Text(f"error: {exc}", style="red"), soft_wrap=True)
    return exit_code(exc)


# JSON ------------------------------------------------------------------------------------------------------
NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.

    Standard JSON has no spelling for them; ``null`` would make them look like missing values.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else NON_FINITE[repr(float(value))]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout, with nothing else around it."""
    sys.stdout.write(json.dumps(jsonable(value), indent=2, default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


# formatting ------------------------------------------------------------------------------------------------
def short_id(run_id: str) -> str:
    """The last 8 characters of a run id: ids start with their creation time, so the tail is what differs."""
    return run_id[-8:]


def short_digest(digest: str) -> str:
    algorithm, sep, hexdigest = digest.partition(":")
    return f"{algorithm}:{hexdigest[:12]}" if sep else digest[:12]


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_time(ms: int | None) -> str:
    from datetime import datetime

    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def format_number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


# tables ------------------------------------------------------------------------------------------------------
def heading(text: str) -> None:
    """A bold line above a table (a table's own title would wrap to the table's width)."""
    stdout_console().print(cell(text, "bold"), soft_wrap=True)


def cell(value: object, style: str = "") -> RenderableType:
    """A table cell showing ``value`` literally (no markup), optionally styled."""
    from rich.text import Text

    return Text("-" if value is None else str(value), style=style)


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    title: str | None = None,
    caption: str | None = None,
    no_wrap: Sequence[str] = (),
    show_header: bool = True,
) -> None:
    """Print a Rich table; cells that are not renderables are shown literally."""
    from rich import box
    from rich.table import Table

    grid = Table(
        title=title,
        caption=caption,
        header_style="bold",
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        show_header=show_header,
    )
    for name in columns:
        grid.add_column(name, no_wrap=name in no_wrap, overflow="fold")
    for row in rows:
        grid.add_row(*(v if hasattr(v, "__rich_console__") else cell(v) for v in row))
    stdout_console().print(grid)

"""Table formats and the files that make up a table.

The format is told by the suffix (``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson``; CSV, TSV
and JSON lines may also end in ``.gz``, ``.bz2`` or ``.zst``). A folder is one table made of its visible
table files (names starting with ``.`` or ``_`` are skipped, like Spark's ``_SUCCESS``; with an explicit
``format=`` every visible file counts as that format) in sorted path order. Reading them is
:mod:`mloop.datasets.tables`'s job.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from mloop.errors import InvalidInput, NotFound

__all__ = [
    "FORMATS",
    "TableFormat",
    "TableSource",
    "candidate_format",
    "table_files",
    "table_format",
    "visible_files",
]

TableFormat = Literal["csv", "parquet", "jsonl"]
TableSource = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

FORMATS: tuple[TableFormat, ...] = ("csv", "parquet", "jsonl")
_SUFFIXES: dict[str, TableFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_COMPRESSED = (".gz", ".bz2", ".zst")


def table_format(path: str | os.PathLike[str]) -> TableFormat | None:
    """The table format told by ``path``'s suffix, or None when it is not a table file."""
    name = Path(path).name.lower()
    for comp in _COMPRESSED:
        if name.endswith(comp):
            fmt = _SUFFIXES.get(Path(name[: -len(comp)]).suffix)
            return fmt if fmt in ("csv", "jsonl") else None
    return _SUFFIXES.get(Path(name).suffix)


def _hidden(relpath: str | os.PathLike[str]) -> bool:
    return any(part.startswith((".", "_")) for part in Path(relpath).parts)


def candidate_format(root: str | os.PathLike[str], files: Sequence[str]) -> TableFormat | None:
    """The one table format that every visible file's suffix names, else None (the first other file ends the
    check). Only names are looked at: cheap enough to run before importing pyarrow for every new version."""
    base = Path(root)
    if base.is_file():
        return table_format(base)
    found: TableFormat | None = None
    for rel in files:
        if _hidden(rel):
            continue
        fmt = table_format(rel)
        if fmt is None or (found is not None and fmt != found):
            return None
        found = fmt
    return found


def visible_files(root: str | os.PathLike[str], files: Sequence[str]) -> list[Path]:
    """``root / f`` for the ``files`` (paths relative to ``root``) that belong to a table: none of their path
    parts starts with ``.`` or ``_`` (``.DS_Store``, ``_SUCCESS``, ``.ipynb_checkpoints/``); sorted."""
    base = Path(root)
    return [base / f for f in sorted(files) if not _hidden(f)]


def _check_format(format: str | None) -> TableFormat | None:
    if format is None or format in FORMATS:
        return format
    raise InvalidInput(f"Unknown table format {format!r}; use one of {', '.join(FORMATS)}.")


def table_files(source: TableSource, format: str | None = None) -> tuple[list[Path], TableFormat]:
    """The files that make up a table (a file, a folder or a list of files) and their common format."""
    fmt = _check_format(format)
    entries = [source] if isinstance(source, str | os.PathLike) else list(source)
    if not entries:
        raise InvalidInput("No table files were given; pass a file, a folder or a non-empty list of files.")
    files: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            inside = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not _hidden(p.relative_to(path)) and (fmt is not None or table_format(p))
            )
            if not inside:
                raise InvalidInput(
                    f"Folder '{path}' holds no table files (.csv, .tsv, .parquet, .pq, .jsonl, .ndjson); "
                    "add some or point at the files themselves."
                )
            files.extend(inside)
        elif path.is_file():
            if not _hidden(path.name):  # _SUCCESS, _metadata, .DS_Store are never part of a table
                files.append(path)
        else:
            raise NotFound(f"Table file or folder '{path}' does not exist; check the path.")
    if not files:
        raise InvalidInput(f"No table files among {[str(e) for e in entries][:5]}: their names start with '.' or '_'.")
    if fmt is not None:
        return files, fmt
    found: dict[TableFormat, Path] = {}
    for f in files:
        f_fmt = table_format(f)
        if f_fmt is None:
            raise InvalidInput(
                f"Cannot tell the table format of '{f}' from its suffix; rename it or pass format= one of "
                f"{', '.join(FORMATS)}."
            )
        found.setdefault(f_fmt, f)
    if len(found) > 1:
        listed = ", ".join(f"{k} ('{v}')" for k, v in found.items())
        raise InvalidInput(f"The table files mix formats: {listed}. Keep one format per dataset.")
    return files, next(iter(found))

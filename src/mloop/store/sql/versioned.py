"""Versioned names with aliases: the SQL that datasets and models share (pipelines and endpoints will too).

A *family* is a table of names (``datasets``, ``models``), a table of their numbered versions and a table of
aliases pointing at versions. This module finds a name, resolves ``<name>/<n>``, ``<name>@<alias>`` and
``<name>`` (the newest; ``@latest`` too), reads the aliases of many versions at once, and pages through a
name's versions newest first. Each family supplies its tables and the wording of its "not found" hints, so
every noun gives the same kind of message with its own commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, select

from mloop.entities import encode_cursor
from mloop.errors import NotFound
from mloop.store.sql.dialect import chunks
from mloop.store.sql.inputs import VERSION_COLUMN_MAX, cursor_field

__all__ = ["RESERVED_ALIASES", "Family", "PageOf"]

RESERVED_ALIASES = ("latest",)


@dataclass(frozen=True)
class PageOf:
    rows: list[Any]
    next_cursor: str | None


@dataclass(frozen=True)
class Family:
    """One versioned noun's tables and hints (``{name}``, ``{version}``, ``{alias}``, ``{latest}`` are filled)."""

    noun: str  # "Dataset", "Model"
    names: Table
    versions: Table
    aliases: Table
    parent: str  # the versions' and aliases' column naming their name row: "dataset_id", "model_id"
    no_name: str  # "List datasets with `mloop data list`."
    no_version: str  # "List versions with `mloop data versions {name}`."
    no_alias: str  # "Set one with `mloop data alias {name} VERSION {alias}`."
    empty: str  # "Add one with `mloop data add PATH --name {name}`."

    def name_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(self.names).where(self.names.c.name == name)).first()
        if row is None:
            raise NotFound(f"No {self.noun.lower()} named {name!r}. {self.no_name}")
        return row

    def latest(self, conn: Connection, parent_id: str) -> int | None:
        v = self.versions
        return conn.execute(select(func.max(v.c.version)).where(v.c[self.parent] == parent_id)).scalar()

    def resolve_row(self, conn: Connection, name: str, version: int | None, alias: str | None) -> Any:
        """The version row of ``name``: by number, by alias, or the newest (NotFound naming what exists)."""
        owner = self.name_row(conn, name)
        v = self.versions
        q = select(v).where(v.c[self.parent] == owner.id)
        if version is not None:  # a number no version column can hold does not exist
            row = conn.execute(q.where(v.c.version == version)).first() if version <= VERSION_COLUMN_MAX else None
            if row is None:
                latest = self.latest(conn, owner.id)
                raise NotFound(
                    f"{self.noun} {name!r} has no version {version}; latest is {latest}. "
                    + self.no_version.format(name=name)
                )
            return row
        if alias is not None and alias not in RESERVED_ALIASES:
            a = self.aliases
            vid = conn.execute(select(a.c.version_id).where(a.c[self.parent] == owner.id, a.c.alias == alias)).scalar()
            row = None if vid is None else conn.execute(q.where(v.c.id == vid)).first()
            if row is None:
                raise NotFound(
                    f"{self.noun} {name!r} has no alias {alias!r}. " + self.no_alias.format(name=name, alias=alias)
                )
            return row
        row = conn.execute(q.order_by(v.c.version.desc()).limit(1)).first()
        if row is None:
            raise NotFound(f"{self.noun} {name!r} has no versions {self.empty.format(name=name)}")
        return row

    def aliases_of(self, conn: Connection, version_ids: Sequence[str]) -> dict[str, list[str]]:
        """Aliases of each version id (ids without aliases are left out)."""
        out: dict[str, list[str]] = {}
        a = self.aliases
        for part in chunks(list(version_ids)):
            for r in conn.execute(select(a.c.version_id, a.c.alias).where(a.c.version_id.in_(part))):
                out.setdefault(r.version_id, []).append(r.alias)
        return out

    def page_of_versions(self, conn: Connection, name: str, cursor: str | None, limit: int) -> PageOf:
        """Up to ``limit`` version rows of ``name``, newest first, after ``cursor``."""
        owner = self.name_row(conn, name)
        v = self.versions
        q = select(v).where(v.c[self.parent] == owner.id).order_by(v.c.version.desc()).limit(limit + 1)
        if cursor is not None:
            q = q.where(v.c.version < cursor_field(cursor, "before", int))
        rows = list(conn.execute(q).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return PageOf(rows, encode_cursor({"before": int(rows[-1].version)}) if more else None)

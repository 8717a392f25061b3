"""Datasets and their versions in the SQL store."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from mloop.entities import (
    Dataset,
    DatasetVersion,
    ManifestEntry,
    Page,
    encode_cursor,
    new_id,
    now_ms,
)
from mloop.errors import Conflict, InvalidInput
from mloop.refs import parse_ref
from mloop.store.protocols.datasets import DatasetEvents
from mloop.store.sql import schema as t
from mloop.store.sql.dialect import chunks, insert_stmt
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import check_path, checked, cursor_field
from mloop.store.sql.versioned import RESERVED_ALIASES, Family

__all__ = ["DatasetsMixin"]

_V = t.dataset_versions


def _version(row: Any, name: str, aliases: Sequence[str] = ()) -> DatasetVersion:
    return DatasetVersion(
        id=row.id, dataset_id=row.dataset_id, name=name, version=int(row.version),
        manifest_digest=row.manifest_digest, file_count=int(row.file_count), total_size=int(row.total_size),
        created_at=int(row.created_at), actor=row.actor, message=row.message, kind=row.kind, format=row.format,
        rows=None if row.rows is None else int(row.rows), private=bool(row.private), source=row.source,
        role=row.role, meta=json.loads(row.meta), aliases=tuple(sorted(aliases)),
    )  # fmt: skip


DATASETS = Family(
    noun="Dataset", names=t.datasets, versions=_V, aliases=t.dataset_aliases, parent="dataset_id",
    no_name="List datasets with `mloop data list`.", no_version="List versions with `mloop data versions {name}`.",
    no_alias="Set one with `mloop data alias {name} VERSION {alias}`.",
    empty="left. Add one with `mloop data add PATH --name {name}`.",
)  # fmt: skip


def _dataset_row(conn: Connection, name: str) -> Any:
    return DATASETS.name_row(conn, name)


def _aliases(conn: Connection, version_ids: Sequence[str]) -> dict[str, list[str]]:
    return DATASETS.aliases_of(conn, version_ids)


def _resolve(conn: Connection, name: str, version: int | None, alias: str | None) -> DatasetVersion:
    row = DATASETS.resolve_row(conn, name, version, alias)
    return _version(row, name, _aliases(conn, [row.id]).get(row.id, []))


class DatasetsMixin:
    engine: Engine

    @checked("name", "manifest_digest", "actor", "message", "kind", "format", "rows", "source", "role")
    def create_dataset_version(
        self, name: str, *, files: Sequence[ManifestEntry], manifest_digest: str, actor: str, message: str = "",
        kind: str = "files", format: str | None = None, rows: int | None = None, private: bool = False,
        source: str | None = None, role: str | None = None, meta: Mapping[str, Any] | None = None,
        profile: str | None = None
    ) -> tuple[DatasetVersion, bool]:  # fmt: skip
        parse_ref(f"data:{name}")  # validates the name
        for f in files:
            check_path("file path", f.path)
        for _ in range(20):
            try:
                return run_in_transaction(
                    self.engine,
                    lambda conn: self._create_version(
                        conn, name, files, manifest_digest, actor, message, kind, format, rows, private, source,
                        role, dict(meta or {}), profile,
                    ),
                )  # fmt: skip
            except SAIntegrityError:
                continue  # a concurrent add took the number or the same content: look again
        raise Conflict(f"Could not create a version of dataset {name!r} under heavy contention; try again.")

    def _create_version(
        self, conn: Connection, name: str, files: Sequence[ManifestEntry], manifest_digest: str, actor: str,
        message: str, kind: str, format: str | None, rows: int | None, private: bool, source: str | None,
        role: str | None, meta: dict[str, Any], profile: str | None,
    ) -> tuple[DatasetVersion, bool]:  # fmt: skip
        ds = conn.execute(select(t.datasets).where(t.datasets.c.name == name)).first()
        if ds is None:
            ds_id = new_id()
            conn.execute(t.datasets.insert().values(id=ds_id, name=name, created_at=now_ms(), last_version=0))
        else:
            ds_id = ds.id
            same = conn.execute(
                select(_V).where(_V.c.dataset_id == ds_id, _V.c.manifest_digest == manifest_digest)
            ).first()
            if same is not None:
                return _version(same, name, _aliases(conn, [same.id]).get(same.id, [])), False
        last = conn.execute(select(t.datasets.c.last_version).where(t.datasets.c.id == ds_id)).scalar_one()
        bumped = conn.execute(
            update(t.datasets)
            .where(t.datasets.c.id == ds_id, t.datasets.c.last_version == last)
            .values(last_version=last + 1)
        )
        if bumped.rowcount != 1:  # a concurrent add took this number; the caller retries
            raise SAIntegrityError("version number taken", None, Exception("concurrent version"))
        values = {
            "id": new_id(), "dataset_id": ds_id, "version": last + 1, "manifest_digest": manifest_digest,
            "file_count": len(files), "total_size": sum(f.size for f in files), "created_at": now_ms(),
            "actor": actor, "message": message, "kind": kind, "format": format, "rows": rows, "private": private,
            "source": source, "role": role, "meta": json.dumps(meta, sort_keys=True), "profile": profile,
        }  # fmt: skip
        conn.execute(_V.insert().values(**values))
        rows_ = [{"version_id": values["id"], "path": f.path, "size": f.size, "digest": f.digest} for f in files]
        for part in chunks(rows_, 5000):
            conn.execute(t.dataset_files.insert(), list(part))
        row = conn.execute(select(_V).where(_V.c.id == values["id"])).one()
        created = _version(row, name)
        write_event(
            conn, DatasetEvents.VERSION_CREATED, created.ref, actor=actor,
            payload={"files": created.file_count, "bytes": created.total_size, "manifest": manifest_digest,
                     "private": private, "source": source},
        )  # fmt: skip
        return created, True

    @checked("name", "version", "alias")
    def get_dataset_version(self, name: str, version: int | None = None, alias: str | None = None) -> DatasetVersion:
        return run_in_transaction(self.engine, lambda c: _resolve(c, name, version, alias), write=False)

    @checked("name", "version")
    def get_dataset_profile(self, name: str, version: int) -> str | None:
        def read(conn: Connection) -> str | None:
            v = _resolve(conn, name, version, None)
            return conn.execute(select(_V.c.profile).where(_V.c.id == v.id)).scalar()

        return run_in_transaction(self.engine, read, write=False)

    @checked("limit")
    def list_datasets(self, *, cursor: str | None = None, limit: int = 100) -> Page[Dataset]:
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}.")
        d = t.datasets
        stats = (
            select(_V.c.dataset_id, func.max(_V.c.version).label("latest"), func.count().label("n"))
            .group_by(_V.c.dataset_id)
            .subquery()
        )
        q = (
            select(d, stats.c.latest, stats.c.n)
            .outerjoin(stats, stats.c.dataset_id == d.c.id)
            .order_by(d.c.name)
            .limit(limit + 1)
        )
        if cursor is not None:
            q = q.where(d.c.name > cursor_field(cursor, "name", str))
        rows = run_in_transaction(self.engine, lambda c: c.execute(q).all(), write=False)
        items = [
            Dataset(r.id, r.name, int(r.created_at), None if r.latest is None else int(r.latest), int(r.n or 0))
            for r in rows[:limit]
        ]
        more = len(rows) > limit
        return Page(items, encode_cursor({"name": items[-1].name}) if more else None)

    @checked("name", "limit")
    def list_dataset_versions(self, name: str, *, cursor: str | None = None, limit: int = 100) -> Page[DatasetVersion]:
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}.")

        def read(conn: Connection) -> Page[DatasetVersion]:
            page = DATASETS.page_of_versions(conn, name, cursor, limit)
            aliases = _aliases(conn, [r.id for r in page.rows])
            return Page([_version(r, name, aliases.get(r.id, [])) for r in page.rows], page.next_cursor)

        return run_in_transaction(self.engine, read, write=False)

    @checked("name", "version")
    def list_dataset_files(self, name: str, version: int) -> list[ManifestEntry]:
        def read(conn: Connection) -> list[ManifestEntry]:
            v = _resolve(conn, name, version, None)
            f = t.dataset_files
            q = select(f.c.path, f.c.size, f.c.digest).where(f.c.version_id == v.id).order_by(f.c.path)
            return [ManifestEntry(r.path, int(r.size), r.digest) for r in conn.execute(q)]

        return run_in_transaction(self.engine, read, write=False)

    @checked("name", "alias", "version", "actor")
    def set_dataset_alias(self, name: str, alias: str, version: int, *, actor: str) -> DatasetVersion:
        parse_ref(f"data:{name}@{alias}")
        if alias in RESERVED_ALIASES:
            raise InvalidInput(f"{alias!r} is computed (the newest version) and cannot be set; pick another alias.")

        def move(conn: Connection) -> DatasetVersion:
            v = _resolve(conn, name, version, None)
            a = t.dataset_aliases
            previous = conn.execute(select(a.c.version_id).where(a.c.dataset_id == v.dataset_id, a.c.alias == alias))
            before = previous.scalar()
            stmt = insert_stmt(conn, a).values(dataset_id=v.dataset_id, alias=alias, version_id=v.id)
            conn.execute(stmt.on_conflict_do_update(index_elements=["dataset_id", "alias"], set_={"version_id": v.id}))
            write_event(
                conn, DatasetEvents.ALIAS_MOVED, f"data:{name}@{alias}", actor=actor,
                payload={"version": version, "previous_version_id": before},
            )  # fmt: skip
            return _resolve(conn, name, version, None)

        return run_in_transaction(self.engine, move)

    @checked("name", "version", "actor")
    def delete_dataset_version(self, name: str, version: int, *, actor: str) -> DatasetVersion:
        def remove(conn: Connection) -> DatasetVersion:
            v = _resolve(conn, name, version, None)
            conn.execute(delete(t.dataset_aliases).where(t.dataset_aliases.c.version_id == v.id))
            conn.execute(delete(t.dataset_files).where(t.dataset_files.c.version_id == v.id))
            conn.execute(delete(_V).where(_V.c.id == v.id))
            write_event(
                conn, DatasetEvents.VERSION_DELETED, v.ref, actor=actor, payload={"manifest": v.manifest_digest}
            )
            return v

        return run_in_transaction(self.engine, remove)

    def dataset_digests(self, conn: Connection) -> set[str]:
        """Digests dataset versions reference: their files and their manifests."""
        files = {r[0] for r in conn.execute(select(t.dataset_files.c.digest).distinct())}
        return files | {r[0] for r in conn.execute(select(_V.c.manifest_digest).distinct())}

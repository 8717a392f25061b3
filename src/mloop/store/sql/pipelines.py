"""Published pipelines in the SQL store: numbered, immutable versions (one per distinct definition) and aliases."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from mloop.entities import (
    ManifestEntry,
    Page,
    PipelineParam,
    PipelineVersion,
    PublishedPipeline,
    encode_cursor,
    new_id,
    now_ms,
)
from mloop.errors import Conflict, InvalidInput
from mloop.refs import parse_ref
from mloop.store.protocols.pipelines import PipelineEvents
from mloop.store.sql import schema as t
from mloop.store.sql.dialect import chunks, insert_stmt
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import check_path, checked, cursor_field
from mloop.store.sql.versioned import RESERVED_ALIASES, Family

__all__ = ["PIPELINES", "PipelinesMixin"]

_V = t.pipeline_versions
_F = t.pipeline_files

PIPELINES = Family(
    noun="Pipeline", names=t.pipelines, versions=_V, aliases=t.pipeline_aliases, parent="pipeline_id",
    no_name="List published pipelines with `mloop pipelines published`; publish one with "
            "`mloop pipelines publish FILE:NAME`.",
    no_version="List versions with `mloop pipelines versions {name}`.",
    no_alias="Set one with `mloop pipelines alias {name} VERSION {alias}`.",
    empty="yet. Publish one with `mloop pipelines publish FILE:NAME`.",
)  # fmt: skip


def _versions(conn: Connection, rows: Sequence[Any], name: str) -> list[PipelineVersion]:
    ids = [r.id for r in rows]
    files: dict[str, list[ManifestEntry]] = {i: [] for i in ids}
    for part in chunks(ids):
        for r in conn.execute(select(_F).where(_F.c.version_id.in_(part)).order_by(_F.c.path)):
            files[r.version_id].append(ManifestEntry(r.path, int(r.size), r.digest))
    aliases = PIPELINES.aliases_of(conn, ids)
    return [
        PipelineVersion(
            id=r.id, pipeline_id=r.pipeline_id, name=name, version=int(r.version), digest=r.digest,
            code_digest=r.code_digest, file=r.file, variable=r.variable, source=r.source,
            created_at=int(r.created_at), actor=r.actor, description=r.description,
            params=tuple(PipelineParam(**p) for p in json.loads(r.params)), steps=tuple(json.loads(r.steps)),
            files=tuple(files[r.id]), aliases=tuple(sorted(aliases.get(r.id, []))),
        )
        for r in rows
    ]  # fmt: skip


def _resolve(conn: Connection, name: str, version: int | None, alias: str | None) -> PipelineVersion:
    return _versions(conn, [PIPELINES.resolve_row(conn, name, version, alias)], name)[0]


class PipelinesMixin:
    engine: Engine

    @checked("name", "digest", "code_digest", "file", "variable", "actor", "source", "steps", "description")
    def create_pipeline_version(
        self, name: str, *, digest: str, code_digest: str, file: str, variable: str, files: Sequence[ManifestEntry],
        actor: str, source: str = "", params: Sequence[PipelineParam] = (), steps: Sequence[str] = (),
        description: str = "",
    ) -> tuple[PipelineVersion, bool]:  # fmt: skip
        parse_ref(f"pipeline:{name}")  # validates the name
        if not files:
            raise InvalidInput(
                f"A pipeline version needs at least one file (its pipeline file); got none for {name!r}."
            )
        check_path("pipeline file", file)
        for f in files:
            check_path("file path", f.path)
        params_text = json.dumps([p.to_dict() for p in params])
        steps_text = json.dumps(list(steps))

        def create(conn: Connection) -> tuple[PipelineVersion, bool]:
            p = conn.execute(select(t.pipelines).where(t.pipelines.c.name == name)).first()
            pid = p.id if p is not None else new_id()
            if p is None:
                conn.execute(t.pipelines.insert().values(id=pid, name=name, created_at=now_ms()))
            else:
                same = conn.execute(select(_V).where(_V.c.pipeline_id == pid, _V.c.digest == digest)).first()
                if same is not None:
                    return _versions(conn, [same], name)[0], False
            latest = conn.execute(select(func.max(_V.c.version)).where(_V.c.pipeline_id == pid)).scalar()
            vid = new_id()
            conn.execute(_V.insert().values(
                id=vid, pipeline_id=pid, version=(latest or 0) + 1, digest=digest, code_digest=code_digest,
                file=file, variable=variable, source=source, params=params_text, steps=steps_text,
                created_at=now_ms(), actor=actor, description=description,
            ))  # fmt: skip
            conn.execute(_F.insert(), [{"version_id": vid, "path": f.path, "size": f.size, "digest": f.digest}
                                       for f in files])  # fmt: skip
            pv = _versions(conn, [conn.execute(select(_V).where(_V.c.id == vid)).one()], name)[0]
            write_event(conn, PipelineEvents.VERSION_PUBLISHED, pv.ref, actor=actor,
                        payload={"digest": digest, "code_digest": code_digest, "source": source})  # fmt: skip
            return pv, True

        for _ in range(20):
            try:
                return run_in_transaction(self.engine, create)
            except SAIntegrityError:  # a concurrent publish took the number or the same definition: look again
                continue
        raise Conflict(f"Could not publish a version of pipeline {name!r} under heavy contention; try again.")

    @checked("name", "version", "alias")
    def get_pipeline_version(self, name: str, version: int | None = None, alias: str | None = None) -> PipelineVersion:
        return run_in_transaction(self.engine, lambda c: _resolve(c, name, version, alias), write=False)

    @checked("limit")
    def list_pipelines(self, *, cursor: str | None = None, limit: int = 100) -> Page[PublishedPipeline]:
        p = t.pipelines
        stats = select(_V.c.pipeline_id, func.max(_V.c.version).label("latest"), func.count().label("n"))
        sub = stats.group_by(_V.c.pipeline_id).subquery()
        q = select(p, sub.c.latest, sub.c.n).outerjoin(sub, sub.c.pipeline_id == p.c.id).order_by(p.c.name)
        q = q.limit(limit + 1)
        if cursor is not None:
            q = q.where(p.c.name > cursor_field(cursor, "name", str))
        rows = run_in_transaction(self.engine, lambda c: c.execute(q).all(), write=False)
        items = [PublishedPipeline(r.id, r.name, int(r.created_at), None if r.latest is None else int(r.latest),
                                   int(r.n or 0)) for r in rows[:limit]]  # fmt: skip
        return Page(items, encode_cursor({"name": items[-1].name}) if len(rows) > limit else None)

    @checked("name", "limit")
    def list_pipeline_versions(
        self, name: str, *, cursor: str | None = None, limit: int = 100
    ) -> Page[PipelineVersion]:
        def read(conn: Connection) -> Page[PipelineVersion]:
            page = PIPELINES.page_of_versions(conn, name, cursor, limit)
            return Page(_versions(conn, page.rows, name), page.next_cursor)

        return run_in_transaction(self.engine, read, write=False)

    @checked("name", "alias", "version", "actor")
    def set_pipeline_alias(self, name: str, alias: str, version: int, *, actor: str) -> PipelineVersion:
        parse_ref(f"pipeline:{name}@{alias}")
        if alias in RESERVED_ALIASES:
            raise InvalidInput(f"{alias!r} is computed (the newest version) and cannot be set; pick another alias.")

        def move(conn: Connection) -> PipelineVersion:
            v = _resolve(conn, name, version, None)
            a = t.pipeline_aliases
            before = conn.execute(
                select(_V.c.version).join(a, a.c.version_id == _V.c.id)
                .where(a.c.pipeline_id == v.pipeline_id, a.c.alias == alias)
            ).scalar()  # fmt: skip
            values = {"version_id": v.id, "updated_at": now_ms(), "actor": actor}
            stmt = insert_stmt(conn, a).values(pipeline_id=v.pipeline_id, alias=alias, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["pipeline_id", "alias"], set_=values))
            write_event(conn, PipelineEvents.ALIAS_MOVED, f"pipeline:{name}@{alias}", actor=actor,
                        payload={"version": version, "previous": before})  # fmt: skip
            return _resolve(conn, name, version, None)

        return run_in_transaction(self.engine, move)

    def pipeline_digests(self, conn: Connection) -> set[str]:
        """Blobs published pipeline snapshots hold (kept by ``mloop gc``)."""
        return {r[0] for r in conn.execute(select(_F.c.digest).distinct())}

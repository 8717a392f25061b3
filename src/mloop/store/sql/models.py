"""Registered models, versions and aliases in the SQL store. Aliases move by compare-and-swap."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from mloop.entities import Model, ModelFile, ModelVersion, Page, encode_cursor, new_id, now_ms
from mloop.errors import Conflict, InvalidInput
from mloop.refs import parse_ref
from mloop.store.protocols.models import ModelEvents
from mloop.store.sql import schema as t
from mloop.store.sql.dialect import chunks
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import check_path, checked, cursor_field
from mloop.store.sql.versioned import Family

__all__ = ["ANY", "ModelsMixin"]

ANY = "any"  # expected_version for an unconditional alias move
_V = t.model_versions
_A = t.model_aliases


MODELS = Family(
    noun="Model", names=t.models, versions=_V, aliases=_A, parent="model_id",
    no_name="List models with `mloop models list`.", no_version="List versions with `mloop models versions {name}`.",
    no_alias="Promote a version with `mloop models promote {name} VERSION --to {alias}`.", empty="yet.",
)  # fmt: skip


def _model_row(conn: Connection, name: str) -> Any:
    return MODELS.name_row(conn, name)


def _version_of(conn: Connection, version_id: str | None) -> int | None:
    if version_id is None:
        return None
    return conn.execute(select(_V.c.version).where(_V.c.id == version_id)).scalar()


def _versions(conn: Connection, rows: Sequence[Any], name: str) -> list[ModelVersion]:
    ids = [r.id for r in rows]
    files: dict[str, list[ModelFile]] = {i: [] for i in ids}
    aliases: dict[str, list[str]] = {i: [] for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    for part in chunks(ids):
        f = t.model_files
        for r in conn.execute(select(f).where(f.c.version_id.in_(part)).order_by(f.c.path)):
            files[r.version_id].append(ModelFile(r.path, int(r.size), r.digest))
        for r in conn.execute(select(_A.c.version_id, _A.c.alias).where(_A.c.version_id.in_(part))):
            aliases[r.version_id].append(r.alias)
        g = t.model_version_tags
        for r in conn.execute(select(g).where(g.c.version_id.in_(part)).order_by(g.c.key)):
            tags[r.version_id][r.key] = r.value
    return [
        ModelVersion(
            id=r.id,
            model_id=r.model_id,
            name=name,
            version=int(r.version),
            flavor=r.flavor,
            created_at=int(r.created_at),
            actor=r.actor,
            files=tuple(files[r.id]),
            run_id=r.run_id,
            source=r.source,
            signature=None if r.signature is None else json.loads(r.signature),
            input_example=r.input_example,
            environment=json.loads(r.environment),
            params=json.loads(r.params),
            metrics=json.loads(r.metrics),
            datasets=tuple(json.loads(r.datasets)),
            code_commit=r.code_commit,
            target=r.target,
            description=r.description,
            status=r.status,
            aliases=tuple(sorted(aliases[r.id])),
            tags=tags[r.id],
        )
        for r in rows
    ]


def resolve_model_version(conn: Connection, name: str, version: int | None, alias: str | None) -> ModelVersion:
    return _versions(conn, [MODELS.resolve_row(conn, name, version, alias)], name)[0]


class ModelsMixin:
    engine: Engine

    @checked("name", "flavor", "actor", "run_id", "source", "input_example", "code_commit", "target", "description")
    def create_model_version(
        self, name: str, *, flavor: str, files: Sequence[ModelFile], actor: str, run_id: str | None = None,
        source: str = "", signature: Mapping[str, Any] | None = None, input_example: str | None = None,
        environment: Mapping[str, Any] | None = None, params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None, datasets: Sequence[str] = (), code_commit: str | None = None,
        target: str | None = None, description: str = ""
    ) -> ModelVersion:  # fmt: skip
        parse_ref(f"model:{name}")
        if not files:
            raise InvalidInput(f"A model version needs at least one file; got none for {name!r}.")
        for f in files:
            check_path("file path", f.path)

        def create(conn: Connection) -> ModelVersion:
            model = conn.execute(select(t.models).where(t.models.c.name == name)).first()
            model_id = model.id if model is not None else new_id()
            if model is None:
                conn.execute(t.models.insert().values(id=model_id, name=name, created_at=now_ms()))
            latest = conn.execute(select(func.max(_V.c.version)).where(_V.c.model_id == model_id)).scalar()
            vid = new_id()
            conn.execute(
                _V.insert().values(
                    id=vid, model_id=model_id, version=(latest or 0) + 1, flavor=flavor, created_at=now_ms(),
                    actor=actor, run_id=run_id, source=source,
                    signature=None if signature is None else json.dumps(signature, sort_keys=True),
                    input_example=input_example, environment=json.dumps(environment or {}, sort_keys=True),
                    params=json.dumps(dict(params or {}), sort_keys=True),
                    metrics=json.dumps(dict(metrics or {}), sort_keys=True), datasets=json.dumps(list(datasets)),
                    code_commit=code_commit, target=target, description=description, status="active",
                )
            )  # fmt: skip
            conn.execute(
                t.model_files.insert(),
                [{"version_id": vid, "path": f.path, "size": f.size, "digest": f.digest} for f in files],
            )
            mv = _versions(conn, [conn.execute(select(_V).where(_V.c.id == vid)).one()], name)[0]
            write_event(conn, ModelEvents.VERSION_REGISTERED, mv.ref, actor=actor,
                        payload={"run": run_id, "flavor": flavor, "source": source})  # fmt: skip
            return mv

        for _ in range(20):
            try:
                return run_in_transaction(self.engine, create)
            except SAIntegrityError:  # a concurrent registration took the number (or created the model): retry
                continue
        raise Conflict(f"Could not register a version of {name!r} under heavy contention; try again.")

    @checked("name", "version", "alias")
    def get_model_version(self, name: str, version: int | None = None, alias: str | None = None) -> ModelVersion:
        return run_in_transaction(self.engine, lambda c: resolve_model_version(c, name, version, alias), write=False)

    @checked("limit")
    def list_models(self, *, cursor: str | None = None, limit: int = 100) -> Page[Model]:
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}.")
        m = t.models
        stats = select(_V.c.model_id, func.max(_V.c.version).label("latest"), func.count().label("n"))
        sub = stats.group_by(_V.c.model_id).subquery()
        q = select(m, sub.c.latest, sub.c.n).outerjoin(sub, sub.c.model_id == m.c.id).order_by(m.c.name)
        q = q.limit(limit + 1)
        if cursor is not None:
            q = q.where(m.c.name > cursor_field(cursor, "name", str))

        def read(conn: Connection) -> list[Model]:
            rows = conn.execute(q).all()
            out = []
            for r in rows:
                aliases = conn.execute(
                    select(_A.c.alias, _V.c.version).join(_V, _V.c.id == _A.c.version_id).where(_A.c.model_id == r.id)
                )
                out.append(
                    Model(r.id, r.name, int(r.created_at), None if r.latest is None else int(r.latest),
                          int(r.n or 0), {a.alias: int(a.version) for a in aliases})
                )  # fmt: skip
            return out

        items = run_in_transaction(self.engine, read, write=False)
        more = len(items) > limit
        items = items[:limit]
        return Page(items, encode_cursor({"name": items[-1].name}) if more else None)

    @checked("name", "limit")
    def list_model_versions(self, name: str, *, cursor: str | None = None, limit: int = 100) -> Page[ModelVersion]:
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}.")

        def read(conn: Connection) -> Page[ModelVersion]:
            page = MODELS.page_of_versions(conn, name, cursor, limit)
            return Page(_versions(conn, page.rows, name), page.next_cursor)

        return run_in_transaction(self.engine, read, write=False)

    @checked("name", "alias", "version", "expected", "actor", "reason", "detail")
    def move_model_alias(
        self, name: str, alias: str, version: int | None, *, expected: int | str | None = ANY, actor: str,
        reason: str = "promote", detail: Mapping[str, Any] | None = None,
    ) -> ModelVersion | None:  # fmt: skip
        """Point ``alias`` at ``version`` (``None`` removes it) if it still points at ``expected``.

        ``expected`` is the version the caller saw (``None``: no holder); a mismatch raises :class:`Conflict`, so
        two promotions racing for one alias cannot both win. The one ``model.alias_moved`` event carries
        ``reason`` and ``detail`` (e.g. the gate report of a promotion).
        """
        parse_ref(f"model:{name}@{alias}")
        if alias == "latest":
            raise InvalidInput("'latest' is computed (the newest version) and cannot be moved; pick another alias.")

        def move(conn: Connection) -> ModelVersion | None:
            model = _model_row(conn, name)
            current_id = conn.execute(
                select(_A.c.version_id).where(_A.c.model_id == model.id, _A.c.alias == alias)
            ).scalar()
            current = _version_of(conn, current_id)
            if expected not in (ANY, current):
                raise Conflict(
                    f"Alias {name}@{alias} moved to version {current} while this change expected {expected}; "
                    "someone else promoted first. Check `mloop models show` and retry."
                )
            target = None if version is None else resolve_model_version(conn, name, version, None)
            if target is not None and target.status == "archived":
                raise Conflict(f"{target.ref} is archived; it cannot receive alias {alias!r}.")
            now = now_ms()
            if target is None:
                conn.execute(_A.delete().where(_A.c.model_id == model.id, _A.c.alias == alias))
            elif current_id is None:
                conn.execute(_A.insert().values(model_id=model.id, alias=alias, version_id=target.id,
                                                updated_at=now, actor=actor))  # fmt: skip
            else:
                done = conn.execute(
                    update(_A)
                    .where(_A.c.model_id == model.id, _A.c.alias == alias, _A.c.version_id == current_id)
                    .values(version_id=target.id, updated_at=now, actor=actor)
                )
                if done.rowcount != 1:
                    raise Conflict(f"Alias {name}@{alias} changed concurrently; retry.")
            conn.execute(
                t.model_alias_history.insert().values(
                    model_id=model.id, alias=alias, version_id=None if target is None else target.id,
                    previous_version_id=current_id, actor=actor, at=now, reason=reason,
                )
            )  # fmt: skip
            payload = {**(detail or {}), "version": version, "previous": current, "reason": reason}
            write_event(conn, ModelEvents.ALIAS_MOVED, f"model:{name}@{alias}", actor=actor, payload=payload)
            return None if target is None else resolve_model_version(conn, name, target.version, None)

        try:
            return run_in_transaction(self.engine, move)
        except SAIntegrityError as exc:  # another promotion inserted the alias first
            raise Conflict(
                f"Alias {name}@{alias} was set by a concurrent promotion; check `mloop models show {name}` and retry."
            ) from exc

    @checked("name", "alias")
    def model_alias_history(self, name: str, alias: str) -> list[dict[str, Any]]:
        """Moves of an alias, oldest first: version, previous version, actor, time, reason."""
        h = t.model_alias_history

        def read(conn: Connection) -> list[dict[str, Any]]:
            model = _model_row(conn, name)
            rows = conn.execute(select(h).where(h.c.model_id == model.id, h.c.alias == alias).order_by(h.c.id))
            return [
                {"version": _version_of(conn, r.version_id), "previous": _version_of(conn, r.previous_version_id),
                 "actor": r.actor, "at": int(r.at), "reason": r.reason}
                for r in rows.all()
            ]  # fmt: skip

        return run_in_transaction(self.engine, read, write=False)

    @checked("name", "version", "status", "actor")
    def set_model_version_status(self, name: str, version: int, status: str, *, actor: str) -> ModelVersion:
        if status not in {"active", "archived"}:
            raise InvalidInput(f"Model version status must be 'active' or 'archived', got {status!r}.")

        def change(conn: Connection) -> ModelVersion:
            mv = resolve_model_version(conn, name, version, None)
            if status == "archived" and mv.aliases:
                raise Conflict(f"{mv.ref} holds alias(es) {', '.join(mv.aliases)}; move them before archiving it.")
            conn.execute(update(_V).where(_V.c.id == mv.id).values(status=status))
            if status == "archived":
                write_event(conn, ModelEvents.VERSION_ARCHIVED, mv.ref, actor=actor)
            return resolve_model_version(conn, name, version, None)

        return run_in_transaction(self.engine, change)

    @checked("name", "version", "tags", "actor")
    def set_model_version_tags(self, name: str, version: int, tags: Mapping[str, str], *, actor: str) -> ModelVersion:
        items = dict(tags)
        for key, value in items.items():
            if not isinstance(key, str) or not key or len(key) > 250:
                raise InvalidInput(f"Invalid model version tag key {key!r}: use a non-empty text of at most 250 "
                                   "characters, e.g. 'mloop.profile.cpu_request'.")  # fmt: skip
            if not isinstance(value, str):
                raise InvalidInput(f"Model version tag {key!r} has the value {value!r} ({type(value).__name__}); "
                                   "tag values are text: pass str(value) or JSON.")  # fmt: skip
        g = t.model_version_tags

        def change(conn: Connection) -> ModelVersion:
            mv = resolve_model_version(conn, name, version, None)
            if items:
                conn.execute(g.delete().where(g.c.version_id == mv.id, g.c.key.in_(list(items))))
                conn.execute(g.insert(), [{"version_id": mv.id, "key": k, "value": v} for k, v in items.items()])
            write_event(conn, ModelEvents.VERSION_TAGGED, mv.ref, actor=actor, payload={"keys": sorted(items)})
            return resolve_model_version(conn, name, version, None)

        return run_in_transaction(self.engine, change)

    def model_digests(self, conn: Connection) -> set[str]:
        files = {r[0] for r in conn.execute(select(t.model_files.c.digest).distinct())}
        examples = {r[0] for r in conn.execute(select(_V.c.input_example).where(_V.c.input_example.is_not(None)))}
        reports = {
            r[0]
            for r in conn.execute(
                select(t.evaluations.c.report_digest).where(t.evaluations.c.report_digest.is_not(None))
            )
        }
        return files | examples | reports

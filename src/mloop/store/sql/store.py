"""``SqlStore``: the metadata store on SQLite (default, WAL) or PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import EllipsisType
from typing import Any

from sqlalchemy import Connection, select, update

from mloop.entities import ArtifactEntry
from mloop.errors import Conflict, NotFound
from mloop.store.protocols.artifacts import ArtifactEvents
from mloop.store.protocols.settings import SettingEvents
from mloop.store.sql import schema as t
from mloop.store.sql.automations import AutomationsMixin
from mloop.store.sql.datasets import DatasetsMixin
from mloop.store.sql.dialect import insert_ignore, insert_stmt
from mloop.store.sql.endpoints import EndpointsMixin
from mloop.store.sql.engine import make_engine, migrate, run_in_transaction
from mloop.store.sql.evaluations import EvaluationsMixin
from mloop.store.sql.events import EventsMixin, write_event
from mloop.store.sql.experiments import ExperimentsMixin
from mloop.store.sql.holdouts import HoldoutsMixin
from mloop.store.sql.inputs import check_length, check_path, checked
from mloop.store.sql.lineage import LineageMixin
from mloop.store.sql.models import ModelsMixin
from mloop.store.sql.monitors import MonitorsMixin
from mloop.store.sql.pipelines import PipelinesMixin
from mloop.store.sql.runs import RunsMixin, _run_row
from mloop.store.sql.schedules import SchedulesMixin
from mloop.store.sql.search import SearchMixin
from mloop.store.sql.steps import StepRunsMixin

__all__ = ["SqlStore"]


class SqlStore(
    ExperimentsMixin,
    RunsMixin,
    SearchMixin,
    EventsMixin,
    DatasetsMixin,
    HoldoutsMixin,
    LineageMixin,
    ModelsMixin,
    EvaluationsMixin,
    PipelinesMixin,
    SchedulesMixin,
    StepRunsMixin,
    EndpointsMixin,
    MonitorsMixin,
    AutomationsMixin,
):
    """Open (and migrate to the current schema) the database at ``uri``."""

    def __init__(self, uri: str, *, migrate_schema: bool = True) -> None:
        self._uri = uri
        self._statements = {}  # built search statements, per arguments (see SearchMixin)
        self.engine = make_engine(uri)
        if migrate_schema:
            migrate(self.engine)

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"SqlStore({self.engine.url.render_as_string(hide_password=True)!r})"

    # settings -----------------------------------------------------------------------------------
    @checked("key")
    def get_setting(self, key: str) -> str | None:
        row = run_in_transaction(
            self.engine,
            lambda c: c.execute(select(t.settings.c.value).where(t.settings.c.key == key)).first(),
            write=False,
        )
        return None if row is None else str(row[0])

    @checked("key", "value", "actor", "event", "subject", "payload")
    def set_setting(
        self, key: str, value: str, *, actor: str, event: str = SettingEvents.CHANGED, subject: str | None = None,
        payload: Mapping[str, Any] | None = None, expected: str | EllipsisType | None = ...
    ) -> None:  # fmt: skip
        check_length("setting key", key, t.SETTING_KEY_LENGTH)

        def write(conn: Connection) -> None:
            stmt = insert_stmt(conn, t.settings).values(key=key, value=value)
            if expected is ...:
                conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))
            else:  # compare-and-set: one conditional statement, atomic on SQLite and PostgreSQL alike
                s = t.settings
                cas = (
                    stmt.on_conflict_do_nothing(index_elements=["key"])
                    if expected is None
                    else update(s).where(s.c.key == key, s.c.value == expected).values(value=value)
                )
                if conn.execute(cas.returning(s.c.key)).first() is None:  # (rowcount is -1 for psycopg's upserts)
                    raise Conflict(f"Setting {key!r} was changed by another writer since it was read; read it again "
                                   "and retry.")  # fmt: skip
            write_event(conn, event, subject or f"setting:{key}", actor=actor,
                        payload={"key": key} if payload is None else payload)  # fmt: skip

        run_in_transaction(self.engine, write)

    # environments -------------------------------------------------------------------------------
    @checked("digest")
    def put_environment(self, digest: str, body: Mapping[str, Any]) -> None:
        row = {"digest": digest, "body": json.dumps(body, sort_keys=True)}
        run_in_transaction(self.engine, lambda c: insert_ignore(c, t.environments, [row], ("digest",)))

    @checked("digest")
    def get_environment(self, digest: str) -> dict[str, Any]:
        row = run_in_transaction(
            self.engine,
            lambda c: c.execute(select(t.environments.c.body).where(t.environments.c.digest == digest)).first(),
            write=False,
        )
        if row is None:
            raise NotFound(f"No environment recorded with digest {digest!r}.")
        body: dict[str, Any] = json.loads(row[0])
        return body

    # artifact references ------------------------------------------------------------------------
    @checked("run_id", "actor")
    def record_artifacts(self, run_id: str, entries: Sequence[ArtifactEntry], *, actor: str) -> None:
        if not entries:
            return
        for e in entries:
            check_path("artifact path", e.path)

        def write(conn: Connection) -> None:
            _run_row(conn, run_id)
            stmt = insert_stmt(conn, t.artifacts)
            stmt = stmt.on_conflict_do_update(
                index_elements=["run_id", "path"],
                set_={
                    "digest": stmt.excluded.digest,
                    "size": stmt.excluded.size,
                    "created_at": stmt.excluded.created_at,
                },
            )
            conn.execute(
                stmt,
                [
                    {
                        "run_id": run_id,
                        "path": e.path,
                        "digest": e.digest,
                        "size": e.size,
                        "created_at": e.created_at,
                    }
                    for e in entries
                ],
            )
            write_event(
                conn,
                ArtifactEvents.LOGGED,
                f"run:{run_id}",
                actor=actor,
                payload={"paths": [e.path for e in entries]},
            )

        run_in_transaction(self.engine, write)

    @checked("run_id")
    def list_artifacts(self, run_id: str) -> list[ArtifactEntry]:
        a = t.artifacts

        def read(conn: Connection) -> list[ArtifactEntry]:
            _run_row(conn, run_id)
            q = select(a).where(a.c.run_id == run_id).order_by(a.c.path)
            return [ArtifactEntry(r.path, r.digest, int(r.size), int(r.created_at)) for r in conn.execute(q)]

        return run_in_transaction(self.engine, read, write=False)

    def referenced_digests(self) -> set[str]:
        q = select(t.artifacts.c.digest).distinct()

        def read(conn: Connection) -> set[str]:
            found = {r[0] for r in conn.execute(q)} | self.dataset_digests(conn) | self.model_digests(conn)
            return found | self.pipeline_digests(conn)

        return run_in_transaction(self.engine, read, write=False)

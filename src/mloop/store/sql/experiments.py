"""Experiments in the SQL store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from mloop.entities import Experiment, Page, encode_cursor, new_id, now_ms
from mloop.errors import AlreadyExists, InvalidInput, NotFound
from mloop.store.protocols.experiments import ExperimentEvents
from mloop.store.sql import schema as t
from mloop.store.sql.engine import run_in_transaction
from mloop.store.sql.events import write_event
from mloop.store.sql.inputs import checked, cursor_field, validate_name

__all__ = ["ExperimentsMixin", "validate_name"]


def _experiment(row: Any) -> Experiment:
    return Experiment(row.id, row.name, int(row.created_at), bool(row.deleted))


class ExperimentsMixin:
    engine: Engine

    @checked("name", "actor")
    def create_experiment(self, name: str, *, actor: str) -> Experiment:
        name = validate_name("experiment", name)

        def create(conn: Connection) -> Experiment:
            exp = Experiment(new_id(), name, now_ms())
            conn.execute(t.experiments.insert().values(id=exp.id, name=name, created_at=exp.created_at))
            write_event(conn, ExperimentEvents.CREATED, f"experiment:{name}", actor=actor, payload={"id": exp.id})
            return exp

        try:
            return run_in_transaction(self.engine, create)
        except SAIntegrityError as exc:
            raise AlreadyExists(
                f"Experiment {name!r} already exists. Use it (start_run(experiment={name!r})) or pick another name."
            ) from exc

    @checked("experiment_id")
    def get_experiment(self, experiment_id: str) -> Experiment:
        row = run_in_transaction(
            self.engine,
            lambda c: c.execute(select(t.experiments).where(t.experiments.c.id == experiment_id)).first(),
            write=False,
        )
        if row is None:
            raise NotFound(f"No experiment with id {experiment_id!r}. List them with `mloop experiments list`.")
        return _experiment(row)

    @checked("name")
    def get_experiment_by_name(self, name: str) -> Experiment:
        row = run_in_transaction(
            self.engine,
            lambda c: c.execute(select(t.experiments).where(t.experiments.c.name == name)).first(),
            write=False,
        )
        if row is None:
            raise NotFound(f"No experiment named {name!r}. List them with `mloop experiments list`.")
        return _experiment(row)

    @checked("name", "actor")
    def get_or_create_experiment(self, name: str, *, actor: str) -> Experiment:
        try:
            return self.get_experiment_by_name(name)
        except NotFound:
            pass
        try:
            return self.create_experiment(name, actor=actor)
        except AlreadyExists:  # created by a concurrent caller
            return self.get_experiment_by_name(name)

    @checked("limit")
    def list_experiments(self, *, cursor: str | None = None, limit: int = 100) -> Page[Experiment]:
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}.")
        q = select(t.experiments).order_by(t.experiments.c.name).limit(limit + 1)
        if cursor is not None:
            q = q.where(t.experiments.c.name > cursor_field(cursor, "name", str))
        rows = run_in_transaction(self.engine, lambda c: c.execute(q).all(), write=False)
        items = [_experiment(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor({"name": items[-1].name}) if more else None)

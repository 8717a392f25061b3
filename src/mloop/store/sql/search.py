"""Run search: the filter language of :mod:`mloop.store.query` compiled to indexed SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Text, and_, false, func, literal_column, or_, select, true

from mloop.entities import Page, RunRecord, encode_cursor
from mloop.errors import InvalidInput
from mloop.store.query import And, Comparison, Field, Node, Or, parse_filter, parse_order_by
from mloop.store.sql import schema as t
from mloop.store.sql.engine import driver_connection, run_in_transaction
from mloop.store.sql.inputs import checked, cursor_field
from mloop.store.sql.runs import RunRow, hydrate_runs

__all__ = ["SearchMixin", "compile_filter"]

_ATTR_COLUMNS = {
    "run_id": t.runs.c.id,
    "name": t.runs.c.name,
    "status": t.runs.c.status,
    "start_time": t.runs.c.start_time,
    "end_time": t.runs.c.end_time,
    "experiment_id": t.runs.c.experiment_id,
    "actor": t.runs.c.actor,
    "parent_id": t.runs.c.parent_id,
}
_KV_TABLES = {"metrics": t.latest_metrics, "params": t.params, "tags": t.tags}
_PREFIX = t.VALUE_INDEX_PREFIX
_WILDCARDS = ("%", "_", "\\")  # a backslash escapes in PostgreSQL's LIKE, not in SQLite's: the prefix ends there


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "in":
        return column.in_(list(value))  # type: ignore[no-any-return]
    if op == "not in":
        return column.not_in(list(value))  # type: ignore[no-any-return]
    if op == "like":
        return column.like(value)  # type: ignore[no-any-return]
    if op == "ilike":
        return column.ilike(value)  # type: ignore[no-any-return]
    ops = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    return ops[op](value)  # type: ignore[no-any-return]


def _text_conditions(column: Any, op: str, value: Any) -> list[ColumnElement[bool]]:
    """A param or tag comparison, with a condition on the indexed value prefix where one follows from it.

    Params and tags are indexed on (key, value_prefix(value)) (see :mod:`mloop.store.sql.schema`), so equality
    and IN compare the prefix (an index search on both databases). A value shorter than the prefix is the whole
    value; a longer one also compares the rest as ``substr(value, 201)``, never as ``value = ?``: SQLite would
    propagate that constant into the prefix expression and no longer match the index. LIKE with a literal start
    also bounds the prefix (PostgreSQL searches the index with it where the collation allows).
    """
    prefix = t.value_prefix(column)
    if op == "in" and len(set(value)) == 1:  # SQLite turns x IN (?) into x = ?
        op, value = "=", value[0]
    if op == "=":
        if len(value) < _PREFIX:
            return [prefix == value]
        rest = func.substr(column, literal_column(str(_PREFIX + 1)), type_=Text)
        return [prefix == value[:_PREFIX], rest == value[_PREFIX:]]
    if op == "in":
        conditions: list[ColumnElement[bool]] = [prefix.in_(sorted({v[:_PREFIX] for v in value}))]
        if any(len(v) >= _PREFIX for v in value):
            conditions.append(column.in_(list(value)))  # two values or more: SQLite propagates no constant
        return conditions
    conditions = [_compare(column, op, value)]
    if op == "like":
        start = min((i for i in map(value.find, _WILDCARDS) if i >= 0), default=len(value))
        if start <= _PREFIX and value == value[:start] + "%":  # 'text%' with text inside the prefix: it says all
            return [prefix.like(value)]
        if 0 < start < len(value):  # a literal start, then a wildcard
            conditions.insert(0, prefix.like(value[: min(start, _PREFIX)] + "%"))
    return conditions


def _comparison(cmp: Comparison) -> ColumnElement[bool]:
    field = cmp.field
    if field.entity == "attributes":
        value: Any = cmp.value
        if field.key in {"start_time", "end_time"}:
            value = tuple(int(v) for v in value) if isinstance(value, tuple) else int(value)
        elif field.key == "status":
            value = tuple(str(v).upper() for v in value) if isinstance(value, tuple) else str(value).upper()
        return _compare(_ATTR_COLUMNS[field.key], cmp.op, value)
    table = _KV_TABLES[field.entity]
    if field.entity == "metrics":
        conditions = [_compare(table.c.value, cmp.op, cmp.value)]
    else:
        conditions = _text_conditions(table.c.value, cmp.op, cmp.value)
    sub = select(table.c.run_id).where(table.c.key == field.key, *conditions)
    return t.runs.c.id.in_(sub)


def compile_filter(node: Node | None) -> ColumnElement[bool]:
    if node is None:
        return true()
    if isinstance(node, Comparison):
        return _comparison(node)
    parts = [compile_filter(n) for n in node.items]
    if isinstance(node, And):
        return and_(*parts)
    if isinstance(node, Or):
        return or_(*parts)
    raise TypeError(node)  # pragma: no cover


def _order_column(field: Field, joins: list[Any]) -> Any:
    if field.entity == "attributes":
        return _ATTR_COLUMNS[field.key]
    table = _KV_TABLES[field.entity].alias(f"o{len(joins)}")
    joins.append((table, and_(table.c.run_id == t.runs.c.id, table.c.key == field.key)))
    return table.c.value


_STATEMENT_CACHE = 256


class SearchMixin:
    engine: Engine
    _statements: dict[tuple[Any, ...], tuple[Any, int, bool, tuple[str, tuple[Any, ...]] | None]]

    @checked("experiment_ids", "max_results")
    def search_runs(
        self, *, experiment_ids: Sequence[str] | None = None, filter: str = "", order_by: Sequence[str] = (),
        max_results: int = 1000, cursor: str | None = None, include_deleted: bool = False, deleted_only: bool = False
    ) -> Page[RunRecord]:  # fmt: skip
        if max_results < 1:
            raise InvalidInput(f"max_results must be at least 1, got {max_results}.")
        key = (filter, tuple(order_by), None if experiment_ids is None else tuple(experiment_ids), max_results,
               cursor, include_deleted, deleted_only)  # fmt: skip
        cached = self._statements.get(key)
        if cached is None:
            cached = self._build_search(experiment_ids, filter, order_by, max_results, cursor, include_deleted,
                                        deleted_only)  # fmt: skip
            if len(self._statements) >= _STATEMENT_CACHE:
                self._statements.clear()
            self._statements[key] = cached
        q, offset, ordered, raw_sql = cached

        def read(conn: Connection) -> list[RunRecord]:
            if raw_sql is not None:  # SQLite fast path: the cached SQL text straight to the driver
                with driver_connection(conn) as driver:  # driver errors (a lock) are retried and mapped as usual
                    rows = [RunRow(*r) for r in driver.execute(*raw_sql).fetchall()]
                    return hydrate_runs(conn, rows, driver=driver)
            return hydrate_runs(conn, conn.execute(q).all())

        runs = run_in_transaction(self.engine, read, write=False)
        items, more = runs[:max_results], len(runs) > max_results
        next_cursor = None
        if more:
            token = {"offset": offset + max_results} if ordered else {"before": items[-1].id}
            next_cursor = encode_cursor(token)
        return Page(items, next_cursor)

    def _build_search(
        self,
        experiment_ids: Sequence[str] | None,
        filter: str,
        order_by: Sequence[str],
        max_results: int,
        cursor: str | None,
        include_deleted: bool,
        deleted_only: bool,
    ) -> tuple[Any, int, bool, tuple[str, tuple[Any, ...]] | None]:
        """The SELECT for a search (cached per arguments: rebuilding it costs more than running it).

        On SQLite the statement is also compiled to SQL text and positional parameters once, so repeated
        searches skip SQLAlchemy's per-execution work entirely.
        """
        where = [compile_filter(parse_filter(filter))]
        if experiment_ids is not None:
            where.append(t.runs.c.experiment_id.in_(list(experiment_ids)) if experiment_ids else false())
        if deleted_only:
            where.append(t.runs.c.deleted.is_(True))
        elif not include_deleted:
            where.append(t.runs.c.deleted.is_(False))
        joins: list[Any] = []
        orders = parse_order_by(list(order_by))
        q = select(t.runs)
        order_cols: list[Any] = []
        for ob in orders:
            col = _order_column(ob.field, joins)
            order_cols.append(col.desc().nulls_last() if ob.descending else col.asc().nulls_last())
        for table, on in joins:
            q = q.outerjoin(table, on)
        offset = 0
        if orders:
            offset = cursor_field(cursor, "offset", int) if cursor else 0
        elif cursor:  # keyset paging on the time-ordered id
            where.append(t.runs.c.id < cursor_field(cursor, "before", str))
        q = q.where(and_(*where)).order_by(*order_cols, t.runs.c.id.desc())
        q = q.limit(max_results + 1).offset(offset)
        raw_sql = None
        if self.engine.dialect.name == "sqlite":
            compiled = q.compile(dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True})
            params = compiled.construct_params()
            raw_sql = (str(compiled), tuple(params[name] for name in compiled.positiontup or ()))
        return q, offset, bool(orders), raw_sql

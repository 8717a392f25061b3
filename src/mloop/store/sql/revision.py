"""The schema revision this code expects (Alembic's head), importable without SQLAlchemy or Alembic.

:func:`mloop.store.sql.engine.migrate` brings a store to it; :mod:`mloop.store.direct` opens a store through
``sqlite3`` alone only when its ``alembic_version`` says it is there. A new migration raises it
(``tests/store/test_migrations.py`` checks it against the migration scripts).
"""

__all__ = ["HEAD_REVISION"]

HEAD_REVISION = "0009"

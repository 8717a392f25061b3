"""Which blobs belong only to private holdouts (the artifact read guard asks on every read)."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, exists, select

from mloop.store.sql import schema as t
from mloop.store.sql.engine import run_in_transaction

__all__ = ["HoldoutsMixin"]


class HoldoutsMixin:
    engine: Engine

    def private_blob_owners(self, digest: str) -> list[str]:
        """Refs of the private dataset versions holding ``digest``, or ``[]`` when anything public holds it too.

        One indexed lookup for an ordinary blob; the public-reference checks run only for private ones.
        """
        v, f, d = t.dataset_versions, t.dataset_files, t.datasets

        def read(conn: Connection) -> list[str]:
            rows = conn.execute(
                select(d.c.name, v.c.version)
                .select_from(f.join(v, v.c.id == f.c.version_id).join(d, d.c.id == v.c.dataset_id))
                .where(f.c.digest == digest, v.c.private.is_(True))
                .order_by(d.c.name, v.c.version)
            ).all()
            if not rows:
                return []
            public = (
                exists().where(f.c.digest == digest, f.c.version_id == v.c.id, v.c.private.is_(False)),
                exists().where(t.artifacts.c.digest == digest),
                exists().where(t.model_files.c.digest == digest),
            )
            if any(conn.execute(select(clause)).scalar() for clause in public):
                return []
            return [f"data:{name}/{version}" for name, version in rows]

        return run_in_transaction(self.engine, read, write=False)

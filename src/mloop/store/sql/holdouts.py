"""Which blobs belong only to private holdouts (the artifact read guard asks before blobs are served)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, select, union

from mloop.store.sql import schema as t
from mloop.store.sql.dialect import chunks
from mloop.store.sql.engine import run_in_transaction

__all__ = ["HoldoutsMixin"]


class HoldoutsMixin:
    engine: Engine

    def private_blobs(self, digests: Sequence[str]) -> dict[str, list[str]]:
        """For each of ``digests`` held only by private dataset versions: the refs of those versions.

        Digests that a public version, a run artifact or a model file also holds are public and left out. One
        indexed query per chunk of digests for ordinary (public) blobs; the public-reference checks run only
        for the candidates.
        """
        v, f, d = t.dataset_versions, t.dataset_files, t.datasets

        def read(conn: Connection) -> dict[str, list[str]]:
            owners: dict[str, list[str]] = {}
            for part in chunks(sorted(set(digests))):
                rows = conn.execute(
                    select(f.c.digest, d.c.name, v.c.version)
                    .select_from(f.join(v, v.c.id == f.c.version_id).join(d, d.c.id == v.c.dataset_id))
                    .where(f.c.digest.in_(part), v.c.private.is_(True))
                    .order_by(d.c.name, v.c.version)
                ).all()
                for digest, name, version in rows:
                    owners.setdefault(digest, []).append(f"data:{name}/{version}")
            if not owners:
                return {}
            for part in chunks(sorted(owners)):
                public = union(
                    select(f.c.digest)
                    .select_from(f.join(v, v.c.id == f.c.version_id))
                    .where(f.c.digest.in_(part), v.c.private.is_(False)),
                    select(t.artifacts.c.digest).where(t.artifacts.c.digest.in_(part)),
                    select(t.model_files.c.digest).where(t.model_files.c.digest.in_(part)),
                )
                for (digest,) in conn.execute(public):
                    owners.pop(digest, None)
            return owners

        return run_in_transaction(self.engine, read, write=False)

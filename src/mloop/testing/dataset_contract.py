"""The dataset and lineage part of the Store contract."""

from __future__ import annotations

import pytest

from mloop.entities import ManifestEntry
from mloop.errors import InvalidInput, NotFound
from mloop.store import Store
from mloop.store.protocols.datasets import DatasetEvents
from mloop.store.protocols.lineage import LineageEvents
from mloop.testing.threads import in_threads

__all__ = ["DatasetStoreContract"]

ME = "tester"


def _files(seed: str, n: int = 3) -> list[ManifestEntry]:
    return [ManifestEntry(f"f{i}.csv", 10 + i, f"blake3:{seed}{i}".ljust(71, "0")) for i in range(n)]


class DatasetStoreContract:
    def test_versions_are_numbered_and_deduplicated(self, store: Store) -> None:
        v1, created1 = store.create_dataset_version("sensors", files=_files("a"), manifest_digest="m:a", actor=ME)
        v2, created2 = store.create_dataset_version(
            "sensors", files=_files("b", 5), manifest_digest="m:b", actor=ME, message="more rows"
        )
        again, created3 = store.create_dataset_version("sensors", files=_files("a"), manifest_digest="m:a", actor=ME)
        assert (v1.version, v2.version, created1, created2) == (1, 2, True, True)
        assert again == v1 and created3 is False
        assert v2.file_count == 5 and v2.total_size == sum(10 + i for i in range(5)) and v2.message == "more rows"
        assert v1.ref == "data:sensors/1"
        assert store.get_dataset_version("sensors") == v2  # newest
        assert store.get_dataset_version("sensors", alias="latest") == v2
        assert store.get_dataset_version("sensors", 1) == v1
        assert store.list_dataset_files("sensors", 2) == sorted(_files("b", 5), key=lambda f: f.path)
        with pytest.raises(NotFound, match="latest is 2"):
            store.get_dataset_version("sensors", 9)
        with pytest.raises(NotFound, match="nope"):
            store.get_dataset_version("nope")
        with pytest.raises(InvalidInput):
            store.create_dataset_version("bad name", files=[], manifest_digest="m:x", actor=ME)

    def test_concurrent_adds_of_one_name(self, store: Store) -> None:
        def add(seed: str) -> tuple[int, bool]:
            v, created = store.create_dataset_version("race", files=_files(seed), manifest_digest=f"m:{seed}", actor=ME)
            return v.version, created

        results = in_threads(add, [(s,) for s in ["a", "b", "c", "d", "a", "b"]])
        assert not [r for r in results if isinstance(r, BaseException)]
        assert sorted(v for v, created in results if created) == [1, 2, 3, 4]
        assert len(results) == 6

    def test_aliases(self, store: Store) -> None:
        store.create_dataset_version("d", files=_files("a"), manifest_digest="m:a", actor=ME)
        store.create_dataset_version("d", files=_files("b"), manifest_digest="m:b", actor=ME)
        moved = store.set_dataset_alias("d", "gold", 1, actor=ME)
        assert moved.aliases == ("gold",)
        assert store.get_dataset_version("d", alias="gold").version == 1
        store.set_dataset_alias("d", "gold", 2, actor=ME)
        assert store.get_dataset_version("d", alias="gold").version == 2
        assert store.get_dataset_version("d", 1).aliases == ()
        with pytest.raises(InvalidInput, match="latest"):
            store.set_dataset_alias("d", "latest", 1, actor=ME)
        with pytest.raises(NotFound, match="silver"):
            store.get_dataset_version("d", alias="silver")
        events = store.list_events(types=[DatasetEvents.ALIAS_MOVED]).items
        assert [e.subject for e in events] == ["data:d@gold", "data:d@gold"]

    def test_list_and_delete(self, store: Store) -> None:
        for i, name in enumerate(["b", "a", "c"]):
            for j in range(i + 1):
                store.create_dataset_version(name, files=_files(f"{name}{j}"), manifest_digest=f"m:{name}{j}", actor=ME)
        page = store.list_datasets(limit=2)
        rest = store.list_datasets(cursor=page.next_cursor)
        summary = [(d.name, d.latest_version, d.version_count) for d in [*page.items, *rest.items]]
        assert summary == [("a", 2, 2), ("b", 1, 1), ("c", 3, 3)]
        versions = store.list_dataset_versions("c", limit=2)
        more = store.list_dataset_versions("c", cursor=versions.next_cursor)
        assert [v.version for v in [*versions.items, *more.items]] == [3, 2, 1]
        digests_before = store.referenced_digests()
        assert "m:c2" in digests_before and _files("c2")[0].digest in digests_before
        store.set_dataset_alias("c", "keep", 3, actor=ME)
        store.delete_dataset_version("c", 3, actor=ME)
        assert store.get_dataset_version("c").version == 2
        assert "m:c2" not in store.referenced_digests()
        with pytest.raises(NotFound):
            store.get_dataset_version("c", alias="keep")
        again, created = store.create_dataset_version("c", files=_files("c2"), manifest_digest="m:c2", actor=ME)
        assert created and again.version == 4  # numbers are never reused, even after a delete

    def test_version_metadata(self, store: Store) -> None:
        v, _ = store.create_dataset_version(
            "t", files=_files("a", 1), manifest_digest="m:t", actor=ME, kind="table", format="parquet", rows=42,
            private=True, source="data:src/1", role="holdout", meta={"seed": 7}, profile='{"rows": 42}',
        )  # fmt: skip
        got = store.get_dataset_version("t", 1)
        assert got == v
        assert (got.kind, got.format, got.rows, got.private, got.source, got.role) == (
            "table",
            "parquet",
            42,
            True,
            "data:src/1",
            "holdout",
        )
        assert got.meta == {"seed": 7}
        assert store.get_dataset_profile("t", 1) == '{"rows": 42}'

    def test_lineage(self, store: Store) -> None:
        store.add_lineage("data:a/1", "run:abc", "input", actor=ME)
        store.add_lineage("data:a/1", "run:abc", "input", actor=ME)  # idempotent
        store.add_lineage("run:abc", "model:m/1", "output", actor=ME)
        up = store.list_lineage("run:abc", direction="up")
        down = store.list_lineage("run:abc", direction="down")
        assert [(e.source, e.relation) for e in up] == [("data:a/1", "input")]
        assert [(e.target, e.relation) for e in down] == [("model:m/1", "output")]
        assert len(store.list_lineage("run:abc")) == 2
        assert len(store.list_events(types=[LineageEvents.RECORDED]).items) == 2

    def test_private_blob_owners(self, store: Store) -> None:
        from mloop.entities import ArtifactEntry

        secret = _files("s", 2)
        shared = [ManifestEntry("public.csv", 9, _files("p", 1)[0].digest)]
        store.create_dataset_version("hold", files=[*secret, *shared], manifest_digest="m:h", actor=ME, private=True)
        store.create_dataset_version("pub", files=shared, manifest_digest="m:p", actor=ME)
        other = "blake3:" + "f" * 64
        assert store.private_blobs([secret[0].digest, shared[0].digest, other]) == {secret[0].digest: ["data:hold/1"]}
        assert store.private_blobs([]) == {}
        run = store.create_run(store.get_or_create_experiment("e", actor=ME).id, name="r", actor=ME)
        store.record_artifacts(run.id, [ArtifactEntry("copy", secret[1].digest, 11, 0)], actor=ME)
        assert store.private_blobs([secret[1].digest]) == {}  # logged as a run's artifact: not private-only
        many = [f"blake3:{i:064x}" for i in range(1200)]  # more than one IN-list chunk
        assert store.private_blobs([*many, secret[0].digest]) == {secret[0].digest: ["data:hold/1"]}

"""The Store contract: one suite every metadata store implementation must pass.

One class per stored noun (``RunStoreContract``, ``DatasetStoreContract``, ``EventStoreContract`` ...);
:class:`StoreContract` combines those of the tracking nouns. Subclass them in a test module and provide a
``store`` fixture that yields a fresh, empty
store (see ``tests/contract/`` for the SQLite and PostgreSQL instances)::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self): ...
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from mloop.entities import ArtifactEntry, Metric, RunStatus
from mloop.errors import AlreadyExists, Conflict, FilterSyntaxError, InvalidInput, NotFound
from mloop.store import Store
from mloop.testing.event_contract import EventStoreContract
from mloop.testing.threads import in_threads

__all__ = [
    "ArtifactRefStoreContract",
    "ExperimentStoreContract",
    "RunStoreContract",
    "SettingsStoreContract",
    "StoreContract",
]

ME = "tester"


def _run(store: Store, exp: str = "exp", **kw: Any) -> str:
    e = store.get_or_create_experiment(exp, actor=ME)
    kw.setdefault("name", "r")
    return store.create_run(e.id, actor=ME, **kw).id


class SettingsStoreContract:
    """Settings and environments."""

    def test_settings_roundtrip(self, store: Store) -> None:
        assert store.get_setting("k") is None
        store.set_setting("k", "v1", actor="tester")
        store.set_setting("k", "v2", actor="tester")
        assert store.get_setting("k") == "v2"

    def test_settings_compare_and_set(self, store: Store) -> None:
        store.set_setting("cas", "a", actor="tester", expected=None)  # unset -> a
        with pytest.raises(Conflict):
            store.set_setting("cas", "b", actor="tester", expected=None)  # someone set it since
        with pytest.raises(Conflict):
            store.set_setting("cas", "b", actor="tester", expected="stale")
        assert store.get_setting("cas") == "a"
        store.set_setting("cas", "b", actor="tester", expected="a")
        assert store.get_setting("cas") == "b"
        changes = store.list_events(types=["setting.changed"], subject="setting:cas").items
        assert len(changes) == 2  # a refused compare-and-set writes no event

    def test_environment_is_stored_once(self, store: Store) -> None:
        body = {"python": {"version": "3.11"}, "packages": {"numpy": "2.0"}}
        store.put_environment("sha256:abc", body)
        store.put_environment("sha256:abc", body)
        assert store.get_environment("sha256:abc") == body
        with pytest.raises(NotFound):
            store.get_environment("sha256:missing")


class ExperimentStoreContract:
    """Experiments: create, get, race-free get-or-create, pages."""

    def test_experiment_create_get_and_duplicate(self, store: Store) -> None:
        exp = store.create_experiment("churn", actor=ME)
        assert store.get_experiment(exp.id) == exp
        assert store.get_experiment_by_name("churn") == exp
        with pytest.raises(AlreadyExists, match="churn"):
            store.create_experiment("churn", actor=ME)
        with pytest.raises(NotFound, match="nope"):
            store.get_experiment_by_name("nope")
        with pytest.raises(InvalidInput):
            store.create_experiment("  ", actor=ME)

    def test_get_or_create_experiment_is_race_free(self, store: Store) -> None:
        results = in_threads(lambda: store.get_or_create_experiment("shared", actor=ME).id, [()] * 6)
        assert not [r for r in results if isinstance(r, BaseException)]
        ids = list(results)
        assert len(set(ids)) == 1

    def test_list_experiments_paginates(self, store: Store) -> None:
        for i in range(7):
            store.create_experiment(f"e{i}", actor=ME)
        seen: list[str] = []
        cursor = None
        while True:
            page = store.list_experiments(cursor=cursor, limit=3)
            assert len(page.items) <= 3
            seen += [e.name for e in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == sorted(f"e{i}" for i in range(7))
        with pytest.raises(InvalidInput):
            store.list_experiments(cursor="%%%not-a-cursor")


class RunStoreContract:
    """Runs: lifecycle, params, metrics, tags, search, delete and purge."""

    def test_run_roundtrip(self, store: Store) -> None:
        exp = store.create_experiment("e", actor=ME)
        run = store.create_run(
            exp.id,
            name="first",
            actor=ME,
            params={"lr": "0.1"},
            tags={"team": "a"},
            environment_digest="sha256:x",
        )
        assert run.status is RunStatus.RUNNING
        got = store.get_run(run.id)
        assert got == run
        assert got.params == {"lr": "0.1"} and got.tags == {"team": "a"}
        with pytest.raises(NotFound, match="0123456789abcdef"):
            store.get_run("0123456789abcdef")
        with pytest.raises(NotFound):
            store.create_run("f" * 32, name="x", actor=ME)

    def test_params_are_immutable_and_batches_atomic(self, store: Store) -> None:
        run_id = _run(store, params={"model": "rf"})
        store.log_batch(run_id, params={"model": "rf", "depth": "3"})
        with pytest.raises(Conflict, match="model"):
            store.log_batch(run_id, params={"model": "lr"}, metrics=[Metric("acc", 0.5, 0, 1)])
        got = store.get_run(run_id)
        assert got.params == {"model": "rf", "depth": "3"}
        assert "acc" not in got.metrics  # the whole batch was rolled back
        assert store.get_metric_history(run_id, "acc") == []

    def test_tags_overwrite(self, store: Store) -> None:
        run_id = _run(store, tags={"stage": "dev"})
        store.log_batch(run_id, tags={"stage": "prod", "x": "1"})
        assert store.get_run(run_id).tags == {"stage": "prod", "x": "1"}

    def test_bad_keys_are_refused(self, store: Store) -> None:
        run_id = _run(store)
        with pytest.raises(InvalidInput):
            store.log_batch(run_id, params={"": "x"})
        with pytest.raises(InvalidInput):
            store.log_batch(run_id, metrics=[Metric("k" * 300, 1.0, 0, 0)])

    def test_metric_history_and_latest(self, store: Store) -> None:
        run_id = _run(store)
        points = [Metric("loss", 1.0 / (i + 1), i, 1000 + i) for i in range(50)]
        store.log_batch(run_id, metrics=points[25:])
        store.log_batch(run_id, metrics=points[:25])  # older steps arrive late
        assert store.get_metric_history(run_id, "loss") == points
        assert store.get_run(run_id).metrics["loss"] == pytest.approx(1.0 / 50)

    def test_special_float_values(self, store: Store) -> None:
        run_id = _run(store)
        store.log_batch(
            run_id,
            metrics=[Metric("a", math.nan, 0, 1), Metric("b", math.inf, 0, 1), Metric("c", -math.inf, 0, 1)],
        )
        run = store.get_run(run_id)
        assert math.isnan(run.metrics["a"])
        assert run.metrics["b"] == math.inf and run.metrics["c"] == -math.inf
        assert math.isnan(store.get_metric_history(run_id, "a")[0].value)

    def test_large_batches(self, store: Store) -> None:
        run_id = _run(store)
        store.log_batch(
            run_id,
            params={f"p{i}": str(i) for i in range(1200)},
            metrics=[Metric(f"m{i % 700}", float(i), i, i) for i in range(3000)],
        )
        run = store.get_run(run_id)
        assert len(run.params) == 1200 and len(run.metrics) == 700
        assert len(store.get_metric_history(run_id, "m3")) == len(range(3, 3000, 700))

    def test_end_run_and_nested_runs(self, store: Store) -> None:
        parent = _run(store)
        child = _run(store, parent_id=parent)
        assert store.get_run(child).parent_id == parent
        with pytest.raises(NotFound):
            _run(store, parent_id="a" * 32)
        store.end_run(child, RunStatus.FAILED, actor=ME, metrics=[Metric("last", 1.0, 0, 1)], tags={"t": "x"})
        ended = store.get_run(child)
        assert ended.status is RunStatus.FAILED and ended.end_time is not None
        assert ended.metrics == {"last": 1.0} and ended.tags == {"t": "x"}
        assert ended.end_time >= ended.start_time
        with pytest.raises(InvalidInput):
            store.end_run(parent, RunStatus.RUNNING, actor=ME)
        with pytest.raises(NotFound):
            store.end_run("b" * 32, RunStatus.FINISHED, actor=ME)

    # search
    def _population(self, store: Store) -> dict[str, str]:
        ids = {}
        for i, (model, acc) in enumerate([("rf", 0.95), ("rf", 0.85), ("lr", 0.91), ("gb", 0.70), ("rf", 0.99)]):
            run_id = _run(store, name=f"run{i}", params={"model": model}, tags={"team": "x" if i % 2 else "y"})
            store.log_batch(run_id, metrics=[Metric("acc", acc, 0, 1)])
            ids[f"run{i}"] = run_id
        store.end_run(ids["run0"], RunStatus.FINISHED, actor=ME)
        _run(store, name="no-metric", params={"model": "rf"})
        return ids

    def test_search_filters(self, store: Store) -> None:
        ids = self._population(store)

        def names(flt: str, **kw: Any) -> set[str]:
            return {r.name for r in store.search_runs(filter=flt, **kw).items}

        assert names("metrics.acc > 0.9 and params.model = 'rf'") == {"run0", "run4"}
        assert names("metrics.acc >= 0.99 or params.model = 'gb'") == {"run3", "run4"}
        assert names("params.model in ('lr', 'gb')") == {"run2", "run3"}
        assert names("params.model not in ('rf')") == {"run2", "run3"}
        assert names("tags.team = 'x' and (metrics.acc < 0.8 or metrics.acc > 0.9)") == {"run3"}
        assert names("name like 'run%' and metrics.acc != 0.85") == {"run0", "run2", "run3", "run4"}
        assert names("status = 'FINISHED'") == {"run0"}
        assert names(f"run_id = '{ids['run2']}'") == {"run2"}
        assert names("params.model ilike 'RF'") == {"run0", "run1", "run4", "no-metric"}
        assert len(names("")) == 6
        with pytest.raises(FilterSyntaxError):
            store.search_runs(filter="metrics.acc >")
        with pytest.raises(FilterSyntaxError):
            store.search_runs(filter="params.model > 3")

    def test_search_order_and_pages(self, store: Store) -> None:
        self._population(store)
        ordered = [r.name for r in store.search_runs(order_by=["metrics.acc DESC"]).items]
        assert ordered == ["run4", "run0", "run2", "run1", "run3", "no-metric"]  # missing metric last
        asc = [r.name for r in store.search_runs(order_by=["metrics.acc ASC"]).items]
        assert asc[:5] == ["run3", "run1", "run2", "run0", "run4"]
        newest_first = [r.name for r in store.search_runs().items]
        assert newest_first == ["no-metric", "run4", "run3", "run2", "run1", "run0"]
        for order in ([], ["metrics.acc DESC"], ["name"]):
            full = [r.id for r in store.search_runs(order_by=order).items]
            paged: list[str] = []
            cursor = None
            while True:
                page = store.search_runs(order_by=order, max_results=2, cursor=cursor)
                paged += [r.id for r in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert paged == full

    def test_search_by_experiment(self, store: Store) -> None:
        a = _run(store, exp="a")
        _run(store, exp="b")
        exp_a = store.get_experiment_by_name("a")
        assert [r.id for r in store.search_runs(experiment_ids=[exp_a.id]).items] == [a]
        assert store.search_runs(experiment_ids=[]).items == []

    def test_delete_restore_purge(self, store: Store) -> None:
        keep, gone = _run(store), _run(store)
        store.record_artifacts(gone, [ArtifactEntry("m.pkl", "blake3:" + "1" * 64, 10, 1)], actor=ME)
        store.delete_run(gone, actor=ME)
        assert [r.id for r in store.search_runs().items] == [keep]
        assert [r.id for r in store.search_runs(deleted_only=True).items] == [gone]
        assert store.get_run(gone).deleted
        store.restore_run(gone, actor=ME)
        assert {r.id for r in store.search_runs().items} == {keep, gone}
        store.delete_run(gone, actor=ME)
        assert store.purge_deleted_runs(actor=ME) == [gone]
        with pytest.raises(NotFound):
            store.get_run(gone)
        assert store.referenced_digests() == set()


class ArtifactRefStoreContract:
    """References from runs to blobs."""

    def test_artifact_references(self, store: Store) -> None:
        run_id = _run(store)
        d1, d2 = "blake3:" + "a" * 64, "blake3:" + "b" * 64
        store.record_artifacts(
            run_id, [ArtifactEntry("model/m.pkl", d1, 5, 1), ArtifactEntry("x.json", d2, 2, 1)], actor=ME
        )
        store.record_artifacts(run_id, [ArtifactEntry("x.json", d1, 5, 2)], actor=ME)  # re-logged path
        assert [(a.path, a.digest) for a in store.list_artifacts(run_id)] == [
            ("model/m.pkl", d1),
            ("x.json", d1),
        ]
        assert store.referenced_digests() == {d1}
        with pytest.raises(NotFound):
            store.record_artifacts("c" * 32, [ArtifactEntry("a", d1, 1, 1)], actor=ME)


class StoreContract(
    SettingsStoreContract, ExperimentStoreContract, RunStoreContract, ArtifactRefStoreContract, EventStoreContract
):
    """Behaviour every :class:`~mloop.store.Store` implementation shares (datasets and models: their own)."""

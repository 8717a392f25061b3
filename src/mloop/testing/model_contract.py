"""The model-registry part of the Store contract."""

from __future__ import annotations

import pytest

from mloop.entities import ModelFile
from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.store import Store
from mloop.store.protocols.models import ModelEvents
from mloop.testing.threads import in_threads

__all__ = ["ModelStoreContract"]

ME = "tester"
FILES = (ModelFile("model.pkl", 10, "blake3:" + "a" * 64),)


class ModelStoreContract:
    def test_register_and_read_versions(self, store: Store) -> None:
        v1 = store.create_model_version(
            "churn", flavor="sklearn", files=FILES, actor=ME, run_id="r" * 32, source="run:x/model",
            signature={"inputs": [["age", "int64"]]}, environment={"python": "3.11"}, params={"C": "1.0"},
            metrics={"acc": 0.9}, datasets=("data:d/1",), code_commit="abc", target="label",
        )  # fmt: skip
        v2 = store.create_model_version("churn", flavor="python", files=FILES, actor=ME)
        assert (v1.ref, v2.ref) == ("model:churn/1", "model:churn/2")
        got = store.get_model_version("churn", 1)
        assert got == v1 and got.files == FILES and got.signature == {"inputs": [["age", "int64"]]}
        assert got.params == {"C": "1.0"} and got.datasets == ("data:d/1",) and got.target == "label"
        assert store.get_model_version("churn") == v2
        with pytest.raises(NotFound, match="latest is 2"):
            store.get_model_version("churn", 7)
        with pytest.raises(NotFound, match="ghost"):
            store.get_model_version("ghost")
        with pytest.raises(InvalidInput):
            store.create_model_version("churn", flavor="sklearn", files=(), actor=ME)
        page = store.list_model_versions("churn", limit=1)
        rest = store.list_model_versions("churn", cursor=page.next_cursor)
        assert [v.version for v in [*page.items, *rest.items]] == [2, 1]
        (model,) = store.list_models().items
        assert (model.name, model.latest_version, model.version_count) == ("churn", 2, 2)
        assert FILES[0].digest in store.referenced_digests()

    def test_alias_compare_and_swap(self, store: Store) -> None:
        for _ in range(3):
            store.create_model_version("m", flavor="sklearn", files=FILES, actor=ME)
        store.move_model_alias("m", "production", 1, expected=None, actor=ME)
        assert store.get_model_version("m", alias="production").version == 1
        with pytest.raises(Conflict, match="moved to version 1"):
            store.move_model_alias("m", "production", 3, expected=None, actor=ME)
        store.move_model_alias("m", "production", 2, expected=1, actor=ME)
        store.move_model_alias("m", "production", 1, expected=2, actor=ME, reason="rollback")
        history = store.model_alias_history("m", "production")
        assert [(h["version"], h["previous"], h["reason"]) for h in history] == [
            (1, None, "promote"), (2, 1, "promote"), (1, 2, "rollback")
        ]  # fmt: skip
        assert store.list_models().items[0].aliases == {"production": 1}
        with pytest.raises(Conflict, match="production"):
            store.set_model_version_status("m", 1, "archived", actor=ME)
        store.set_model_version_status("m", 3, "archived", actor=ME)
        with pytest.raises(Conflict, match="archived"):
            store.move_model_alias("m", "staging", 3, actor=ME)
        with pytest.raises(InvalidInput):
            store.move_model_alias("m", "latest", 1, actor=ME)
        assert len(store.list_events(types=[ModelEvents.ALIAS_MOVED]).items) == 3

    def test_racing_promotions_one_wins(self, store: Store) -> None:
        for _ in range(4):
            store.create_model_version("race", flavor="sklearn", files=FILES, actor=ME)

        def promote(version: int) -> str:
            try:
                store.move_model_alias("race", "production", version, expected=None, actor=ME)
            except Conflict:
                return "conflict"
            return "won"

        outcomes = in_threads(promote, [(v,) for v in (1, 2, 3, 4)])
        assert sorted(outcomes) == ["conflict", "conflict", "conflict", "won"]

    def test_concurrent_registration_numbers(self, store: Store) -> None:
        results = in_threads(lambda: store.create_model_version("busy", flavor="sklearn", files=FILES, actor=ME),
                             [()] * 5)  # fmt: skip
        assert not [r for r in results if isinstance(r, BaseException)]
        assert sorted(v.version for v in store.list_model_versions("busy").items) == [1, 2, 3, 4, 5]

    def test_evaluations_and_approvals(self, store: Store) -> None:
        store.create_model_version("e", flavor="sklearn", files=FILES, actor=ME)
        ev = store.add_evaluation(
            "e", 1, data_ref="data:h/1", task="classification", metrics={"accuracy": 0.9}, actor=ME, rows=100,
            importance=[("age", 0.1, 0.01)], latency_ms={"p95": 1.5}, report_digest="blake3:" + "b" * 64,
            comparison={"champion": "model:e/0"},
        )  # fmt: skip
        (got,) = store.list_evaluations("e", 1)
        assert got == ev and got.importance == (("age", 0.1, 0.01),) and got.latency_ms == {"p95": 1.5}
        assert store.list_evaluations("e", 1, data_ref="data:other/1") == []
        assert "blake3:" + "b" * 64 in store.referenced_digests()
        store.add_approval("e", 1, alias="production", actor="alice", roles=("approver",), comment="ok")
        store.add_approval("e", 1, alias="staging", actor="bob")
        (a,) = store.list_approvals("e", 1, alias="production")
        assert (a.actor, a.roles, a.comment, a.model_ref) == ("alice", ("approver",), "ok", "model:e/1")
        assert len(store.list_approvals("e", 1)) == 2

    def test_version_tags(self, store: Store) -> None:
        store.create_model_version("tg", flavor="sklearn", files=FILES, actor=ME)
        store.create_model_version("tg", flavor="sklearn", files=FILES, actor=ME)
        assert store.get_model_version("tg", 1).tags == {}
        got = store.set_model_version_tags("tg", 1, {"b": "2", "a": "1"}, actor=ME)
        assert got.tags == {"a": "1", "b": "2"}
        got = store.set_model_version_tags("tg", 1, {"b": "3", "c": '{"x": 1}'}, actor=ME)
        assert got.tags == {"a": "1", "b": "3", "c": '{"x": 1}'}  # overwritten one, kept the others
        assert store.get_model_version("tg", 1).tags == got.tags and store.get_model_version("tg", 2).tags == {}
        assert store.list_model_versions("tg").items[1].tags == got.tags
        with pytest.raises(NotFound, match="latest is 2"):
            store.set_model_version_tags("tg", 9, {"a": "1"}, actor=ME)
        with pytest.raises(InvalidInput, match="tag key"):
            store.set_model_version_tags("tg", 1, {"": "1"}, actor=ME)
        with pytest.raises(InvalidInput, match="text"):
            store.set_model_version_tags("tg", 1, {"n": 5}, actor=ME)  # type: ignore[dict-item]
        events = store.list_events(types=[ModelEvents.VERSION_TAGGED]).items
        assert [(e.subject, e.payload["keys"]) for e in events] == [
            ("model:tg/1", ["a", "b"]),
            ("model:tg/1", ["b", "c"]),
        ]

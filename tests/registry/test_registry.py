"""Registering, loading (verified), flavors, environment checks, gates without evaluation, approvals, rollback."""

from __future__ import annotations

import json
import pickle
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.errors import Conflict, EnvironmentMismatch, GateFailed, IntegrityError, InvalidInput, NotFound
from mloop.registry.gates import Check, CheckResult, GateContext, approvals, parse_policy
from mloop.registry.loader import EnvironmentMismatchWarning
from mloop.tracking.client import Client


@pytest.fixture
def xy() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"age": rng.integers(18, 80, 300), "income": rng.normal(50, 10, 300),
                      "plan": rng.choice(["basic", "pro"], 300)})  # fmt: skip
    y = ((x["age"] > 40) ^ (x["plan"] == "pro")).astype(int).to_numpy()
    return x, y


def _pipeline() -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = make_column_transformer((StandardScaler(), ["age", "income"]), (OneHotEncoder(), ["plan"]))
    return make_pipeline(pre, LogisticRegression(max_iter=500))


class MeanModel:
    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, x: Any) -> np.ndarray:
        return np.full(len(x), self.value)


def test_log_model_registers_everything(client: Client, xy: tuple[pd.DataFrame, np.ndarray], tmp_path: Path) -> None:
    x, y = xy
    csv = tmp_path / "train.csv"
    x.assign(label=y).to_csv(csv, index=False)
    ds = mloop.Dataset.add(csv, "churn-train", client=client).dataset
    model = _pipeline().fit(x, y)
    with mloop.start_run("churn", params={"C": 1.0}) as run:
        ds.to_pandas()  # records the dataset as an input of the run
        run.log_metric("train_acc", 0.9)
        version = run.log_model(model, "churn", input_example=x.head(3), signature_data=x, target="label")
    assert version is not None and version.ref == "model:churn/1"
    assert version.flavor == "sklearn" and version.run_id == run.id and version.target == "label"
    assert {f.path for f in version.files} == {"model.pkl", "mloop-model.json", "input_example.json"}
    assert version.datasets == ("data:churn-train/1",)
    assert version.metrics == {"train_acc": 0.9}
    assert "logisticregression__max_iter" in version.params
    inputs = {c["name"]: c for c in version.signature["inputs"]}  # type: ignore[index]
    assert inputs["age"]["min"] >= 18 and set(inputs["plan"]["categories"]) == {"basic", "pro"}
    assert version.environment["packages"]["scikit-learn"]
    loaded = mloop.load_model("model:churn/1")
    assert (loaded.predict(x) == model.predict(x)).all()
    assert np.allclose(loaded.predict_proba(x), model.predict_proba(x))
    assert mloop.load_model("model:churn").meta["version"] == 1
    lineage = client.store.list_lineage(version.ref, direction="up")
    assert [e.source for e in lineage] == [run.ref]


def test_register_from_run_ref_and_files(client: Client, xy: tuple[pd.DataFrame, np.ndarray], tmp_path: Path) -> None:
    x, y = xy
    with mloop.start_run("churn") as run:
        run.log_model(_pipeline().fit(x, y))
    v1 = mloop.register_model(f"run:{run.id}/model", "churn")
    assert v1.source == f"run:{run.id}/model"
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(pickle.dumps(MeanModel(3.0)))
    v2 = mloop.register_model(pkl, "churn")
    assert v2.flavor == "python" and list(mloop.load_model(v2.ref).predict(x[:2])) == [3.0, 3.0]
    script = tmp_path / "scorer"
    script.mkdir()
    (script / "score.py").write_text(
        "import json\nMODEL = None\n\ndef init():\n    global MODEL\n    MODEL = 2\n\n"
        "def run(data):\n    return [MODEL * len(data)]\n"
    )
    v3 = mloop.register_model(script, "churn")
    assert v3.flavor == "script" and mloop.load_model(v3.ref).predict([1, 2, 3]) == [6]
    v4 = mloop.register_model(MeanModel(1.0), "churn")
    assert v4.version == 4
    with pytest.raises(NotFound, match="no model"):
        mloop.register_model(f"run:{run.id}/nothing", "churn")


def test_unfitted_and_unsupported_models_are_refused(client: Client) -> None:
    from sklearn.linear_model import LogisticRegression

    with mloop.start_run("x") as run:
        with pytest.raises(InvalidInput, match="not fitted"):
            run.log_model(LogisticRegression(), "m")
        with pytest.raises(InvalidInput, match="predict"):
            run.log_model(object(), "m")


def test_tampered_file_is_refused(client: Client, xy: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = xy
    version = mloop.register_model(_pipeline().fit(x, y), "churn")
    mloop.load_model(version.ref)
    cached = client.workspace.settings.local_dir / "models" / version.id / "model.pkl"
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0x01
    cached.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"model\.pkl"):
        mloop.load_model(version.ref)
    blob = next(f for f in version.files if f.path == "model.pkl")
    algo, hexd = blob.digest.split(":")
    stored = Path(client.artifacts.uri) / "blobs" / algo / hexd[:2] / hexd[2:]
    stored.chmod(0o644)
    stored.write_bytes(bytes(data))
    import shutil

    shutil.rmtree(cached.parent)
    with pytest.raises(IntegrityError, match=r"model\.pkl"):
        mloop.load_model(version.ref)


def test_environment_mismatch_warns_or_refuses(client: Client, xy: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = xy
    version = mloop.register_model(_pipeline().fit(x, y), "churn")
    from sqlalchemy import update

    from mloop.store.sql import schema

    env = dict(version.environment)
    env["packages"] = {**env["packages"], "scikit-learn": "0.0.1"}
    with client.store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(schema.model_versions).values(environment=json.dumps(env)))
    with pytest.warns(EnvironmentMismatchWarning, match=r"scikit-learn 0\.0\.1 \(registered\)"):
        mloop.load_model(version.ref)
    with pytest.raises(EnvironmentMismatch, match="scikit-learn"):
        mloop.load_model(version.ref, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other = mloop.register_model(MeanModel(0.0), "other")
        mloop.load_model(other.ref)  # matching environment: no warning


def test_approvals_gate_rollback_and_races(client: Client) -> None:
    for value in (1.0, 2.0, 3.0):
        mloop.register_model(MeanModel(value), "m")
    with pytest.raises(GateFailed, match="approval") as info:
        mloop.promote("m", 1, to="blue", policy=approvals(1))
    assert "measured 0 (none)" in str(info.value)
    with pytest.raises(NotFound):
        client.store.get_model_version("m", alias="blue")  # refused: nothing moved
    mloop.approve("m", 1, to="blue", comment="looks good")
    report = mloop.promote("m", 1, to="blue", policy="approvals(1)")
    assert report.passed and client.store.get_model_version("m", alias="blue").version == 1
    mloop.approve("m", 2, to="blue")
    mloop.promote("m", 2, to="blue", policy=approvals(1))
    back = mloop.rollback("m", alias="blue")
    assert back.version == 1
    moves = client.events(types=["model.alias_moved"], subject="model:m@blue")
    assert [e.payload["reason"] for e in moves] == ["promote", "promote", "rollback"]
    assert moves[-1].payload["from"] == 2 and moves[-1].payload["to"] == 1
    with pytest.raises(GateFailed, match="role 'approver'"):
        mloop.promote("m", 3, to="blue", policy=approvals(1, role="approver"))
    refused = client.events(types=["model.promotion_refused"])
    assert len(refused) == 2 and refused[-1].payload["passed"] is False

    barrier = threading.Barrier(2)

    class BothChecked(Check):
        """Both promotions have read the alias and passed their checks before either moves it."""

        def run(self, ctx: GateContext) -> list[CheckResult]:
            barrier.wait(timeout=30)
            return [CheckResult("both-checked", True, "yes", "yes")]

    outcomes: list[str] = []

    def race(version: int) -> None:
        try:
            mloop.promote("m", version, to="green", policy=BothChecked(), client=client)
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=race, args=(v,)) for v in (2, 3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["conflict", "won"]
    assert client.store.get_model_version("m", alias="green").version in (2, 3)


def test_policy_parsing_is_safe() -> None:
    policy = parse_policy("min_metric('roc_auc', 0.85) & beats('production', metric='roc_auc', margin=0.005)")
    assert len(policy.checks) == 2
    assert repr(policy).startswith("min_metric(metric='roc_auc'")
    for bad in ["__import__('os').system('x')", "min_metric(open('f'))", "1 +", "approvals(1) | approvals(2)"]:
        with pytest.raises(InvalidInput):
            parse_policy(bad)

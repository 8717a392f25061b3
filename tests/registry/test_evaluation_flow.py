"""Evaluation on a private holdout, champion/challenger gates and register-if-better, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.errors import AccessDenied, GateFailed
from mloop.registry.gates import beats, evaluated, max_latency_ms, min_metric
from mloop.tracking.client import Client


@pytest.fixture
def split(client: Client, tmp_path: Path) -> Any:
    rng = np.random.default_rng(1)
    n = 3000
    x = rng.normal(size=(n, 4))
    logits = 2.5 * x[:, 0] - 1.5 * x[:, 1] + 0.3 * x[:, 2]
    y = (logits + rng.logistic(size=n) > 0).astype(int)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(label=y)
    path = tmp_path / "churn.parquet"
    frame.to_parquet(path)
    mloop.Dataset.add(path, "churn", client=client)
    return mloop.split_dataset("data:churn/1", holdout=0.3, seed=0, stratify="label", client=client)


def _fit(split: Any, columns: list[str]) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train = split.train.to_pandas()
    model = make_pipeline(make_column_transformer(("passthrough", columns), remainder="drop"), LogisticRegression())
    return model.fit(train.drop(columns=["label"]), train["label"])


def test_evaluate_reads_the_holdout_and_stores_everything(client: Client, split: Any) -> None:
    model = _fit(split, ["a", "b", "c", "d"])
    version = mloop.register_model(model, "churn")
    ev = mloop.evaluate(version.ref, split.holdout.ref)
    assert ev.task == "classification" and ev.rows == split.holdout.info.rows
    assert 0.8 < ev.metrics["roc_auc"] <= 1 and 0 < ev.metrics["accuracy"] <= 1
    assert {"log_loss", "f1", "confusion_matrix", "calibration"} <= set(ev.metrics)
    assert ev.latency_ms["p95"] > 0
    assert ev.importance[0][0] == "a"  # the strongest feature comes first
    html = client.artifacts.get_bytes(ev.report_digest or "").decode()
    assert "roc_auc" in html
    reads = client.events(types=["dataset.holdout_read"])
    assert reads and reads[-1].payload["purpose"] == f"evaluation of {version.ref}"
    with pytest.raises(AccessDenied):
        split.holdout.to_pandas()  # training code still cannot read it


def test_challenger_must_beat_champion_beyond_noise(client: Client, split: Any) -> None:
    weak = mloop.register_model(_fit(split, ["c", "d"]), "churn")
    strong = mloop.register_model(_fit(split, ["a", "b", "c", "d"]), "churn")
    same = mloop.register_model(_fit(split, ["a", "b", "c", "d"]), "churn")
    for v in (weak, strong, same):
        mloop.evaluate(v.ref, split.holdout.ref)
    policy = evaluated() & min_metric("roc_auc", 0.5) & beats("production", metric="roc_auc", margin=0.005)
    mloop.promote("churn", weak.version, to="production", policy=policy)  # no champion yet: passes
    report = mloop.promote("churn", strong.version, to="production", policy=policy & max_latency_ms(1000))
    assert report.passed and report.previous == weak.version
    with pytest.raises(GateFailed, match="beats") as info:
        mloop.promote("churn", same.version, to="production", policy=policy)  # equal model: noise, refused
    assert "FAIL" in str(info.value)
    assert client.store.get_model_version("churn", alias="production").version == strong.version
    promoted = [e for e in client.events(types=["model.alias_moved"]) if e.payload["reason"] == "promote"]
    assert promoted[-1].payload["report"]["model"] == strong.ref  # one event: the move, with its gate report
    assert any("beats" in c["check"] and c["passed"] for c in promoted[-1].payload["report"]["checks"])
    before = len(client.store.list_evaluations("churn", strong.version))
    from mloop.registry.evaluate import compare_versions

    result = compare_versions(client, strong.ref, weak.ref, split.holdout.ref, metric="accuracy")
    assert result["champion"] == weak.ref and result["improvement"] > 0
    assert result["mcnemar"]["p_value"] < 0.05
    ev = client.store.list_evaluations("churn", strong.version)[0]
    assert ev.comparison is not None and len(client.store.list_evaluations("churn", strong.version)) == before + 1


def test_register_if_better(client: Client, split: Any) -> None:
    first = mloop.register_if_better(_fit(split, ["c", "d"]), "churn", data=split.holdout.ref, alias="production")
    assert first.promoted  # nothing to beat
    worse = mloop.register_if_better(_fit(split, ["d"]), "churn", data=split.holdout.ref, alias="production")
    assert not worse.promoted and not worse.report.passed
    better = mloop.register_if_better(
        _fit(split, ["a", "b", "c", "d"]), "churn", data=split.holdout.ref, alias="production"
    )
    assert better.promoted
    assert client.store.get_model_version("churn", alias="production").version == better.version.version

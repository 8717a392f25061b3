"""``mloop models`` and ``mloop evaluate`` on a real SQLite workspace with scikit-learn models trained here.

The data set is generated in the test, added with ``mloop data add`` and split with ``mloop data split`` into
a train part (read in a run, which records lineage) and a private holdout (readable only by evaluation).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_cases import Invoke

import mloop as sdk
from mloop.errors import AccessDenied
from mloop.tracking.client import Client
from mloop.workspace import init_workspace

TRAIN, HOLDOUT = "data:churn-train/1", "data:churn-holdout/1"


@dataclass
class Models:
    """A workspace with the churn data split, and a strong and a weak classifier trained on the train part."""

    client: Client
    run_id: str  # the run that logged the strong model (model/)
    weak: Path  # the weak model, pickled
    tmp: Path


def _frame(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"age": rng.integers(18, 80, n), "usage": rng.normal(10, 3, n), "noise": rng.normal(0, 1, n)})
    logit = 0.12 * (x["age"] - 50) + 0.6 * (x["usage"] - 10)
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x.assign(label=label)


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloop: Invoke) -> Iterator[Models]:
    from sklearn.linear_model import LogisticRegression

    init_workspace(tmp_path / "ws").close()
    monkeypatch.setenv("MLOOP_USER", "alice")
    monkeypatch.chdir(tmp_path / "ws")  # the workspace file (roles, policies) applies inside the workspace
    _frame().to_csv(tmp_path / "ws" / "churn.csv", index=False)
    mloop("data", "add", "churn.csv", "--name", "churn")
    mloop("data", "split", "data:churn/1", "--holdout", "0.3", "--seed", "1", "--stratify", "label")

    client = sdk.use_client(Client())
    with sdk.start_run("churn", "strong") as run:
        train = sdk.get_dataset(TRAIN).to_pandas()  # recorded as an input of the run
        x, y = train.drop(columns=["label"]), train["label"]
        strong = LogisticRegression(max_iter=500).fit(x, y)
        run.log_metric("train_acc", float(strong.score(x, y)))
        run.log_model(strong, input_example=x.head(3), signature_data=x, target="label")
    weak = tmp_path / "weak.pkl"
    weak.write_bytes(pickle.dumps(LogisticRegression().fit(x[["noise"]].assign(age=0, usage=0)[x.columns], y)))
    yield Models(client, run.id, weak, tmp_path)
    client.close()


def _json(mloop: Invoke, *args: str, code: int = 0) -> Any:
    return json.loads(mloop(*args, "--json", code=code).stdout)


def test_register_list_versions_show(models: Models, mloop: Invoke) -> None:
    out = mloop("models", "register", f"run:{models.run_id[-8:]}/model", "--name", "churn", "-d", "logistic").stdout
    assert "Registered model:churn/1 (sklearn, 3 files" in out and f"run:{models.run_id}/model" in out
    v2 = _json(mloop, "models", "register", str(models.weak), "--name", "churn")
    assert v2["ref"] == "model:churn/2" and v2["flavor"] == "sklearn" and v2["run_id"] != models.run_id

    scorer = models.tmp / "scorer"
    scorer.mkdir()
    (scorer / "score.py").write_text("def init():\n    pass\n\n\ndef run(data):\n    return [1] * len(data)\n")
    assert _json(mloop, "models", "register", str(scorer), "--name", "scripted")["flavor"] == "script"

    listed = _json(mloop, "models", "list")
    assert [(m["name"], m["latest_version"], m["version_count"], m["aliases"]) for m in listed] == [
        ("churn", 2, 2, {}), ("scripted", 1, 1, {})]  # fmt: skip
    assert "churn" in mloop("models", "list").stdout
    versions = _json(mloop, "models", "versions", "churn")
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["description"] == "logistic"
    table = mloop("models", "versions", "model:churn").stdout
    assert "logistic" in table and models.run_id[-8:] in table

    shown = _json(mloop, "models", "show", "churn/1")
    assert shown["ref"] == "model:churn/1" and shown["run_id"] == models.run_id
    assert {f["path"] for f in shown["files"]} == {"model.pkl", "mloop-model.json", "input_example.json"}
    assert all(f["digest"].count(":") == 1 and f["size"] > 0 for f in shown["files"])
    assert shown["datasets"] == [TRAIN] and shown["target"] == "label"
    assert [c["name"] for c in shown["signature"]["inputs"]] == ["age", "usage", "noise"]
    assert shown["environment"]["packages"]["scikit-learn"]
    assert "C" in shown["params"] and "train_acc" in shown["metrics"]
    assert shown["evaluations"] == [] and shown["approvals"] == [] and shown["alias_history"] == []
    text = mloop("models", "show", "model:churn@latest").stdout
    assert "Model version model:churn/2" in text and "No signature" in text and "Not evaluated" in text
    text = mloop("models", "show", "model:churn/1").stdout
    for part in ("model.pkl", "age", "scikit-learn", "train_acc", TRAIN, "No approvals."):
        assert part in text, part

    err = mloop("models", "show", "churn/9", code=3).stderr
    assert "no version 9; latest is 2" in err and "mloop models versions churn" in err
    assert "not a model name" in mloop("models", "versions", "churn/1", code=2).stderr
    assert "No file or folder" in mloop("models", "register", "nothing.pkl", "--name", "churn", code=3).stderr


def test_promote_refused_then_approved_rollback_archive_policy(models: Models, mloop: Invoke) -> None:
    for _ in range(3):
        mloop("models", "register", f"run:{models.run_id}", "--name", "churn")
    assert "policy()" not in mloop("models", "policy", "churn", "production").stdout  # the default policy
    out = mloop("models", "policy", "churn", "production", "approvals(1, role='approver')").stdout
    assert "Set model:churn@production: approvals(count=1, role='approver')" in out
    assert _json(mloop, "models", "policy", "churn", "production")["checks"] == ["approvals(count=1, role='approver')"]
    assert "Cannot read the policy" in mloop("models", "policy", "churn", "production", "rm -rf /", code=2).stderr

    refused = mloop("models", "promote", "churn", "1", "--to", "production", code=7)
    assert "FAIL" in refused.output and "approvals(count=1, role='approver')" in refused.output
    assert "0 (none)" in refused.output and ">= 1 approval(s) by role 'approver'" in refused.output
    assert "mloop models approve churn 1 --to production" in refused.stderr
    assert _json(mloop, "models", "list")[0]["aliases"] == {}  # the refusal moved nothing
    assert _json(mloop, "models", "check", "churn", "1", "--to", "production", code=7)["passed"] is False
    assert "Would be refused" in mloop("models", "check", "churn", "1", "--to", "production", code=7).stdout

    approved = mloop("models", "approve", "churn", "1", "--to", "production", "-c", "ok").stdout
    assert "alice approved model:churn/1 for @production (no roles" in approved
    assert "0 (none)" in mloop("models", "check", "churn", "1", "--to", "production", code=7).stdout  # no role yet
    config = models.tmp / "ws" / ".mloop" / "config.toml"
    config.write_text(config.read_text() + '\n[roles]\nalice = ["approver"]\n')
    assert "roles: approver" in mloop("models", "approve", "churn", "1", "--to", "production").stdout
    assert "Would pass" in mloop("models", "check", "churn", "1", "--to", "production").stdout
    out = mloop("models", "promote", "churn", "1", "--to", "production").stdout
    assert "PASS" in out and "Moved model:churn@production → version 1 (had no holder)" in out
    mloop("models", "approve", "churn", "2", "--to", "production")
    moved = _json(mloop, "models", "promote", "churn", "2", "--to", "production")
    assert moved["passed"] is True and moved["moved"] is True and moved["previous"] == 1

    # `alias` goes through the same gates: a policy that cannot pass refuses it too
    mloop("models", "policy", "churn", "champion", "min_metric('roc_auc', 0.99)")
    out = mloop("models", "alias", "churn", "3", "champion", code=7).output
    assert "FAIL" in out and "not evaluated" in out
    assert _json(mloop, "models", "list")[0]["aliases"] == {"production": 2}
    out = mloop("models", "promote", "churn", "3", "--to", "staging", "--policy", "approvals(1)", code=7).output
    assert "approvals(count=1, role=None)" in out

    assert "Rolled back model:churn@production → model:churn/1" in mloop("models", "rollback", "churn").stdout
    shown = _json(mloop, "models", "show", "churn/1")
    assert shown["aliases"] == ["production"]
    assert [(m["alias"], m["previous"], m["version"], m["reason"]) for m in shown["alias_history"]] == [
        ("production", None, 1, "promote"),
        ("production", 1, 2, "promote"),
        ("production", 2, 1, "rollback"),
    ]
    assert [a["roles"] for a in shown["approvals"]] == [[], ["approver"]]
    assert "Alias history" in mloop("models", "show", "churn/1").stdout

    assert "Archived model:churn/2" in mloop("models", "archive", "churn", "2").stdout
    assert _json(mloop, "models", "show", "churn/2")["status"] == "archived"
    assert "holds alias(es) production" in mloop("models", "archive", "churn", "1", code=5).stderr
    assert "never been set" in mloop("models", "rollback", "churn", "--alias", "nope", code=3).stderr


def test_evaluate_on_private_holdout_and_compare(models: Models, mloop: Invoke) -> None:
    mloop("models", "register", f"run:{models.run_id}/model", "--name", "churn")
    mloop("models", "register", str(models.weak), "--name", "churn")

    report = models.tmp / "reports" / "churn-1.html"
    ev = _json(mloop, "evaluate", "model:churn/1", "--data", HOLDOUT, "--report", str(report))
    assert ev["model"] == "model:churn/1" and ev["data"] == HOLDOUT and ev["task"] == "classification"
    assert ev["rows"] == 180 and ev["metrics"]["roc_auc"] > 0.8 and set(ev["latency_ms"]) >= {"p50", "p95"}
    assert {i["feature"] for i in ev["importance"]} == {"age", "usage", "noise"}
    assert report.read_text().lstrip().lower().startswith("<!doctype html") and ev["report"] == str(report)
    out = mloop("evaluate", "churn/2", "--data", HOLDOUT, "--target", "label").stdout
    assert "Evaluated model:churn/2 on data:churn-holdout/1 (180 rows, classification)" in out
    assert "Confusion matrix" in out and "roc_auc" in out and "latency" in out and "Permutation importance" in out

    # the holdout is readable by evaluation only: training code in a run is refused
    with sdk.start_run("churn", "peek"), pytest.raises(AccessDenied, match="private holdout"):
        sdk.get_dataset(HOLDOUT).to_pandas()
    # ... and evaluating on non-private data does not satisfy evaluated()
    mloop("evaluate", "churn/2", "--data", TRAIN)
    shown = _json(mloop, "models", "show", "churn/2")
    assert [e["data"] for e in shown["evaluations"]] == [TRAIN, HOLDOUT]
    assert "roc_auc" in mloop("models", "show", "churn/2").stdout

    # default production policy: evaluated on a private holdout, and beats the holder (none yet)
    mloop("models", "promote", "churn", "1", "--to", "production")
    out = mloop("models", "promote", "churn", "2", "--to", "production", code=7).output
    assert "FAIL" in out and "beats(alias='production'" in out and "vs model:churn/1" in out
    assert _json(mloop, "models", "list")[0]["aliases"] == {"production": 1}

    cmp = _json(mloop, "models", "compare", "churn/1", "churn@production", "--data", HOLDOUT)
    assert cmp["improvement"] == 0 and cmp["mcnemar"]["b01"] == cmp["mcnemar"]["b10"] == 0
    cmp = _json(mloop, "models", "compare", "churn/1", "churn/2", "--data", HOLDOUT, "--metric", "accuracy")
    assert cmp["metric"] == "accuracy" and cmp["ci_low"] > 0 and cmp["improvement"] > 0
    assert cmp["challenger"] == "model:churn/1" and cmp["champion"] == "model:churn/2"
    out = mloop("models", "compare", "churn/2", "churn@production", "--data", HOLDOUT).stdout
    assert "McNemar" in out and "The challenger is worse on roc_auc" in out
    err = mloop("evaluate", "churn/1", "--data", HOLDOUT, "--target", "nope", code=2).stderr
    assert "'nope'" in err and "--target" in err


def test_lineage_of_a_model_shows_its_evaluation_apart(models: Models, mloop: Invoke) -> None:
    mloop("models", "register", f"run:{models.run_id}/model", "--name", "churn")
    mloop("evaluate", "model:churn/1", "--data", HOLDOUT)
    trees = _json(mloop, "lineage", "model:churn@latest")
    assert [c["ref"] for c in trees["upstream"]["children"]] == [f"run:{models.run_id}"]  # made from: the run
    assert trees["evaluated_on"] == {"ref": "model:churn/1", "children": [{"ref": HOLDOUT, "relation": "evaluated_on"}]}
    out = mloop("lineage", "model:churn/1").stdout
    made_from = out.split("Downstream")[0].split("Evaluated on")[0]
    assert HOLDOUT not in made_from and f"run:{models.run_id}" in made_from
    assert "Evaluated on: model:churn/1" in out and HOLDOUT in out.split("Evaluated on")[1]
    # the holdout lists the model among what used it
    down = _json(mloop, "lineage", HOLDOUT)["downstream"]
    assert {"ref": "model:churn/1", "relation": "evaluated_on"} in down["children"]


def test_a_refusal_prints_its_table_once(models: Models, mloop: Invoke) -> None:
    mloop("models", "register", f"run:{models.run_id}/model", "--name", "churn")
    refused = mloop("models", "promote", "churn", "1", "--to", "staging", "--policy", "approvals(1)", code=7)
    assert refused.stdout.count("approvals(count=1, role=None)") >= 1 and "FAIL" in refused.stdout
    assert "FAIL" not in refused.stderr and "PASS" not in refused.stderr
    assert refused.stderr.startswith("error: model:churn/1 was not promoted to @staging")
    as_json = mloop("models", "promote", "churn", "1", "--to", "staging", "--policy", "approvals(1)", "--json",
                    code=7)  # fmt: skip
    assert json.loads(as_json.stdout)["moved"] is False
    assert "FAIL" not in as_json.stderr


def test_policy_option_says_it_adds_checks(mloop: Invoke) -> None:
    for command in ("promote", "check"):
        text = " ".join(mloop("models", command, "--help").stdout.split())
        assert "adds checks" in text.lower() and "instead of" not in text, command

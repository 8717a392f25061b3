"""``mloop.registry.reports``: an evaluation's stored HTML report written to a file (``mloop evaluate --report``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.entities import Evaluation, ModelFile
from mloop.errors import NotFound
from mloop.registry.reports import ReportedEvaluation, evaluate_with_report, write_report
from mloop.tracking.client import Client


def _stored_evaluation(client: Client, report: bytes | None) -> Evaluation:
    client.store.create_model_version("churn", flavor="python", files=(ModelFile("model.pkl", 1, "blake3:x"),),
                                      actor="bob")  # fmt: skip
    digest = None if report is None else client.artifacts.put_bytes(report).digest
    return client.store.add_evaluation(
        "churn",
        1,
        data_ref="data:h/1",
        task="classification",
        metrics={"accuracy": 0.9},
        actor="bob",
        rows=10,
        report_digest=digest,
    )


def test_write_report_writes_the_stored_blob_creating_folders(client: Client, tmp_path: Path) -> None:
    evaluation = _stored_evaluation(client, b"<html>report</html>")
    written = write_report(client, evaluation, tmp_path / "reports" / "deep" / "r.html")
    assert written == (tmp_path / "reports" / "deep" / "r.html").resolve()
    assert written.read_bytes() == b"<html>report</html>"


def test_write_report_without_a_stored_report_writes_nothing(client: Client, tmp_path: Path) -> None:
    evaluation = _stored_evaluation(client, None)
    assert write_report(client, evaluation, tmp_path / "reports" / "r.html") is None
    assert not (tmp_path / "reports").exists()


def test_to_dict_puts_the_file_in_the_report_key_which_keeps_its_place(client: Client, tmp_path: Path) -> None:
    evaluation = _stored_evaluation(client, b"x")
    assert ReportedEvaluation(evaluation).to_dict() == evaluation.to_dict()
    shape = ReportedEvaluation(evaluation, tmp_path / "r.html").to_dict()
    assert list(shape) == list(evaluation.to_dict()) and shape["report"] == str(tmp_path / "r.html")


@pytest.fixture
def holdout(client: Client, tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    frame["label"] = (frame["a"] + rng.normal(scale=0.3, size=200) > 0).astype(int)
    frame.to_csv(tmp_path / "h.csv", index=False)
    return mloop.Dataset.add(tmp_path / "h.csv", "h", client=client, private=True).dataset.ref


def test_evaluate_with_report_stores_the_evaluation_and_writes_its_report(
    client: Client, holdout: str, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(100, 2)), columns=["a", "b"])
    version = mloop.register_model(LogisticRegression().fit(x, (x["a"] > 0).astype(int)), "churn")
    result = evaluate_with_report(client, version.ref, holdout, target="label", report=tmp_path / "out" / "r.html")
    assert result.evaluation.data_ref == holdout and result.evaluation.rows == 200
    assert client.store.list_evaluations("churn", 1)[0].id == result.evaluation.id  # stored with the version
    assert result.report == (tmp_path / "out" / "r.html").resolve()
    assert result.report.read_bytes() == client.artifacts.get_bytes(result.evaluation.report_digest or "")
    assert result.to_dict()["report"] == str(result.report)

    again = evaluate_with_report(client, version.ref, holdout, target="label")  # no file asked for
    assert again.report is None and again.to_dict()["report"] is None and again.evaluation.report_digest
    with pytest.raises(NotFound):
        evaluate_with_report(client, version.ref, "data:nope/1", report=tmp_path / "never.html")
    assert not (tmp_path / "never.html").exists()

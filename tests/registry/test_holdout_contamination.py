"""Issue 8, item 1: the private holdout cannot leak into training unnoticed.

Each test is one way the holdout leaked before (self-granted access, a readable leftover copy, a raw blob
read, an edited ``info`` object, a model trained on the holdout passing its gate).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.artifacts import hash_file
from mloop.datasets.dataset import Dataset
from mloop.errors import AccessDenied, GateFailed
from mloop.tracking.client import Client


@pytest.fixture
def split(client: Client, tmp_path: Path) -> Any:
    rng = np.random.default_rng(3)
    n = 1200
    x = rng.normal(size=(n, 3))
    y = (2 * x[:, 0] - x[:, 1] + rng.logistic(size=n) > 0).astype(int)
    path = tmp_path / "churn.parquet"
    pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=y).to_parquet(path)
    mloop.Dataset.add(path, "churn", client=client)
    return mloop.split_dataset("data:churn/1", holdout=0.3, seed=0, stratify="label", client=client)


def _fit(frame: pd.DataFrame) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(frame.drop(columns=["label"]), frame["label"])


def _grant_role(client: Client) -> None:
    settings = client.workspace.settings
    client.workspace.settings = dataclasses.replace(settings, roles={client.actor: ("holdout-reader",)})


def _train_and_promote(client: Client, split: Any, frame_reader: Any) -> Any:
    with mloop.start_run("train") as run:
        model = _fit(frame_reader(run))
        version = run.log_model(model, "churn", input_example=split.train.to_pandas().drop(columns=["label"])[:3])
    mloop.evaluate(version.ref, split.holdout.ref)
    return version, lambda: mloop.promote("churn", version.version, to="production")


def test_holdout_access_is_refused_inside_a_run_and_without_the_role(client: Client, split: Any) -> None:
    with pytest.raises(AccessDenied, match="holdout-reader"), mloop.holdout_access("anything"):
        pass  # not even outside a run, without the role
    _grant_role(client)
    run = mloop.start_run("train")
    with run, pytest.raises(AccessDenied, match=run.ref), mloop.holdout_access("anything"):
        pass
    with mloop.holdout_access("audit of the labels"):
        assert len(split.holdout.to_pandas()) == split.holdout.info.rows
        with pytest.raises(AccessDenied, match="Cannot start a run inside holdout_access"):
            mloop.start_run("sneaky")
    overrides = client.events(types=["dataset.holdout_override"])
    assert [e.payload["purpose"] for e in overrides] == ["audit of the labels"]
    reads = client.events(types=["dataset.holdout_read"])
    assert reads[-1].payload["via"] == "override"


def test_no_readable_copy_is_left_behind(client: Client, split: Any) -> None:
    version = mloop.register_model(_fit(split.train.to_pandas()), "churn")
    local = client.workspace.settings.local_dir
    shared = local / "materialised" / split.holdout.info.manifest_digest.split(":", 1)[-1]
    shared.mkdir(parents=True)  # what an older mloop left: a readable copy in the shared cache
    (shared / "holdout.parquet").write_bytes(b"old copy")
    mloop.evaluate(version.ref, split.holdout.ref)
    assert not shared.exists()
    copies = [p for p in local.rglob("*") if p.is_file() and "artifacts" not in p.relative_to(local).parts]
    holdout_digests = {e.digest for e in split.holdout.files()}
    assert [p for p in copies if hash_file(p) in holdout_digests] == []  # only the blob store holds its bytes


def test_raw_blob_reads_of_a_holdout_are_refused_and_audited(client: Client, split: Any) -> None:
    digest = split.holdout.files()[0].digest
    with pytest.raises(AccessDenied, match=split.holdout.ref):
        client.artifacts.get_bytes(digest)
    with pytest.raises(AccessDenied, match=split.holdout.ref):
        client.artifacts.get_file(digest, client.workspace.settings.local_dir / "stolen.parquet")
    with pytest.raises(AccessDenied), client.artifacts.open(digest):
        pass
    assert not (client.workspace.settings.local_dir / "stolen.parquet").exists()
    denied = client.events(types=["dataset.holdout_denied"])
    assert len(denied) == 3 and denied[0].payload["blob"] == digest
    # public data is not guarded: the train split's blob reads as before
    assert client.artifacts.get_bytes(split.train.files()[0].digest)


def test_an_edited_info_object_does_not_unlock_the_holdout(client: Client, split: Any) -> None:
    forged = Dataset(client, dataclasses.replace(split.holdout.info, private=False))
    with pytest.raises(AccessDenied, match=split.holdout.ref):
        forged.to_pandas()
    with pytest.raises(AccessDenied):
        forged.path()


def test_clean_model_passes_the_built_in_check(client: Client, split: Any) -> None:
    version, promote = _train_and_promote(client, split, lambda run: split.train.to_pandas())
    report = promote()
    assert report.passed
    row = next(c for c in report.checks if c.check.startswith("uncontaminated"))
    assert row.passed and split.holdout.ref in row.measured
    assert split.holdout.ref not in version.datasets and split.train.ref in version.datasets


def test_refused_attempt_is_recorded_and_blocks_promotion(client: Client, split: Any) -> None:
    def sneaky(run: Any) -> pd.DataFrame:
        with contextlib.suppress(AccessDenied):
            split.holdout.to_pandas()
        return split.train.to_pandas()

    version, promote = _train_and_promote(client, split, sneaky)
    assert split.holdout.ref in client.store.get_model_version("churn", version.version).datasets
    with pytest.raises(GateFailed, match=r"contaminated: run:\w+ tried to read \(refused\) data:churn-holdout/1"):
        promote()
    with pytest.raises(GateFailed, match="contaminated"):  # a caller's policy cannot drop the check
        mloop.promote("churn", version.version, to="production", policy="approvals(1)")


def test_reading_the_data_the_holdout_was_split_from_is_contamination(client: Client, split: Any) -> None:
    _, promote = _train_and_promote(client, split, lambda run: mloop.get_dataset("data:churn/1").to_pandas())
    with pytest.raises(GateFailed, match="read data:churn/1, which data:churn-holdout/1 was split from") as info:
        promote()
    assert "approve" not in str(info.value).splitlines()[-1]  # the hint names the real fix
    assert "retrain" in str(info.value).splitlines()[-1]


def test_a_public_copy_of_the_holdout_is_contamination(client: Client, split: Any, tmp_path: Path) -> None:
    _grant_role(client)
    with mloop.holdout_access("make a copy"):
        copy = Path(split.holdout.path())
        (tmp_path / "copy").mkdir()
        (tmp_path / "copy" / copy.name).write_bytes(copy.read_bytes())
    mloop.Dataset.add(tmp_path / "copy" / copy.name, "innocent", client=client)
    from mloop.guard import _TAINT

    _TAINT.set(frozenset())  # a different process: only the digests can tell
    _, promote = _train_and_promote(client, split, lambda run: mloop.get_dataset("data:innocent/1").to_pandas())
    with pytest.raises(GateFailed, match="read data:innocent/1, which holds files identical to data:churn-holdout/1"):
        promote()


def test_runs_after_an_override_in_the_same_process_are_marked(client: Client, split: Any) -> None:
    _grant_role(client)
    with mloop.holdout_access("peek"):
        held = split.holdout.to_pandas()
    _, promote = _train_and_promote(client, split, lambda run: held)  # trained on rows held in memory
    with pytest.raises(GateFailed, match="was started after holdout_access read data:churn-holdout/1"):
        promote()

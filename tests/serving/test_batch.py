"""Batch scoring on real workspaces: CSV, Parquet and dataset-version inputs, chunking, workers, lineage, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mloop
from mloop.entities import ModelVersion
from mloop.errors import IntegrityError, InvalidInput, NotFound
from mloop.serving.batch import score_file
from mloop.tracking.client import Client


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"customer": np.arange(1000, 1000 + n), "age": rng.integers(18, 80, n).astype(float),
                         "income": rng.normal(50, 10, n), "plan": rng.choice(["basic", "pro"], n)})  # fmt: skip


def _pipeline() -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = make_column_transformer((StandardScaler(), ["age", "income"]), (OneHotEncoder(), ["plan"]))
    return make_pipeline(pre, LogisticRegression(max_iter=500))


@pytest.fixture
def trained(client: Client) -> tuple[ModelVersion, Any, pd.DataFrame]:
    data = _frame(400)
    x = data[["age", "income", "plan"]]
    y = ((x["age"] > 40) ^ (x["plan"] == "pro")).astype(int).to_numpy()
    model = _pipeline().fit(x, y)
    with client.start_run("train", "churn") as run:
        version = run.log_model(model, "churn", signature_data=x)
    assert version is not None
    return version, model, data


def test_parquet_in_chunks_keeps_row_ids_and_model_version(
    client: Client, trained: tuple[ModelVersion, Any, pd.DataFrame], tmp_path: Path
) -> None:
    version, model, _ = trained
    data = _frame(1234, seed=1)
    src = tmp_path / "customers.parquet"
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), src, row_group_size=300)
    seen: list[int] = []
    totals: list[int | None] = []
    result = score_file(client, "model:churn", src, tmp_path / "scores.parquet", chunk_rows=100,
                        on_start=totals.append, progress=seen.append)  # fmt: skip
    out = pq.read_table(result.output).to_pandas()
    assert result.rows == len(out) == 1234 and result.chunks == 13
    assert totals == [1234] and sum(seen) == 1234 and max(seen) == 100
    assert out["row_id"].tolist() == list(range(1234))
    assert set(out["model_version"]) == {version.ref}
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(data[["age", "income", "plan"]]))
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_csv_with_id_column_and_workers_registers_output_with_lineage(
    client: Client, trained: tuple[ModelVersion, Any, pd.DataFrame], tmp_path: Path
) -> None:
    version, model, _ = trained
    data = _frame(1000, seed=2).sample(frac=1, random_state=0)  # ids out of order: order must be kept
    src = tmp_path / "customers.csv"
    data.to_csv(src, index=False)
    result = score_file(client, version.ref, src, tmp_path / "scores.csv", chunk_rows=128, workers=2,
                        id_column="customer", name="churn-scores")  # fmt: skip
    out = pd.read_csv(result.output)
    assert out["customer"].tolist() == data["customer"].tolist()
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(data[["age", "income", "plan"]]))
    assert result.dataset == "data:churn-scores/1" and result.workers == 2
    ds = mloop.get_dataset("data:churn-scores/1")
    assert ds.info.rows == 1000 and ds.info.meta["input"] == str(src.resolve())
    edges = {(e.source, e.relation) for e in client.store.list_lineage(ds.ref, direction="up")}
    assert (version.ref, "model") in edges


def test_dataset_version_input_gets_an_input_lineage_edge(
    client: Client, trained: tuple[ModelVersion, Any, pd.DataFrame], tmp_path: Path
) -> None:
    version, model, data = trained
    folder = tmp_path / "dump"
    folder.mkdir()
    data.iloc[:150].to_parquet(folder / "a.parquet", index=False)
    data.iloc[150:].to_parquet(folder / "b.parquet", index=False)
    source = mloop.Dataset.add(folder, "customers", client=client).dataset
    result = score_file(client, "model:churn/1", source.ref, tmp_path / "s.parquet", chunk_rows=64)
    out = pq.read_table(result.output).to_pandas()
    assert out["row_id"].tolist() == list(range(400)) and result.input == source.ref
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(data[["age", "income", "plan"]]))
    assert result.dataset is not None
    edges = {(e.source, e.relation) for e in client.store.list_lineage(result.dataset, direction="up")}
    assert {(source.ref, "input"), (version.ref, "model")} <= edges


def test_missing_columns_are_named(
    client: Client, trained: tuple[ModelVersion, Any, pd.DataFrame], tmp_path: Path
) -> None:
    src = tmp_path / "bad.csv"
    _frame(10).drop(columns=["income", "plan"]).to_csv(src, index=False)
    with pytest.raises(InvalidInput, match=r"lacks the column\(s\) \['income', 'plan'\]"):
        score_file(client, "model:churn", src, tmp_path / "out.csv")
    assert not list(tmp_path.glob("*out*"))


def test_bad_paths_and_formats(client: Client, trained: tuple[ModelVersion, Any, pd.DataFrame], tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    _frame(10).to_csv(src, index=False)
    with pytest.raises(NotFound, match=r"nope\.csv"):
        score_file(client, "model:churn", tmp_path / "nope.csv", tmp_path / "out.csv")
    with pytest.raises(InvalidInput, match=r"unknown output format '\.xlsx'"):
        score_file(client, "model:churn", src, tmp_path / "out.xlsx")
    weird = tmp_path / "in.xlsx"
    weird.write_text("x")
    with pytest.raises(InvalidInput, match=r"in\.xlsx"):
        score_file(client, "model:churn", weird, tmp_path / "out.csv")
    with pytest.raises(InvalidInput, match="'nope'"):
        score_file(client, "model:churn", src, tmp_path / "out.csv", id_column="nope")
    with pytest.raises(NotFound):
        score_file(client, "model:other", src, tmp_path / "out.csv")


class Fussy:
    """Fails on the fifth chunk (an impossible age), after four chunks were written."""

    def predict(self, x: Any) -> np.ndarray:
        if (x["age"] > 1000).any():
            raise ValueError("boom")
        return np.zeros(len(x))


def test_a_failure_midway_leaves_no_output(client: Client, tmp_path: Path) -> None:
    mloop.register_model(Fussy(), "fussy")
    data = _frame(500)
    data.loc[450, "age"] = 5000
    src = tmp_path / "in.parquet"
    data.to_parquet(src, index=False)
    with pytest.raises(ValueError, match="boom"):
        score_file(client, "model:fussy", src, tmp_path / "out.parquet", chunk_rows=100)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "ws") == ["in.parquet"]


def test_a_tampered_model_is_refused_before_reading(
    client: Client, trained: tuple[ModelVersion, Any, pd.DataFrame], tmp_path: Path
) -> None:
    version, _, data = trained
    mloop.load_model(version.ref)
    cached = client.workspace.settings.local_dir / "models" / version.id / "model.pkl"
    blob = bytearray(cached.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    cached.write_bytes(bytes(blob))
    src = tmp_path / "in.csv"
    data.to_csv(src, index=False)
    with pytest.raises(IntegrityError, match=r"model\.pkl"):
        score_file(client, version.ref, src, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_cli_score_json_and_errors(
    client: Client, trained: tuple[ModelVersion, Any, pd.DataFrame], tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from mloop.cli.app import app

    version, model, data = trained
    src = tmp_path / "in.parquet"
    data.to_parquet(src, index=False)
    uri = ["--uri", client.settings.store_uri]
    runner = CliRunner()
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, [*uri, "score", "model:churn", str(src), "-o", str(out), "--json", "--name", "s"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 400 and summary["model"] == version.ref and summary["dataset"] == "data:s/1"
    assert 0 < summary["load_seconds"] <= summary["seconds"]
    np.testing.assert_array_equal(pd.read_csv(out)["prediction"], model.predict(data[["age", "income", "plan"]]))
    text = runner.invoke(app, [*uri, "score", "model:churn", str(src), "-o", str(tmp_path / "t.parquet")])
    assert text.exit_code == 0 and "Scored 400 rows" in text.stdout and "data:churn-scores/1" in text.stdout
    bad = runner.invoke(app, [*uri, "score", "model:churn", str(src), "-o", str(tmp_path / "x.txt")])
    assert bad.exit_code != 0 and "unknown output format '.txt'" in bad.output and "Traceback" not in bad.output


class Zero:
    def predict(self, x: Any) -> np.ndarray:
        return np.zeros(len(x))


def test_memory_stays_flat_over_many_row_groups(client: Client, tmp_path: Path) -> None:
    mloop.register_model(Zero(), "zero")
    src = tmp_path / "big.parquet"
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(src, pa.schema([(f"f{i}", pa.float64()) for i in range(10)])) as writer:
        for _ in range(40):  # 40 row groups of 5,000 rows x 10 floats (400 kB each)
            writer.write_table(pa.table({f"f{i}": rng.normal(size=5000) for i in range(10)}))
    allocated: list[int] = []
    before = pa.total_allocated_bytes()
    result = score_file(client, "model:zero", src, tmp_path / "out.parquet", chunk_rows=5000, register=False,
                        progress=lambda n: allocated.append(pa.total_allocated_bytes()))  # fmt: skip
    assert result.rows == 200_000 and len(allocated) == 40
    held = max(allocated) - before  # a chunk is 400 kB in, 1 MB with its output; the file is 16 MB
    assert held < 4_000_000, f"Arrow held {held} bytes while scoring 40 chunks"


def test_an_empty_input_gives_a_header_only_output(
    client: Client, trained: tuple[ModelVersion, Any, pd.DataFrame], tmp_path: Path
) -> None:
    src = tmp_path / "empty.csv"
    src.write_text("customer,age,income,plan\n")
    result = score_file(client, "model:churn", src, tmp_path / "out.parquet", id_column="customer", name="empty")
    table = pq.read_table(result.output)
    assert result.rows == 0 and result.chunks == 0 and table.num_rows == 0
    assert table.column_names == ["customer", "prediction", "model_version"]

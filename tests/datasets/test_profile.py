"""Table profiles: statistics against numpy/pandas, chunking invariance, formats, serialisation, errors."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.datasets import profile as profile_module
from mloop.datasets.profile import compare_schemas, profile_table
from mloop.datasets.sketches import QUANTILES
from mloop.entities.profile import ColumnKind, ColumnProfile, TableProfile
from mloop.errors import InvalidInput, NotFound

NAN, INF = math.nan, math.inf


def _mixed(n: int = 2000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, n)
    x[rng.random(n) < 0.05] = np.nan
    cats = np.array(["red", "green", "blue", "cyan", "mauve"], dtype=object)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    return pa.table(
        {
            "x": pa.array(x, mask=rng.random(n) < 0.05),
            "k": pa.array(rng.integers(-50, 1000, n)),
            "color": pa.array(cats[rng.zipf(1.5, n) % 5], mask=rng.random(n) < 0.1),
            "flag": pa.array(rng.random(n) < 0.3),
            "when": pa.array(start + rng.integers(0, 10**12, n).astype("timedelta64[us]")),
        }
    )


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-9)
    return bool(a == b)


def assert_same_profile(a: TableProfile, b: TableProfile, *, quantiles: bool = True) -> None:
    """Exact statistics equal; mean/std equal up to rounding; quantiles optionally compared."""
    assert a.rows == b.rows
    assert a.schema == b.schema
    for ca, cb in zip(a.columns, b.columns, strict=True):
        da, db = ca.to_dict(), cb.to_dict()
        for key in ("mean", "std"):
            assert _close(getattr(ca, key), getattr(cb, key)), (ca.name, key, da.get(key), db.get(key))
            da.pop(key, None), db.pop(key, None)
        qa, qb = da.pop("quantiles", {}), db.pop("quantiles", {})
        if quantiles:
            assert qa.keys() == qb.keys()
            assert all(_close(ca.quantiles[q], cb.quantiles[q]) for q in ca.quantiles), (ca.name, qa, qb)
        assert da == db, ca.name


def test_numeric_statistics_match_numpy_and_pandas() -> None:
    t = _mixed()
    p = profile_table(t)
    x = t.column("x").to_pandas()
    col = p.column("x")
    assert (col.kind, col.type) == (ColumnKind.NUMERIC, "double")
    assert col.count == x.count()
    assert col.missing == x.isna().sum()
    assert (col.min, col.max) == (x.min(), x.max())
    assert col.mean == pytest.approx(x.mean(), rel=1e-12)
    assert col.std == pytest.approx(x.std(), rel=1e-12)  # sample standard deviation, as pandas
    values = x.dropna().to_numpy()
    assert list(col.quantiles) == list(QUANTILES)
    assert list(col.quantiles.values()) == pytest.approx(np.quantile(values, QUANTILES), rel=1e-12)
    counts, edges = np.histogram(values, bins=20)
    assert col.histogram is not None
    assert list(col.histogram.counts) == counts.tolist()
    assert list(col.histogram.edges) == edges.tolist()
    k = p.column("k")
    assert isinstance(k.min, int) and isinstance(k.max, int)
    assert (k.min, k.max) == (pc_min(t, "k"), pc_max(t, "k"))


def pc_min(t: pa.Table, name: str) -> Any:
    return min(v for v in t.column(name).to_pylist() if v is not None)


def pc_max(t: pa.Table, name: str) -> Any:
    return max(v for v in t.column(name).to_pylist() if v is not None)


def test_categorical_boolean_and_datetime_statistics() -> None:
    t = _mixed()
    p = profile_table(t)
    colors = t.column("color").to_pandas()
    color = p.column("color")
    assert color.kind is ColumnKind.CATEGORICAL
    assert (color.count, color.missing, color.cardinality) == (colors.count(), colors.isna().sum(), colors.nunique())
    expected = sorted(colors.value_counts().items(), key=lambda kv: (-kv[1], kv[0]))
    assert list(color.top) == [(str(v), int(n)) for v, n in expected]
    assert sum(color.frequencies.values()) == pytest.approx(1.0)
    flag = p.column("flag")
    trues = int(t.column("flag").to_pandas().sum())
    assert flag.kind is ColumnKind.BOOLEAN
    assert dict(flag.top) == {"true": trues, "false": 2000 - trues}
    when = p.column("when")
    assert when.kind is ColumnKind.DATETIME and when.type == "timestamp[us]"
    assert when.min == pc_min(t, "when").isoformat() and when.max == pc_max(t, "when").isoformat()


def test_edge_cases_empty_all_null_infinite_and_other_columns() -> None:
    empty = profile_table(pa.table({"a": pa.array([], pa.float64()), "s": pa.array([], pa.string())}))
    assert empty.rows == 0
    assert [(c.count, c.missing, c.min, c.histogram) for c in empty.columns] == [(0, 0, None, None)] * 2
    t = pa.table(
        {
            "nulls": pa.array([None, None, None], pa.float64()),
            "nans": pa.array([NAN, None, NAN]),
            "text": pa.array([None, None, None], pa.string()),
            "void": pa.nulls(3),
            "inf": pa.array([1.0, INF, -INF]),
            "same": pa.array([7, 7, 7]),
            "nested": pa.array([[1], None, []]),
            "tz": pa.array([1_700_000_000_123_456_789] * 3, pa.timestamp("ns", tz="Europe/Paris")),
            "day": pa.array([dt.date(2020, 2, 29), None, dt.date(1999, 12, 31)]),
        }
    )
    p = profile_table(t)
    for name in ("nulls", "nans", "text", "void"):
        assert (p.column(name).count, p.column(name).missing) == (0, 3), name
    inf = p.column("inf")
    assert (inf.min, inf.max, math.isnan(inf.mean or 0.0), math.isnan(inf.std or 0.0)) == (-INF, INF, True, True)
    assert inf.histogram is not None and sum(inf.histogram.counts) == 3  # infinities in the outer bins
    same = p.column("same")
    assert same.histogram is not None and (same.histogram.edges, same.histogram.counts) == ((7.0, 7.0), (3,))
    assert (same.std, same.quantiles[0.5]) == (0.0, 7.0)
    assert p.column("nested").kind is ColumnKind.OTHER and p.column("nested").count == 2
    assert p.column("tz").min == "2023-11-14T22:13:20.123456789+00:00"
    assert (p.column("day").min, p.column("day").max) == ("1999-12-31", "2020-02-29")
    assert TableProfile.from_json(p.to_json()) == p


mixed_values = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([NAN, INF, -INF, 0.0]),
    st.none(),
)


@settings(max_examples=40, deadline=None)
@given(
    floats=st.lists(mixed_values, max_size=120),
    data=st.data(),
)
def test_profiling_in_chunks_equals_profiling_at_once(floats: list[float | None], data: st.DataObject) -> None:
    n = len(floats)
    ints = data.draw(st.lists(st.one_of(st.integers(-(10**12), 10**12), st.none()), min_size=n, max_size=n))
    words = data.draw(st.lists(st.one_of(st.sampled_from("abcdefghij"), st.none()), min_size=n, max_size=n))
    bools = data.draw(st.lists(st.one_of(st.booleans(), st.none()), min_size=n, max_size=n))
    t = pa.table(
        {
            "f": pa.array(floats, pa.float64()),
            "i": pa.array(ints, pa.int64()),
            "w": pa.array(words, pa.string()),
            "d": pa.array(words, pa.string()).dictionary_encode(),
            "b": pa.array(bools, pa.bool_()),
        }
    )
    whole = profile_table(t)
    chunk_rows = data.draw(st.integers(1, max(n, 1)))
    chunked = profile_table(t, chunk_rows=chunk_rows, threads=2)
    assert_same_profile(whole, chunked, quantiles=not any(v is not None and math.isinf(v) for v in floats))
    assert TableProfile.from_json(chunked.to_json()) == chunked
    assert TableProfile.from_json(whole.to_json()).to_json() == whole.to_json()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(50, 3000), chunk_rows=st.integers(10, 500))
def test_chunked_quantiles_stay_within_the_rank_bound(seed: int, n: int, chunk_rows: int) -> None:
    x = np.random.default_rng(seed).lognormal(0, 2, n)
    points = 16
    p = profile_table(pa.table({"x": x}), chunk_rows=chunk_rows, sketch_points=points)
    xs = np.sort(x)
    for q, value in p.column("x").quantiles.items():
        lo, hi = np.searchsorted(xs, value, "left"), np.searchsorted(xs, value, "right")
        target = q * (n - 1)
        error = 0.0 if lo - 1 <= target <= hi else min(abs(target - lo), abs(target - hi))
        assert error <= 1.5 * n / points + 1  # no compaction below 32 * points values per chunk-run


def test_high_cardinality_switches_to_approximate_and_keeps_heavy_hitters() -> None:
    values = [f"u{i:04d}" for i in range(300)] + ["h0", "h1", "h2"] * 200
    rng = np.random.default_rng(1)
    rng.shuffle(values)
    t = pa.table({"id": values})
    p = profile_table(t, max_distinct=50, chunk_rows=100)
    col = p.column("id")
    assert col.approximate
    assert col.cardinality == 303  # the k-minimum-values sketch is exact below its 16384 hashes
    assert list(col.top[:3]) == [("h0", 200), ("h1", 200), ("h2", 200)]
    exact = profile_table(t).column("id")
    assert (exact.approximate, exact.cardinality) == (False, 303)
    assert TableProfile.from_json(p.to_json()).column("id").approximate


def _write_all_formats(t: pa.Table, root: Path) -> dict[str, Path]:
    pq.write_table(t, root / "t.parquet", row_group_size=300)
    pcsv.write_csv(t, root / "t.csv")
    (root / "t.jsonl").write_text("".join(json.dumps(r, default=str) + "\n" for r in t.to_pylist()))
    return {"parquet": root / "t.parquet", "csv": root / "t.csv", "jsonl": root / "t.jsonl"}


def test_csv_parquet_and_jsonl_give_the_same_profile(tmp_path: Path) -> None:
    t = _mixed(1000).drop_columns(["when"])
    reference = profile_table(t)
    for fmt, path in _write_all_formats(t, tmp_path).items():
        got = profile_table(path)
        assert got.rows == 1000
        for name in ("x", "k", "color"):
            a, b = reference.column(name).to_dict(), got.column(name).to_dict()
            if fmt != "parquet":
                a.pop("type"), b.pop("type")  # text formats infer their own types (e.g. NaN written as text)
                a.pop("std", None), b.pop("std", None)
                a.pop("mean", None), b.pop("mean", None)
            assert a == b, (fmt, name)


@pytest.mark.parametrize("stats", [True, False])
def test_folder_of_parquet_files_in_row_group_chunks_equals_the_whole(tmp_path: Path, stats: bool) -> None:
    t = _mixed(3000, seed=5)
    for i in range(3):
        part = t.slice(i * 1000, 1000)
        pq.write_table(part, tmp_path / f"part-{i}.parquet", row_group_size=250, write_statistics=stats)
    whole = profile_table(t)
    folder = profile_table(tmp_path, chunk_rows=400)
    assert_same_profile(whole, folder, quantiles=False)
    x = folder.column("x")
    assert x.quantiles[0.5] == pytest.approx(whole.column("x").quantiles[0.5], rel=1e-6)


def test_streamed_text_files_take_a_second_pass_for_histograms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = _mixed(1500, seed=2).drop_columns(["when"])
    paths = _write_all_formats(t, tmp_path)
    for fmt in ("csv", "jsonl"):
        in_memory = profile_table(paths[fmt], chunk_rows=200)
        with monkeypatch.context() as m:
            m.setattr(profile_module, "IN_MEMORY_BYTES", 0)
            streamed = profile_table(paths[fmt], chunk_rows=200)
        assert_same_profile(in_memory, streamed, quantiles=False)


def test_pandas_dataframe_source() -> None:
    df = pd.DataFrame(
        {
            "n": [1.0, None, 3.0, 4.0],
            "c": pd.Categorical(["a", "b", "a", None]),
            "s": ["x", None, "y", "x"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-01-03"]),
        }
    )
    p = profile_table(df)
    assert p.rows == 4
    assert p.column("n").mean == pytest.approx(df["n"].mean())
    assert p.column("c").kind is ColumnKind.CATEGORICAL and p.column("c").top == (("a", 2), ("b", 1))
    assert p.column("t").max == "2024-01-03T00:00:00"
    mixed = pd.DataFrame({"bad": [1, "x", 2.5]})
    with pytest.raises(InvalidInput, match="DataFrame"):
        profile_table(mixed)


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"missing\.parquet"):
        profile_table(tmp_path / "missing.parquet")
    with pytest.raises(InvalidInput, match="Cannot profile a dict"):
        profile_table({"a": [1]})
    with pytest.raises(InvalidInput, match="bins must be a positive integer, got 0"):
        profile_table(pa.table({"a": [1]}), bins=0)
    dupes = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(InvalidInput, match=r"duplicate column names \['a'\]"):
        profile_table(dupes)


def test_column_lookup_and_schema() -> None:
    p = profile_table(pa.table({"a": [1], "b": ["x"]}))
    assert p.schema == [("a", "int64"), ("b", "string")]
    assert p.column("b").top == (("x", 1),)
    with pytest.raises(NotFound, match=r"no column 'z'; its columns are: 'a', 'b'"):
        p.column("z")


def test_compare_schemas() -> None:
    a = profile_table(pa.table({"id": [1], "x": [1.0], "gone": ["a"]}))
    b = profile_table(pa.table({"id": ["1"], "x": [1.0], "new": [True]}))
    diff = compare_schemas(a, b)
    assert diff.added == (("new", "bool"),)
    assert diff.removed == (("gone", "string"),)
    assert diff.retyped == (("id", "int64", "string"),)
    assert diff.changed and not compare_schemas(a, a).changed
    assert diff.to_dict()["retyped"] == [["id", "int64", "string"]]


def test_json_is_stable_sorted_versioned_and_strict() -> None:
    p = profile_table(pa.table({"x": [1.0, INF, -INF, 2.0], "s": ["b", "a", "b", None]}))
    text = p.to_json()
    assert text == profile_table(pa.table({"x": [1.0, INF, -INF, 2.0], "s": ["b", "a", "b", None]})).to_json()
    doc = json.loads(text)  # strict JSON: no bare NaN/Infinity
    assert doc["format"] == 1 and list(doc) == sorted(doc)
    assert doc["columns"][0]["mean"] == "NaN" and doc["columns"][0]["max"] == "Infinity"
    back = TableProfile.from_json(text)
    assert back == p and math.isnan(back.column("x").mean or 0.0)
    assert back.to_json() == text
    assert TableProfile.from_json(p.to_json(indent=2)) == p


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": 99, "rows": 0, "columns": []}', "format 99 is not supported"),
        ('{"format": 1, "rows": -1, "columns": []}', "rows must be a non-negative integer"),
        ('{"format": 1, "rows": 1, "columns": [{"name": "a", "kind": "weird"}]}', "kind is 'weird'"),
        ('{"format": 1, "rows": 1, "columns": [{"name": "a", "type": "x", "kind": "numeric"}]}', "count"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_from_json_rejects_bad_documents(text: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        TableProfile.from_json(text)


def test_column_profile_round_trip_keeps_int_bounds_and_types() -> None:
    col = ColumnProfile("k", "int64", ColumnKind.NUMERIC, 3, 0, min=-(2**62), max=2**62, mean=0.0, std=1.0)
    back = ColumnProfile.from_dict(json.loads(json.dumps(col.to_dict())))
    assert back == col and isinstance(back.min, int) and back.max == 2**62


def test_profiling_parquet_does_not_import_pandas(tmp_path: Path) -> None:
    pq.write_table(_mixed(100), tmp_path / "t.parquet")
    code = (
        "import sys; from mloop.datasets.profile import profile_table; "
        f"p = profile_table({str(tmp_path / 't.parquet')!r}); print(p.rows, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["100", "False"]  # pandas' import alone costs more than profiling 1M rows

"""Reading tables: formats by suffix, folders of same-schema files, streaming, cheap Parquet metadata."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from mloop.datasets import tables
from mloop.errors import InvalidInput, NotFound


def _table(n: int = 10, offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "x": pa.array([float(i + offset) / 2 for i in range(n)]),
            "k": pa.array([i + offset for i in range(n)]),
            "s": pa.array([f"v{(i + offset) % 3}" for i in range(n)]),
        }
    )


def _write_jsonl(path: Path, table: pa.Table) -> None:
    import json

    path.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.TSV", "csv"),
        ("a.csv.gz", "csv"),
        ("a.jsonl.bz2", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.jsonl", "jsonl"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.parquet.gz", None),
        ("a.txt", None),
        ("csv", None),
        ("a.json", None),
    ],
)
def test_table_format_by_suffix(name: str, expected: str | None) -> None:
    assert tables.table_format(name) == expected


def test_each_format_round_trips(tmp_path: Path) -> None:
    t = _table()
    pq.write_table(t, tmp_path / "t.parquet")
    pcsv.write_csv(t, tmp_path / "t.csv")
    (tmp_path / "t.tsv").write_text("x\tk\ts\n" + "".join(f"{r['x']}\t{r['k']}\t{r['s']}\n" for r in t.to_pylist()))
    with gzip.open(tmp_path / "t.csv.gz", "wb") as f:
        f.write((tmp_path / "t.csv").read_bytes())
    _write_jsonl(tmp_path / "t.jsonl", t)
    for name in ("t.parquet", "t.csv", "t.tsv", "t.csv.gz", "t.jsonl"):
        got = tables.read_table(tmp_path / name)
        assert got.equals(t), name
        assert tables.row_count(tmp_path / name) == 10
        assert tables.table_schema(tmp_path / name).names == ["x", "k", "s"]


def test_folder_is_concatenated_in_path_order_skipping_hidden(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    pq.write_table(_table(5, 0), tmp_path / "a.parquet")
    pq.write_table(_table(5, 5), tmp_path / "sub" / "b.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".hidden.parquet").write_text("not parquet")
    got = tables.read_table(tmp_path)
    assert got.column("k").to_pylist() == list(range(10))
    files, fmt = tables.table_files(tmp_path)
    assert fmt == "parquet"
    assert [f.name for f in files] == ["a.parquet", "b.parquet"]
    assert tables.row_count(tmp_path) == 10


def test_int_and_double_files_unify_to_double(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("v\n1\n2\n")
    (tmp_path / "b.csv").write_text("v\n1.5\n")
    got = tables.read_table(tmp_path)
    assert got.schema.field("v").type == pa.float64()
    assert got.column("v").to_pylist() == [1.0, 2.0, 1.5]
    batches = list(tables.iter_batches(tmp_path))
    assert all(b.schema.field("v").type == pa.float64() for b in batches)


def test_files_with_different_columns_fail_naming_files_and_columns(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1], "b": [2]}), tmp_path / "one.parquet")
    pq.write_table(pa.table({"a": [1], "c": [2]}), tmp_path / "two.parquet")
    with pytest.raises(InvalidInput) as err:
        tables.read_table(tmp_path)
    msg = str(err.value)
    assert "one.parquet" in msg and "two.parquet" in msg and "['c']" in msg and "['b']" in msg
    assert tables.is_table_dataset(tmp_path, ["one.parquet", "two.parquet"]) is None


def test_incompatible_types_fail_naming_the_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1]}), tmp_path / "one.parquet")
    pq.write_table(pa.table({"a": ["x"]}), tmp_path / "two.parquet")
    with pytest.raises(InvalidInput, match=r"Column 'a' is int64 in '.*one.parquet' but string in '.*two.parquet'"):
        tables.table_schema(tmp_path)


def test_bad_sources_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"nope\.csv"):
        tables.read_table(tmp_path / "nope.csv")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match=r"notes\.txt.*format="):
        tables.read_table(tmp_path / "notes.txt")
    with pytest.raises(InvalidInput, match="holds no table files"):
        tables.read_table(tmp_path)
    pq.write_table(_table(), tmp_path / "a.parquet")
    pcsv.write_csv(_table(), tmp_path / "b.csv")
    with pytest.raises(InvalidInput, match="mix formats"):
        tables.read_table(tmp_path)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InvalidInput, match=r"Cannot read '.*broken.parquet' as parquet"):
        tables.read_table(tmp_path / "broken.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidInput, match=r"empty\.csv"):
        tables.read_table(tmp_path / "empty.csv")
    with pytest.raises(InvalidInput, match="Unknown table format 'xls'"):
        tables.read_table(tmp_path / "b.csv", format="xls")
    with pytest.raises(InvalidInput, match="non-empty list"):
        tables.read_table([])


def test_format_override_reads_any_suffix(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("a,b\n1,x\n")
    assert tables.read_table(tmp_path / "data.txt", format="csv").to_pylist() == [{"a": 1, "b": "x"}]


def test_csv_empty_fields_are_missing_also_in_text(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("n,s\n1,a\n,\nNA,null\n")
    got = tables.read_table(tmp_path / "t.csv")
    assert got.column("n").null_count == 2
    assert got.column("s").null_count == 2


def test_csv_quoted_values_may_span_lines_across_blocks(tmp_path: Path) -> None:
    rows = "".join(f'{i},"line one\nline {i}"\n' for i in range(3000))
    (tmp_path / "t.csv").write_text("n,note\n" + rows)
    assert tables.read_table(tmp_path / "t.csv").num_rows == 3000
    batches = list(tables.iter_batches(tmp_path / "t.csv", block_size=4096))
    assert sum(b.num_rows for b in batches) == 3000
    assert batches[-1].column("note")[-1].as_py() == "line one\nline 2999"


def test_iter_batches_streams_bounded_batches(tmp_path: Path) -> None:
    t = _table(1000)
    pq.write_table(t, tmp_path / "t.parquet", row_group_size=300)
    pcsv.write_csv(t, tmp_path / "t.csv")
    _write_jsonl(tmp_path / "t.jsonl", t)
    for name in ("t.parquet", "t.csv", "t.jsonl"):
        batches = list(tables.iter_batches(tmp_path / name, batch_rows=128, block_size=4096))
        assert all(0 < b.num_rows <= 128 for b in batches), name
        assert pa.Table.from_batches(batches).equals(t), name
    projected = list(tables.iter_batches(tmp_path / "t.csv", columns=["s", "k"]))
    assert projected[0].schema.names == ["s", "k"]
    dicts = next(tables.iter_batches(tmp_path / "t.parquet", dictionary_strings=True))
    assert pa.types.is_dictionary(dicts.schema.field("s").type)
    with pytest.raises(NotFound, match=r"no columns \['zz'\]"):
        list(tables.iter_batches(tmp_path / "t.csv", columns=["zz"]))
    with pytest.raises(InvalidInput, match="batch_rows"):
        list(tables.iter_batches(tmp_path / "t.csv", batch_rows=0))


def test_streamed_csv_with_a_late_type_change_names_the_file(tmp_path: Path) -> None:
    rows = "\n".join(["1000000"] * (tables.INFER_BYTES // 8 + 10))  # ints beyond the first MB ...
    (tmp_path / "late.csv").write_text("v\n" + rows + "\n1.5\n")  # ... then a float
    with pytest.raises(InvalidInput, match=r"late\.csv.*first 1 MB"):
        list(tables.iter_batches(tmp_path / "late.csv"))
    # Reading whole files infers from all rows.
    assert tables.read_table(tmp_path / "late.csv").schema.field("v").type == pa.float64()


def test_parquet_metadata_is_cheap_and_exact(tmp_path: Path) -> None:
    t = pa.table({"x": [3.0, -1.0, None, 2.5], "k": [5, 1, 9, 2], "s": ["a", "b", "c", "d"]})
    pq.write_table(t, tmp_path / "a.parquet", row_group_size=2)
    pq.write_table(pa.table({"x": [10.0], "k": [0], "s": ["e"]}), tmp_path / "b.parquet")
    assert tables.row_count(tmp_path) == 5
    assert tables.column_ranges(tmp_path) == {"x": (-1.0, 10.0), "k": (0, 9)}
    pq.write_table(t, tmp_path / "nostats.parquet", write_statistics=False)
    assert tables.column_ranges(tmp_path / "nostats.parquet") == {}
    pcsv.write_csv(t, tmp_path / "t.csv")
    assert tables.column_ranges(tmp_path / "t.csv") == {}


def test_row_group_spans_group_whole_row_groups(tmp_path: Path) -> None:
    pq.write_table(_table(10), tmp_path / "a.parquet", row_group_size=3)  # groups of 3, 3, 3, 1
    spans = tables.row_group_spans(tmp_path / "a.parquet", target_rows=6)
    assert [(s.row_groups, s.rows) for s in spans] == [((0, 1), 6), ((2, 3), 4)]
    part = tables.read_span(spans[1], ["k", "s"], dictionary_strings=True)
    assert part.column("k").to_pylist() == [6, 7, 8, 9]
    assert pa.types.is_dictionary(part.schema.field("s").type)
    wide = pa.schema([("k", pa.float64()), ("s", pa.string()), ("x", pa.float64())])
    cast = tables.read_span(spans[0], ["k"], schema=wide)
    assert cast.schema.field("k").type == pa.float64()
    pcsv.write_csv(_table(), tmp_path / "t.csv")
    with pytest.raises(InvalidInput, match="only in Parquet"):
        tables.row_group_spans(tmp_path / "t.csv")


def test_visible_files_skip_hidden_parts_and_explicit_hidden_names(tmp_path: Path) -> None:
    (tmp_path / ".ipynb_checkpoints").mkdir()
    for name in ("a.csv", ".ipynb_checkpoints/a-checkpoint.csv", "_SUCCESS", "b.csv"):
        (tmp_path / name).write_text("x\n1\n")
    listed = ["b.csv", "_SUCCESS", ".ipynb_checkpoints/a-checkpoint.csv", "a.csv"]
    assert tables.visible_files(tmp_path, listed) == [tmp_path / "a.csv", tmp_path / "b.csv"]
    # Explicit lists never read '_'/'.' files (e.g. _SUCCESS, _metadata) as part of the table.
    assert tables.read_table([tmp_path / n for n in listed], format="csv").num_rows == 3
    with pytest.raises(InvalidInput, match="start with"):
        tables.read_table([tmp_path / "_SUCCESS"], format="csv")


def test_is_table_dataset(tmp_path: Path) -> None:
    pq.write_table(_table(), tmp_path / "a.parquet")
    pq.write_table(_table(), tmp_path / "b.parquet")
    (tmp_path / ".DS_Store").write_text("")
    files = ["a.parquet", "b.parquet", ".DS_Store"]
    assert tables.is_table_dataset(tmp_path, files) == "parquet"
    assert tables.is_table_dataset(tmp_path / "a.parquet", []) == "parquet"
    (tmp_path / "readme.md").write_text("hi")
    assert tables.is_table_dataset(tmp_path, [*files, "readme.md"]) is None
    assert tables.is_table_dataset(tmp_path, [".DS_Store"]) is None
    (tmp_path / "bad.csv").write_text("")
    assert tables.is_table_dataset(tmp_path / "bad.csv", []) is None
    (tmp_path / "c.csv").write_text("x,k,s\n1,2,a\n")
    assert tables.is_table_dataset(tmp_path, ["c.csv"]) == "csv"


def test_candidate_format_looks_only_at_names(tmp_path: Path) -> None:
    from mloop.datasets.formats import candidate_format

    assert candidate_format(tmp_path, ["a.parquet", "sub/b.pq", ".DS_Store", "_SUCCESS"]) == "parquet"
    assert candidate_format(tmp_path, ["a.csv", "b.tsv.gz"]) == "csv"
    assert candidate_format(tmp_path, ["a.csv", "b.parquet"]) is None
    assert candidate_format(tmp_path, ["a.bin", "b.csv"]) is None
    assert candidate_format(tmp_path, [".hidden.csv"]) is None
    (tmp_path / "one.jsonl").write_text("{}\n")
    assert candidate_format(tmp_path / "one.jsonl", []) == "jsonl"

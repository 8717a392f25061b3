"""Batch scoring: a registered model over a CSV/Parquet file, folder or dataset version, in chunks.

>>> result = score_file(ctx, "model:churn@production", "data/customers.parquet", "scores.parquet")  # doctest: +SKIP

The model is loaded only through the registry's verified loader. The input is read in chunks (Parquet by
record batches, CSV by blocks) so memory stays flat whatever the file's size; the output is written
incrementally to a temporary file beside ``output`` and renamed at the end, so a crash leaves no half output.
Each output row keeps a row id (the input's ``id_column``, or the row's position in the input) and the model
version. With ``workers > 1`` chunks are scored in that many processes (each loads and verifies the model
once), at most ``2 * workers`` chunks in flight, and written in input order.

The output is then registered as a dataset version (``name``, default ``<model>-scores``) with lineage edges
from the model version (``model``) and, for a dataset-version input, from the input (``input``); a file
input is recorded in the version's metadata (``meta["input"]``).
"""

from __future__ import annotations

import functools
import os
import pickle
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, NotFound
from mloop.registry.loader import load_model, resolve_model

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from mloop.context import Context
    from mloop.entities import ModelVersion
    from mloop.flavors import LoadedModel

__all__ = ["DEFAULT_CHUNK_ROWS", "ScoreResult", "output_format", "score_file"]

DEFAULT_CHUNK_ROWS = 100_000
ROW_ID = "row_id"
MODEL_VERSION = "model_version"
PREDICTION = "prediction"
_OUTPUT_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_CSV_BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class ScoreResult:
    """What a scoring produced: the output file, its row count and the dataset version it was registered as."""

    model: str
    input: str
    output: Path
    rows: int
    chunks: int
    workers: int
    seconds: float
    dataset: str | None
    load_seconds: float = 0.0  # of ``seconds``: resolving, verifying and loading the model

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "input": self.input, "output": str(self.output), "rows": self.rows,
                "chunks": self.chunks, "workers": self.workers, "seconds": round(self.seconds, 3),
                "dataset": self.dataset, "load_seconds": round(self.load_seconds, 3)}  # fmt: skip


def output_format(path: str | os.PathLike[str]) -> str:
    """``parquet`` or ``csv`` from the output's suffix; anything else is refused."""
    fmt = _OUTPUT_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise InvalidInput(
            f"Cannot write scores to {str(path)!r}: unknown output format {Path(path).suffix or '(no suffix)'!r}. "
            "Name the output .parquet, .pq or .csv."
        )
    return fmt


# -- input ------------------------------------------------------------------------------------------------
def _input_files(ctx: Context, source: str | os.PathLike[str]) -> tuple[list[Path], str, str | None]:
    """The input's files, their format, and its dataset-version reference (``None`` for a plain path)."""
    from mloop.datasets.formats import table_files

    if isinstance(source, str) and source.startswith("data:"):
        from mloop.datasets.dataset import get_dataset
        from mloop.datasets.formats import visible_files

        ds = get_dataset(source, client=ctx)
        if ds.info.kind != "table" or ds.info.format not in ("csv", "parquet"):
            raise InvalidInput(
                f"{ds.ref} is not a CSV or Parquet table (kind {ds.info.kind}, format {ds.info.format}); "
                "batch scoring reads CSV and Parquet versions."
            )
        path = ds.path()
        root = path if path.is_dir() else path.parent
        files = visible_files(root, [e.path for e in ds.files()]) if path.is_dir() else [path]
        return files, ds.info.format, ds.ref
    path = Path(source)
    if not path.exists():
        raise NotFound(f"Input {str(path)!r} does not exist; give a CSV or Parquet file, a folder, or data:<name>/<v>.")
    try:
        files, fmt = table_files(path)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc} Batch scoring reads .csv, .tsv, .parquet and .pq files.") from None
    if fmt not in ("csv", "parquet"):
        raise InvalidInput(f"Input {str(path)!r} is {fmt}; batch scoring reads CSV (.csv, .tsv) and Parquet "
                           "(.parquet, .pq). Convert it first.")  # fmt: skip
    return files, fmt, None


def _schema(files: Sequence[Path], fmt: str) -> pa.Schema:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if fmt == "parquet":
        return pq.read_schema(files[0])
    with pcsv.open_csv(files[0], **_csv_options(files[0], None, None)) as reader:
        return reader.schema


def _csv_options(path: Path, types: dict[str, Any] | None, columns: Sequence[str] | None) -> dict[str, Any]:
    import pyarrow.csv as pcsv

    return {
        "read_options": pcsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
        "parse_options": pcsv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ","),
        "convert_options": pcsv.ConvertOptions(
            strings_can_be_null=True, column_types=types or {}, include_columns=list(columns or [])
        ),
    }


def _batches(
    files: Sequence[Path], fmt: str, columns: Sequence[str], types: dict[str, Any], rows: int
) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    for path in files:
        if fmt == "parquet":
            # pre_buffer=False: with it, the reader keeps every row group it read (memory grows with the file)
            with pq.ParquetFile(path, pre_buffer=False) as pf:
                yield from pf.iter_batches(batch_size=rows, columns=list(columns))
        else:
            with pcsv.open_csv(path, **_csv_options(path, types, columns)) as reader:
                yield from reader


def _rechunk(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last one shorter), holding at most one chunk's worth buffered."""
    import pyarrow as pa

    buffer: list[pa.RecordBatch] = []
    held = 0
    for whole in batches:
        batch = whole
        while batch.num_rows:
            take = min(rows - held, batch.num_rows)
            buffer.append(batch.slice(0, take))
            held += take
            batch = batch.slice(take)
            if held == rows:
                yield pa.Table.from_batches(buffer)
                buffer, held = [], 0
    if held:
        yield pa.Table.from_batches(buffer)


def _total_rows(files: Sequence[Path], fmt: str) -> int | None:
    if fmt != "parquet":
        return None
    import pyarrow.parquet as pq

    return sum(int(pq.ParquetFile(f).metadata.num_rows) for f in files)


def _feature_columns(version: ModelVersion, schema: pa.Schema, id_column: str | None, source: str) -> list[str]:
    names = list(schema.names)
    if id_column is not None and id_column not in names:
        raise InvalidInput(f"The id column {id_column!r} is not in {source!r}; its columns are {names}.")
    wanted = [str(c["name"]) for c in (version.signature or {}).get("inputs", [])]
    if not wanted:  # no signature: every column but the id is a feature
        return [n for n in names if n != id_column]
    missing = [c for c in wanted if c not in names]
    if missing:
        raise InvalidInput(
            f"{source!r} lacks the column(s) {missing} that {version.ref} expects (its signature: {wanted}; the "
            f"input has {names}). Rename or add those columns."
        )
    return wanted


def _csv_types(version: ModelVersion, schema: pa.Schema) -> dict[str, Any]:
    """CSV column types from the signature, so a later block cannot change a column's inferred type."""
    import pyarrow as pa

    out: dict[str, Any] = {}
    for col in (version.signature or {}).get("inputs", []):
        kind = str(col.get("type", ""))
        if kind.startswith("float"):
            out[str(col["name"])] = pa.float64()
        elif kind in ("object", "string", "category", "str"):
            out[str(col["name"])] = pa.string()
    return out


# -- scoring ----------------------------------------------------------------------------------------------
def _predict(model: LoadedModel, table: pa.Table) -> np.ndarray:
    import numpy as np

    frame = table.to_pandas()
    out = np.asarray(model.predict(frame))
    if out.ndim == 0 or out.shape[0] != table.num_rows:
        raise InvalidInput(
            f"{model.ref} returned {out.shape[0] if out.ndim else 'a scalar'} predictions for {table.num_rows} "
            "rows; its predict() must return one prediction per row."
        )
    return out


@functools.cache
def _worker_model(settings_blob: bytes, ref: str, strict: bool) -> LoadedModel:
    """The model in a worker process, loaded and verified once per process (a per-process memo)."""
    from mloop.context import Context
    from mloop.workspace import Workspace

    ctx = Context(workspace=Workspace(pickle.loads(settings_blob)))
    return load_model(ref, client=ctx, strict=strict)


def _score_in_worker(settings_blob: bytes, ref: str, strict: bool, table: pa.Table) -> np.ndarray:
    return _predict(_worker_model(settings_blob, ref, strict), table)


def _output_table(table: pa.Table, predictions: np.ndarray, start: int, id_column: str | None, ref: str) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    n = table.num_rows
    ids = table.column(id_column) if id_column is not None else pa.array(np.arange(start, start + n, dtype=np.int64))
    columns: dict[str, Any] = {id_column or ROW_ID: ids}
    if predictions.ndim == 1:
        columns[PREDICTION] = pa.array(predictions)
    else:
        flat = predictions.reshape(n, -1)
        for i in range(flat.shape[1]):
            columns[f"{PREDICTION}_{i}"] = pa.array(flat[:, i])
    columns[MODEL_VERSION] = pa.array([ref] * n, type=pa.string())
    return pa.table(columns)


class _Writer:
    """Parquet or CSV written incrementally to a temporary file, renamed to ``target`` by :meth:`commit`."""

    def __init__(self, target: Path, fmt: str) -> None:
        self.target, self.fmt = target, fmt
        self.tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
        self._writer: Any = None

    def write(self, table: pa.Table) -> None:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = (pq.ParquetWriter(self.tmp, table.schema) if self.fmt == "parquet"
                            else pcsv.CSVWriter(self.tmp, table.schema))  # fmt: skip
        self._writer.write_table(table)

    @property
    def opened(self) -> bool:
        return self._writer is not None

    def commit(self) -> None:
        self._writer.close()
        self._writer = None
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)


def _register(ctx: Context, output: Path, name: str, version: ModelVersion, source: str, data_ref: str | None) -> str:
    from mloop.datasets.dataset import Dataset

    meta = {"model": version.ref, "input": data_ref or str(Path(source).resolve())}
    added = Dataset.add(output, name, client=ctx, message=f"Scores of {version.ref} on {meta['input']}",
                        source=version.ref, role="model", meta=meta)  # fmt: skip
    ref = added.dataset.ref
    if data_ref is not None:
        ctx.store.add_lineage(data_ref, ref, "input", actor=ctx.actor)
    return ref


def score_file(
    ctx: Context,
    model_ref: str,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    workers: int = 1,
    id_column: str | None = None,
    name: str | None = None,
    register: bool = True,
    strict: bool | None = None,
    on_start: Callable[[int | None], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScoreResult:
    """Score ``input`` (a CSV/Parquet file or folder, or ``data:<name>/<version>``) into ``output``.

    ``on_start`` receives the total row count when it is known cheaply (Parquet) or ``None``; ``progress``
    then receives the rows of each chunk written. See the module docstring for the output and its lineage.
    """
    if chunk_rows < 1 or workers < 1:
        raise InvalidInput(f"chunk_rows ({chunk_rows}) and workers ({workers}) must be at least 1.")
    started = time.perf_counter()
    target = Path(output)
    fmt_out = output_format(target)
    if not target.parent.is_dir():
        raise NotFound(f"The output folder {str(target.parent)!r} does not exist; create it first.")
    version = resolve_model(ctx, model_ref)
    strict = ctx.settings.strict if strict is None else strict
    model = load_model(version.ref, client=ctx, strict=strict)  # verified before any row is read
    loaded = time.perf_counter() - started
    files, fmt, data_ref = _input_files(ctx, input)
    schema = _schema(files, fmt)
    features = _feature_columns(version, schema, id_column, data_ref or str(input))
    read = [*features, *([id_column] if id_column is not None and id_column not in features else [])]
    types = _csv_types(version, schema) if fmt == "csv" else {}
    if on_start is not None:
        on_start(_total_rows(files, fmt))
    chunks = _rechunk(_batches(files, fmt, read, types, chunk_rows), chunk_rows)
    writer = _Writer(target, fmt_out)
    rows = count = 0

    def emit(table: pa.Table, predictions: np.ndarray) -> None:
        nonlocal rows, count
        writer.write(_output_table(table, predictions, rows, id_column, version.ref))
        rows += table.num_rows
        count += 1
        if progress is not None:
            progress(table.num_rows)

    try:
        if workers == 1:
            for table in chunks:
                emit(table, _predict(model, table.select(features)))
        else:
            _score_parallel(ctx, version.ref, strict, chunks, features, workers, emit)
        if not writer.opened:  # an empty input still gives a (header-only) output
            import pyarrow as pa

            empty = pa.table({c: pa.array([], type=schema.field(c).type) for c in read})
            emit(empty, _predict_empty(empty))
            count -= 1
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    dataset = None
    if register:
        dataset = _register(ctx, target, name or f"{version.name}-scores", version, str(input), data_ref)
    return ScoreResult(version.ref, data_ref or str(input), target, rows, count, workers,
                       time.perf_counter() - started, dataset, loaded)  # fmt: skip


def _predict_empty(table: pa.Table) -> np.ndarray:
    import numpy as np

    return np.zeros(table.num_rows, dtype=np.float64)


def _score_parallel(
    ctx: Context, ref: str, strict: bool, chunks: Iterator[pa.Table], features: list[str], workers: int,
    emit: Callable[[pa.Table, np.ndarray], None],
) -> None:  # fmt: skip
    import multiprocessing

    blob = pickle.dumps(ctx.settings)
    pending: deque[tuple[pa.Table, Future[np.ndarray]]] = deque()
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    mp = multiprocessing.get_context(method)
    if mp.get_start_method() == "forkserver":  # workers fork from a server that imported these once
        mp.set_forkserver_preload(["numpy", "pandas", "pyarrow", "sklearn", "mloop.serving.batch"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp) as pool:
        for table in chunks:
            pending.append((table, pool.submit(_score_in_worker, blob, ref, strict, table.select(features))))
            while len(pending) >= 2 * workers:
                done, future = pending.popleft()
                emit(done, future.result())
        while pending:
            done, future = pending.popleft()
            emit(done, future.result())

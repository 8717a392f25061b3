"""Train/holdout splits of a table version: two new linked versions, the holdout private.

``split(data:sensors/3, holdout=0.2, seed=7)`` writes ``sensors-train`` and ``sensors-holdout`` (Parquet),
each recording its source, the split parameters and a lineage edge from the source. The same source, seed and
parameters produce identical bytes, hence the same versions (no duplicates).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.datasets.dataset import Dataset, get_dataset
from mloop.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from mloop.context import Context

__all__ = ["SplitResult", "split_dataset", "split_indices"]


@dataclass(frozen=True)
class SplitResult:
    source: Dataset
    train: Dataset
    holdout: Dataset
    created: bool


def _column(table: pa.Table, name: str, ref: str) -> Any:
    if name not in table.column_names:
        raise InvalidInput(f"{ref} has no column {name!r}; its columns are {', '.join(table.column_names)}.")
    return table.column(name)


def split_indices(
    table: pa.Table,
    holdout: float,
    *,
    seed: int = 0,
    stratify: str | None = None,
    by_time: str | None = None,
    ref: str = "the table",
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the train and holdout parts (each in the table's original order)."""
    import numpy as np
    import pyarrow.compute as pc

    if not 0 < holdout < 1:
        raise InvalidInput(f"holdout must be a fraction between 0 and 1 (exclusive), got {holdout}.")
    if stratify and by_time:
        raise InvalidInput("Choose --stratify or --by-time, not both.")
    n = table.num_rows
    k = math.ceil(n * holdout)
    if n < 2 or k >= n:
        raise InvalidInput(f"{ref} has {n} rows: too few to hold back {holdout:.0%} and keep rows to train on.")
    rng = np.random.default_rng(seed)
    if by_time:
        order = pc.sort_indices(_column(table, by_time, ref)).to_numpy()  # stable: ties keep row order
        hold = order[n - k :]
    elif stratify:
        labels = _column(table, stratify, ref).to_numpy(zero_copy_only=False)
        groups: dict[Any, list[int]] = {}
        for i, label in enumerate(labels.tolist()):
            groups.setdefault(label, []).append(i)
        picked: list[np.ndarray] = []
        for label in sorted(groups, key=repr):
            members = np.asarray(groups[label])
            take = round(len(members) * holdout)
            picked.append(rng.permutation(members)[:take])
        hold = np.concatenate(picked) if picked else np.array([], dtype=np.int64)
    else:
        hold = rng.permutation(n)[:k]
    mask = np.zeros(n, dtype=bool)
    mask[hold] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def split_dataset(
    ref: str,
    *,
    holdout: float = 0.2,
    seed: int = 0,
    stratify: str | None = None,
    by_time: str | None = None,
    client: Context | None = None,
) -> SplitResult:
    """Split a table version into ``<name>-train`` and a private ``<name>-holdout``."""
    import pyarrow.parquet as pq

    source = get_dataset(ref, client=client)
    if source.info.private:
        raise InvalidInput(f"{source.ref} is itself a private holdout; split the source it came from instead.")
    table = source.to_arrow()
    train_idx, hold_idx = split_indices(table, holdout, seed=seed, stratify=stratify, by_time=by_time, ref=source.ref)
    params = {"holdout": holdout, "seed": seed, "stratify": stratify, "by_time": by_time, "source": source.ref}
    results: dict[str, Dataset] = {}
    created = False
    with tempfile.TemporaryDirectory(prefix="mloop-split-") as tmp:
        for role, idx in (("train", train_idx), ("holdout", hold_idx)):
            folder = Path(tmp) / role
            folder.mkdir()
            pq.write_table(table.take(idx), folder / f"{source.name}.parquet")
            added = Dataset.add(
                folder, f"{source.name}-{role}", client=source.client, private=role == "holdout",
                source=source.ref, role=role, meta=params,
                message=f"{role} part of {source.ref} ({len(idx)} rows, seed {seed})",
            )  # fmt: skip
            results[role] = added.dataset
            created = created or added.created
    return SplitResult(source, results["train"], results["holdout"], created)

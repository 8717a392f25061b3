"""Model signatures: input columns with types and observed ranges or categories, and the output type."""

from __future__ import annotations

from typing import Any

__all__ = ["infer_signature"]

_MAX_CATEGORIES = 50


def _column(name: str, series: Any) -> dict[str, Any]:
    import pandas as pd

    col: dict[str, Any] = {"name": str(name), "type": str(series.dtype)}
    if pd.api.types.is_bool_dtype(series):
        col["categories"] = sorted(str(v) for v in series.dropna().unique())
    elif pd.api.types.is_numeric_dtype(series):
        values = series.dropna()
        if len(values):
            col["min"], col["max"] = float(values.min()), float(values.max())
    else:
        counts = series.dropna().astype(str).value_counts()
        col["categories"] = [str(v) for v in counts.index[:_MAX_CATEGORIES]]
        col["cardinality"] = len(counts)
    col["missing"] = int(series.isna().sum())
    return col


def infer_signature(data: Any, output: Any = None) -> dict[str, Any]:
    """Describe the inputs (a DataFrame or 2-D array of training data or an example) and the output."""
    import numpy as np
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(np.asarray(data))
    sig: dict[str, Any] = {"inputs": [_column(str(c), frame[c]) for c in frame.columns]}
    if output is not None:
        out = np.asarray(output)
        sig["output"] = {"type": str(out.dtype), "shape": [-1, *out.shape[1:]]}
    return sig

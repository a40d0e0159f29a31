"""The data profile a model keeps of its training data: per column bins or category shares, with row counts.

``train`` stores it in the model's metadata (with the target and the model's predictions on its
held-out rows); ``drift --model`` compares new data with it when the raw reference rows are gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import ColumnSchema
from pipeline.core.statistics import bin_fractions, category_fractions, quantile_edges
from pipeline.core.values import numeric_values


def column_kinds(columns: Sequence[ColumnSchema | str], frame: pd.DataFrame) -> dict[str, str]:
    """Return ``{name: numeric|categorical|boolean}``: the schema type, else guessed from the dtype."""
    kinds: dict[str, str] = {}
    for column in columns:
        if isinstance(column, ColumnSchema):
            kinds[column.name] = column.type
        elif column in frame.columns and pd.api.types.is_bool_dtype(frame[column]):
            kinds[column] = "boolean"
        elif column in frame.columns and pd.api.types.is_numeric_dtype(frame[column]):
            kinds[column] = "numeric"
        else:
            kinds[column] = "categorical"
    return kinds


def data_profile(frame: pd.DataFrame, columns: Sequence[ColumnSchema | str], bins: int) -> dict[str, Any]:
    """Return the drift profile of ``frame``: bins per numeric column, frequencies otherwise, with row counts.

    ``{"numeric": {col: {"edges": [...], "fractions": [...], "rows": n}}, "categorical": {col: {"fractions":
    {value: fraction}, "rows": n}}}``; a numeric column with at most ``bins`` distinct values is profiled by
    value (``{"values": [...], "fractions": [...], "rows": n}``); columns absent from ``frame`` are left out.
    """
    numeric: dict[str, dict[str, Any]] = {}
    categorical: dict[str, dict[str, Any]] = {}
    for name, kind in column_kinds(columns, frame).items():
        if name not in frame.columns:
            continue
        entry = profile_entry(frame[name], kind, bins)
        (numeric if kind == "numeric" else categorical)[name] = entry
    return {"numeric": numeric, "categorical": categorical}


def profile_entry(series: pd.Series, kind: str, bins: int) -> dict[str, Any]:
    """Return one column's profile entry (see :func:`data_profile`)."""
    if kind != "numeric":
        known = series.notna()
        return {"fractions": category_fractions(series, boolean=kind == "boolean"), "rows": int(known.sum())}
    values = numeric_values(series)
    distinct, counts = np.unique(values, return_counts=True)
    if 0 < distinct.size <= bins:
        return {
            "values": distinct.tolist(),
            "fractions": (counts / values.size).tolist(),
            "rows": int(values.size),
        }
    edges = quantile_edges(values, bins)
    return {
        "edges": edges.tolist(),
        "fractions": bin_fractions(values, edges).tolist(),
        "rows": int(values.size),
    }

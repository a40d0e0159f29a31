"""How cell values are read: booleans spelled as words, category keys, numbers in text, typed columns.

One place for the rules that validation, training, drift and serving parity must agree on:
``yes``/``no``, ``true``/``false`` and ``1``/``0`` are booleans (the words and what they mean are
``boolean_value`` in ``model/inputs.py``, which the server reads too); ``1`` and ``1.0`` are the
same category; text that is not a number is a type error naming the column.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd

from model.codec import plain
from model.inputs import BOOLEAN_SPELLINGS, boolean_value, category_key
from pipeline.errors import DataError

SAMPLE_ROWS = 2048  # rows sampled to guess whether a text column has few distinct values


def boolean_key(value: Any) -> str:
    """Return ``true``/``false`` for a value spelled as a boolean (yes/no, 1/0, ...), else its category key."""
    meaning = boolean_value(value)
    if meaning is None:
        return category_key(value)
    return "true" if meaning else "false"


def is_null(value: Any) -> bool:
    """Return True for None, NaN and pandas' NA."""
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value)) or value is pd.NA


def json_scalar(value: Any) -> Any:
    """Return a JSON-friendly Python scalar (numpy unwrapped, NaN as None, infinities as text)."""
    value = plain(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else str(value)
    return value


def json_records(frame: pd.DataFrame, booleans: Collection[str] = ()) -> list[dict[str, Any]]:
    """Return rows as the JSON records a client sends: Python scalars, None when missing, ``booleans`` true/false.

    A boolean feature may be stored as 0/1 or yes/no (as a table read gives it); it is sent as JSON
    true/false, which the API reads as training read the table.
    """
    columns = {
        name: [_json_cell(v, name in booleans) for v in frame[name].tolist()] for name in frame.columns
    }
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _json_cell(value: Any, boolean: bool) -> Any:
    if is_null(value):
        return None
    meaning = boolean_value(value) if boolean else None
    return plain(value) if meaning is None else meaning  # not a boolean spelling: sent as it is


def show(value: Any) -> str:
    """Return a value for a message: text quoted, whole numbers without .0, others to 6 digits."""
    value = json_scalar(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.6g}"
    return repr(value) if isinstance(value, str) else str(value)


def percent(fraction: float) -> str:
    """Return a fraction as a percentage with one decimal."""
    return f"{fraction:.1%}"


def to_numbers(values: pd.Series) -> np.ndarray:
    """Return the values as floats; text that is not a number becomes NaN.

    Text with few distinct values is parsed once per distinct value (``to_numeric`` on
    strings costs about 0.8 s per million).
    """
    sample = values.iloc[:SAMPLE_ROWS]
    if len(values) > SAMPLE_ROWS and sample.nunique() <= len(sample) // 2:
        codes, uniques = pd.factorize(values)
        parsed = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        return np.where(codes >= 0, parsed[codes], np.nan)
    return np.asarray(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan))


def numeric_values(series: pd.Series) -> np.ndarray:
    """Return the finite values of a column as floats (nulls, infinities and text left out)."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
    else:
        values = to_numbers(series)
    return np.asarray(values[np.isfinite(values)])


def coerce_column(values: pd.Series, name: str, kind: str) -> pd.Series:
    """Return a feature column in the dtype its schema type needs, or raise naming a bad value."""
    if kind == "numeric":
        if pd.api.types.is_bool_dtype(values):
            return values.astype(float)
        if pd.api.types.is_numeric_dtype(values):
            return values
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values[numbers.isna() & values.notna()]
        if len(bad):
            raise DataError(f"numeric column '{name}' has non-numeric value {bad.iloc[0]!r}")
        return numbers
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            return values
        return values.map(lambda v: to_bool(v, name)).astype(float)
    return values


def to_bool(value: Any, name: str) -> float:
    """Return 1.0/0.0 for a boolean spelled as a word or number, NaN for a null; raise otherwise."""
    if is_null(value):
        return float("nan")
    meaning = boolean_value(value)
    if meaning is None:
        raise DataError(f"boolean column '{name}' has value {value!r}, expected {BOOLEAN_SPELLINGS}")
    return float(meaning)


def clean_target(values: pd.Series, task: str, name: str) -> pd.Series:
    """Return the target as numbers for regression; integral floats as ints for classification."""
    if task == "regression":
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values[numbers.isna()]
        if len(bad):
            raise DataError(f"regression target '{name}' has non-numeric value {bad.iloc[0]!r}")
        return numbers.astype(float)
    if pd.api.types.is_float_dtype(values):
        if not np.all(np.mod(values.to_numpy(), 1) == 0):
            raise DataError(
                f"classification target '{name}' has non-integer numbers (e.g. {values.iloc[0]!r}); "
                "set data.task = 'regression' for a numeric target"
            )
        return values.astype("int64")
    return values

"""Schema inference: the config's [data] and [schema] sections guessed from a table (plain dicts).

Column types (numeric, categorical, boolean) come from the data; numeric ranges are the
observed min/max widened by ``margin`` of the span (0 keeps the observed values; never below
0 for a column that has no negatives); text columns with at most ``max_categories`` distinct
values get their allowed values; columns without nulls are ``nullable = false``, the others
get a null limit above the observed fraction; id-like columns (unique text, or an ``*_id``
name with unique values) become ``data.id_columns``. For a classification target the
observed labels become ``schema.labels``. The task is guessed from the target unless given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.codec import plain
from model.inputs import category_key
from pipeline.core.duplicates import duplicate_rows
from pipeline.core.values import boolean_key
from pipeline.errors import DataError

MAX_CLASSES = 20  # an integer target with at most this many values is guessed to be classification
DEFAULT_MIN_ROWS = 50
DEFAULT_MAX_DUPLICATE_FRACTION = 0.05
POSITIVE_WORDS = frozenset({"1", "true", "yes", "y", "t", "positive", "pos"})
_ID_NAME = re.compile(r"(^|[_\-\s.])[Ii][Dd]$|[a-z](ID|Id)$")  # id, user_id, customerID, userId


@dataclass(frozen=True)
class InferOptions:
    """How to infer: the task (None: guessed), the file format to record, range margin, category limit."""

    task: str | None = None
    fmt: str | None = None
    margin: float = 0.1
    max_categories: int = 20


@dataclass(frozen=True)
class Inferred:
    """The inferred ``[data]`` and ``[schema]`` tables (plain dicts), and what was guessed and why."""

    data: dict[str, Any]
    schema: dict[str, Any]
    notes: tuple[str, ...]


def infer_sections(
    frame: pd.DataFrame, path: str, target: str, options: InferOptions | None = None
) -> Inferred:
    """Return the ``[data]`` and ``[schema]`` tables inferred from ``frame``, with notes on the guesses."""
    options = options or InferOptions()
    task, fmt, margin, max_categories = options.task, options.fmt, options.margin, options.max_categories
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12])) + (", ..." if frame.shape[1] > 12 else "")
        raise DataError(f"target column '{target}' not found; table columns: {shown}")
    values = frame[target].dropna()
    if values.empty:
        raise DataError(f"target column '{target}' is null in all {len(frame)} rows")
    notes: list[str] = []
    if task is None:
        task = guess_task(values)
        notes.append(f"task: {task} (guessed from target '{target}'; pass --task to choose)")
    ids = [str(c) for c in frame.columns if c != target and is_id_like(str(c), frame[c])]
    data: dict[str, Any] = {"path": path, "target": target, "task": task}
    if fmt is not None:
        data["format"] = fmt
    schema: dict[str, Any] = {"min_rows": min(DEFAULT_MIN_ROWS, len(frame))}
    repeated = duplicate_rows(frame)
    schema["max_duplicate_fraction"] = max(DEFAULT_MAX_DUPLICATE_FRACTION, _ceil(repeated / len(frame), 2))
    if task == "classification":
        labels = class_labels(values, target)
        if len(labels) < 2:
            raise DataError(
                f"target '{target}' has a single class {labels[0]!r}; classification needs at least two"
            )
        if len(labels) == 2:
            data["positive_label"], why = positive_label(labels, values)
            notes.append(
                f"positive label: {data['positive_label']!r} ({why}; set data.positive_label to change it)"
            )
        smallest = float(values.value_counts(normalize=True).min())
        schema["min_class_fraction"] = min(0.05, _floor(smallest / 2, 3))
        schema["labels"] = labels
    data["id_columns"] = ids
    columns: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        series = frame[name]
        if str(name) in ids:
            spec: dict[str, Any] = {"type": "categorical"}
        elif name == target and task == "classification":
            spec = {"type": "numeric" if pd.api.types.is_numeric_dtype(series) else "categorical"}
        else:
            spec = column_spec(series, margin, max_categories)
        spec.update(null_spec(series))
        columns[str(name)] = spec
    schema["columns"] = columns
    flags = [n for n, spec in columns.items() if spec["type"] == "boolean" and n != target]
    if flags:
        notes.append(f"boolean (two values spelled as yes/no, true/false or 1/0): {', '.join(flags)}")
    return Inferred(data, schema, tuple(notes))


def guess_task(target: pd.Series) -> str:
    """Return ``classification`` for text, booleans or a few whole numbers, else ``regression``."""
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return "classification"
    numbers = target.to_numpy(dtype=float)
    whole = bool(np.all(np.mod(numbers, 1) == 0))
    return "classification" if whole and target.nunique() <= MAX_CLASSES else "regression"


def class_labels(target: pd.Series, name: str) -> list[Any]:
    """Return the sorted distinct labels as TOML-friendly scalars (whole floats as ints)."""
    labels = []
    for value in target.unique():
        label = plain(value)
        if isinstance(label, float):
            if not label.is_integer():
                raise DataError(
                    f"classification target '{name}' has non-integer numbers (e.g. {label!r}); use --task regression"
                )
            label = int(label)
        labels.append(label if isinstance(label, bool | int) else str(label))
    return sorted(set(labels), key=lambda v: (not isinstance(v, bool | int), v))


def positive_label(labels: list[Any], values: pd.Series) -> tuple[Any, str]:
    """Return the label that most likely means "yes" (1, true, yes, ...), else the rarer class; and why."""
    for label in labels:
        if str(label).strip().lower() in POSITIVE_WORDS:
            return label, "it reads as yes/1/true"
    shares = {label: float((values.map(category_key) == category_key(label)).mean()) for label in labels}
    rarest = min(labels, key=lambda label: (shares[label], -labels.index(label)))
    return (
        rarest,
        f"no label reads as yes/1/true; the rarer class ({shares[rarest]:.1%} of rows), as positives usually are",
    )


def is_id_like(name: str, values: pd.Series) -> bool:
    """Return True for identifiers: unique text, unique values under an id-like name, or a row counter."""
    known = values.dropna()
    if len(known) < 2 or known.nunique() != len(known):
        return False
    if _ID_NAME.search(name):
        return True
    if pd.api.types.is_bool_dtype(known) or pd.api.types.is_float_dtype(known):
        return False
    if not pd.api.types.is_numeric_dtype(known):
        return len(known) >= 20
    steps = np.diff(known.to_numpy())
    return bool(len(known) >= 20 and np.all(steps == 1))


def column_type(values: pd.Series) -> str:
    """Return ``boolean``, ``numeric`` or ``categorical`` from a column's values.

    Two distinct values that read as a yes and a no (``1``/``0``, ``yes``/``no``, ``True``/``False``,
    ``Y``/``N``, ...) are boolean, so a 0/1 flag is checked and profiled as one.
    """
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    distinct = values.dropna().unique()
    if len(distinct) == 2 and {boolean_key(v) for v in distinct} == {"true", "false"}:
        return "boolean"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    return "categorical"


def column_spec(values: pd.Series, margin: float, max_categories: int) -> dict[str, Any]:
    """Return the type and its expectations (range, or allowed values) for one column."""
    kind = column_type(values)
    spec: dict[str, Any] = {"type": kind}
    known = values.dropna()
    if kind == "numeric" and len(known):
        numbers = known.to_numpy(dtype=float)
        finite = numbers[np.isfinite(numbers)]
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            spec["min"], spec["max"] = widen(low, high, margin, pd.api.types.is_integer_dtype(values))
    elif kind == "categorical":
        distinct = known.unique()
        if 0 < len(distinct) <= max_categories:
            spec["allowed"] = sorted({category_key(v) for v in distinct})
    return spec


def widen(low: float, high: float, margin: float, integer: bool) -> tuple[float | int, float | int]:
    """Return ``[low, high]`` widened by ``margin`` of the span, rounded outwards; not below 0 when low >= 0."""
    span = high - low
    pad = margin * (span if span > 0 else max(abs(high), 1.0))
    lower, upper = low - pad, high + pad
    if low >= 0:
        lower = max(lower, 0.0)
    if integer:
        return math.floor(lower), math.ceil(upper)
    return _floor(lower, 4), _ceil(upper, 4)


def null_spec(values: pd.Series) -> dict[str, Any]:
    """Return ``nullable = false`` without nulls, else a limit above the observed null fraction."""
    nulls = int(values.isna().sum())
    if nulls == 0:
        return {"nullable": False}
    observed = nulls / len(values)
    return {"max_null_fraction": min(1.0, _ceil(max(2 * observed, observed + 0.02), 2))}  # headroom


def _ceil(value: float, digits: int) -> float:
    """Return the smallest ``digits``-decimal number >= ``value``."""
    scale = float(10**digits)
    result = math.ceil(value * scale) / scale
    return result if result >= value else (math.ceil(value * scale) + 1) / scale


def _floor(value: float, digits: int) -> float:
    """Return the largest ``digits``-decimal number <= ``value``."""
    scale = float(10**digits)
    result = math.floor(value * scale) / scale
    return result if result <= value else (math.floor(value * scale) - 1) / scale

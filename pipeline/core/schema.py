"""Schema inference: the config's [data] and [schema] sections guessed from a table (plain dicts).

Column types (numeric, categorical, boolean) come from the data; id-like columns (unique text,
or an ``*_id`` name with unique values) become ``data.id_columns``; for a classification target
the observed labels become ``schema.labels``. The task is guessed from the target unless given.

The limits come in two readings of the table. As a description of it (``schema infer``):
numeric ranges are the observed min/max widened by ``margin`` of the span, text columns with
at most ``max_categories`` distinct values get their allowed values, columns without nulls are
``nullable = false`` and the others get a null limit above the observed fraction. As limits
fresh data from the same source passes (``init``: ``InferOptions(fresh=True)``), since a
sample shows neither its source's extremes, nor its rare values, nor its null rate exactly:

- a numeric range extends past the observed extremes by a margin from the tail's own scale
  (:func:`~pipeline.core.fresh.fresh_range`), wider on fewer rows; never below 0 for a column with no negatives,
  whole numbers for an integer column;
- a column gets a null limit that another sample of that size stays under by chance, yet a
  surge of nulls passes (:func:`~pipeline.core.fresh.null_limit`); nothing is ``nullable = false`` (a sample
  without nulls does not show that its source has none);
- allowed values are listed only when every value was seen at least ``MIN_SEEN`` times: a value
  seen once or twice says others went unseen, and fresh data would bring them.

Table-level limits that the table itself would break (duplicate rows, its rarest class, its
conflicting labels, a real feature that nearly predicts the label alone, fewer rows than the
default minimum) are loosened to fit it, and each one loosened is named in the notes
(``pipeline/core/fresh.py`` holds these rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.codec import plain
from model.inputs import category_key
from pipeline.core.duplicates import duplicate_rows
from pipeline.core.fresh import (
    DEFAULT_MIN_ROWS,
    ceil_to,
    class_limit,
    conflicting_limit,
    duplicate_limit,
    fresh_range,
    leakage_limit,
    null_limit,
    widen,
)
from pipeline.core.values import boolean_key
from pipeline.errors import DataError

MAX_CLASSES = 20  # an integer target with at most this many values is guessed to be classification
MIN_SEEN = 3  # fresh: allowed values are listed only when every value was seen this often
# fresh: numbers 0 and 1 are a flag only when each was seen this often; rarer, they may be a count or an
# intensity that happened to stay small (sparse digits pixels: 0/1 in one half, 2 in the other). Read as
# numbers, a real flag loses nothing: its type and range checks still pass.
MIN_FLAG_ROWS = 10
POSITIVE_WORDS = frozenset({"1", "true", "yes", "y", "t", "positive", "pos"})
_ID_NAME = re.compile(r"(^|[_\-\s.])[Ii][Dd]$|[a-z](ID|Id)$")  # id, user_id, customerID, userId


@dataclass(frozen=True)
class InferOptions:
    """How to infer: the task (None: guessed), the file format to record, range margin, category limit.

    ``fresh``: limits fresh data from the same source passes (``init``), rather than a description
    of this table (``schema infer``); ``margin`` is then not used (see the module docstring).
    """

    task: str | None = None
    fmt: str | None = None
    margin: float = 0.1
    max_categories: int = 20
    fresh: bool = False


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
    task = options.task
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
    if options.fmt is not None:
        data["format"] = options.fmt
    rows = len(frame)
    schema: dict[str, Any] = {"min_rows": min(DEFAULT_MIN_ROWS, rows)}
    if rows < DEFAULT_MIN_ROWS:
        notes.append(
            f"loosened schema.min_rows to {rows} (from {DEFAULT_MIN_ROWS}): the table has {rows} rows"
        )
    schema["max_duplicate_fraction"] = duplicate_limit(duplicate_rows(frame), rows, options.fresh, notes)
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
        schema["min_class_fraction"] = class_limit(values, options.fresh, notes)
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
            spec = column_spec(series, options)
        spec.update(null_spec(series, options.fresh))
        columns[str(name)] = spec
    if options.fresh and task == "classification":
        features = {n: spec for n, spec in columns.items() if n != target and n not in ids}
        schema["max_conflicting_fraction"] = conflicting_limit(frame, features, target, notes)
        schema["leakage_limit"] = leakage_limit(frame, features, target, notes)
    if options.fresh:
        constant = [n for n in columns if n != target and n not in ids and frame[n].nunique(dropna=True) == 1]
        if constant:
            schema["skip_checks"] = ["constant"]
            shown = ", ".join(constant[:5]) + (", ..." if len(constant) > 5 else "")
            notes.append(
                f"loosened schema.skip_checks to ['constant']: {len(constant)} feature(s) hold a single value "
                f"in this table ({shown}); drop them, or remove the skip once they vary"
            )
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


def column_type(values: pd.Series, fresh: bool = False) -> str:
    """Return ``boolean``, ``numeric`` or ``categorical`` from a column's values.

    Two distinct values that read as a yes and a no (``1``/``0``, ``yes``/``no``, ``True``/``False``,
    ``Y``/``N``, ...) are boolean, so a 0/1 flag is checked and profiled as one. ``fresh``: numbers
    0 and 1 are a flag only when each was seen at least ``MIN_FLAG_ROWS`` times.
    """
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    distinct = values.dropna().unique()
    if len(distinct) == 2 and {boolean_key(v) for v in distinct} == {"true", "false"}:
        rare = fresh and pd.api.types.is_numeric_dtype(values) and values.value_counts().min() < MIN_FLAG_ROWS
        return "numeric" if rare else "boolean"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    return "categorical"


def column_spec(values: pd.Series, options: InferOptions) -> dict[str, Any]:
    """Return the type and its expectations (range, or allowed values) for one column."""
    kind = column_type(values, options.fresh)
    spec: dict[str, Any] = {"type": kind}
    known = values.dropna()
    if kind == "numeric" and len(known):
        numbers = known.to_numpy(dtype=float)
        finite = numbers[np.isfinite(numbers)]
        integer = pd.api.types.is_integer_dtype(values)
        if options.fresh:
            # A range needs a spread to go by: a column all one value but for one or two rows (a sparse
            # pixel, a rare count) shows nothing of how far its other values reach, so it gets none.
            if finite.size and np.count_nonzero(finite != np.median(finite)) >= MIN_SEEN:
                spec["min"], spec["max"] = fresh_range(finite, integer)
        elif finite.size:
            spec["min"], spec["max"] = widen(
                float(finite.min()), float(finite.max()), options.margin, integer
            )
    elif kind == "categorical":
        counts = known.value_counts()
        keys = (
            pd.Series(counts.to_numpy(), index=[category_key(v) for v in counts.index]).groupby(level=0).sum()
        )
        complete = not options.fresh or (keys.size > 0 and int(keys.min()) >= MIN_SEEN)
        if 0 < keys.size <= options.max_categories and complete:
            spec["allowed"] = sorted(str(k) for k in keys.index)
    return spec


def null_spec(values: pd.Series, fresh: bool = False) -> dict[str, Any]:
    """Return the column's null expectation: ``fresh``, :func:`null_limit`; else ``nullable = false`` without nulls.

    Not ``fresh`` (a description of this table), a column with nulls gets a limit above the observed fraction.
    """
    nulls, rows = int(values.isna().sum()), len(values)
    if fresh:
        return {"max_null_fraction": null_limit(nulls, rows)}
    if nulls == 0:
        return {"nullable": False}
    observed = nulls / rows
    return {"max_null_fraction": min(1.0, ceil_to(max(2 * observed, observed + 0.02), 2))}  # headroom

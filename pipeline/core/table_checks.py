"""The table-level validation checks: minimum rows, required and unexpected columns, the target, its labels and class balance, duplicate rows.

Each returns :class:`~pipeline.records.Failure` records; the registry in
``pipeline/core/validation.py`` says when each runs (per column checks are in
``pipeline/core/columns.py``, the features' integrity and leakage in ``pipeline/core/integrity.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.inputs import category_key
from pipeline.config import Config
from pipeline.core.duplicates import duplicate_rows
from pipeline.core.values import json_scalar, percent, show, to_numbers
from pipeline.records import Failure


def check_min_rows(frame: pd.DataFrame, minimum: int) -> list[Failure]:
    """Fail when the table has fewer rows than ``schema.min_rows``."""
    if len(frame) >= minimum:
        return []
    message = f"table has {len(frame)} rows, expected at least {minimum} (schema.min_rows)"
    return [Failure("min_rows", None, message, len(frame), minimum)]


def check_required(frame: pd.DataFrame, config: Config) -> list[Failure]:
    """Fail for each schema column the table lacks (the target is the target check's)."""
    return [
        Failure(
            "required_columns",
            c.name,
            f"column '{c.name}' is in the schema but not in the table",
            None,
            c.type,
        )
        for c in config.schema.columns
        if c.name not in frame.columns and c.name != config.data.target
    ]


def check_unexpected(frame: pd.DataFrame, config: Config) -> list[Failure]:
    """Fail for each table column neither the schema, the target nor the id columns name."""
    known = {c.name for c in config.schema.columns} | {config.data.target, *config.data.id_columns}
    return [
        Failure(
            "unexpected_columns",
            str(name),
            f"column '{name}' is not in the schema (add it, or set schema.allow_unexpected_columns = true)",
            str(name),
            None,
        )
        for name in frame.columns
        if name not in known
    ]


def check_target(frame: pd.DataFrame, config: Config) -> tuple[list[Failure], pd.Series | None]:
    """Check the target is present, non-null within its limit and usable for the task.

    Returns the failures and the non-null target values (None when there are none).
    """
    target, task = config.data.target, config.data.task
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12])) + (", ..." if frame.shape[1] > 12 else "")
        message = f"target column '{target}' not found; table columns: {shown}"
        return [Failure("target", target, message, None, "present")], None
    values = frame[target]
    nulls = int(values.isna().sum())
    rows = len(values)
    if nulls == rows:
        return [
            Failure("target", target, f"target column '{target}' is null in all {rows} rows", 1.0, 0.0)
        ], None
    failures = []
    column = config.schema.column(target)
    limit = column.null_limit if column is not None else 0.0
    if nulls / rows > limit:
        message = f"target column '{target}' has {percent(nulls / rows)} nulls ({nulls} of {rows}), limit {percent(limit)}"
        failures.append(Failure("target", target, message, nulls / rows, limit))
    known = values.dropna() if nulls else values
    if task == "regression" and (column is None or column.type != "numeric"):  # else the type check
        numbers = to_numbers(known)
        bad = int(np.isnan(numbers).sum())
        if bad:
            example = known[np.isnan(numbers)].iloc[0]
            message = f"regression target '{target}' has {bad} non-numeric value(s), e.g. {show(example)}"
            failures.append(
                Failure("target", target, message, {"count": bad, "example": json_scalar(example)}, "numbers")
            )
    elif task == "classification" and pd.api.types.is_float_dtype(known):
        numbers = known.to_numpy(dtype=float)
        fractional = np.mod(numbers, 1) != 0
        if fractional.any():
            example = float(numbers[fractional][0])
            message = (
                f"classification target '{target}' has non-integer numbers (e.g. {example!r}); "
                "set data.task = 'regression' for a numeric target"
            )
            failures.append(Failure("target", target, message, example, "class labels"))
    return failures, known


def check_labels(counts: pd.Series, config: Config) -> list[Failure]:
    """Fail when the target has values outside ``schema.labels``."""
    labels = config.schema.labels or ()
    allowed = {category_key(label) for label in labels}
    unknown = [(value, int(n)) for value, n in counts.items() if category_key(value) not in allowed]
    if not unknown:
        return []
    target = config.data.target
    rows = sum(n for _, n in unknown)
    shown = ", ".join(show(v) for v, _ in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
    message = f"target '{target}' has value(s) not in schema.labels {list(labels)}: {shown} ({rows} rows)"
    return [Failure("labels", target, message, [json_scalar(v) for v, _ in unknown[:20]], list(labels))]


def check_class_balance(counts: pd.Series, config: Config) -> list[Failure]:
    """Fail on a single class, or on any class (observed or declared) below ``schema.min_class_fraction``."""
    target = config.data.target
    if len(counts) == 1:
        only = json_scalar(counts.index[0])
        message = f"target '{target}' has a single class {only!r}; classification needs at least two"
        return [Failure("class_balance", target, message, [only], "at least 2 classes")]
    total = int(counts.sum())
    shares = {category_key(v): (json_scalar(v), int(n) / total) for v, n in counts.items()}
    for label in config.schema.labels or ():
        shares.setdefault(category_key(label), (label, 0.0))
    minimum = config.schema.min_class_fraction
    failures = []
    for value, share in shares.values():
        if share < minimum:
            message = (
                f"class {value!r} of target '{target}' is {percent(share)} of rows, "
                f"minimum {percent(minimum)} (schema.min_class_fraction)"
            )
            failures.append(
                Failure("class_balance", target, message, {"class": value, "fraction": share}, minimum)
            )
    return failures


def check_duplicates(frame: pd.DataFrame, limit: float) -> list[Failure]:
    """Fail when more than ``limit`` of the rows repeat an earlier row exactly (all columns)."""
    rows = len(frame)
    repeated = duplicate_rows(frame)
    if not rows or repeated / rows <= limit:
        return []
    message = (
        f"{percent(repeated / rows)} of rows ({repeated} of {rows}) repeat an earlier row exactly, "
        f"limit {percent(limit)} (schema.max_duplicate_fraction)"
    )
    return [Failure("duplicates", None, message, repeated / rows, limit)]

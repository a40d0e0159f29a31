"""Per-column validation rules: type, range, allowed values, nulls and infinities.

Each rule returns the failures of one column (count and one example per kind of bad value);
``pipeline/core/validation.py`` runs them for every schema column present in the table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from model.inputs import category_key
from pipeline.config import ColumnSchema, Config
from pipeline.core.values import boolean_key, is_null, json_scalar, percent, show, to_numbers
from pipeline.records import Failure


def column_checks(column: ColumnSchema) -> list[str]:
    """Return the per-column checks that apply to ``column``."""
    names = ["nulls"]
    if column.type in ("numeric", "boolean"):
        names.append("type")
    if column.type == "numeric":
        names.append("infinite")
        if column.min is not None or column.max is not None:
            names.append("range")
    if column.allowed is not None and column.type != "boolean":
        names.append("allowed")
    return names


def check_column(values: pd.Series, column: ColumnSchema, config: Config) -> list[Failure]:
    """Return the failures of one column: type, range, allowed values, nulls, infinities."""
    failures: list[Failure] = []
    name = column.name
    rows = len(values)
    nulls = int(values.isna().sum())
    if name != config.data.target:  # the target check applies the target's null limit
        limit = column.null_limit
        if rows and nulls / rows > limit:
            if column.nullable:
                message = f"column '{name}' has {percent(nulls / rows)} nulls ({nulls} of {rows}), limit {percent(limit)}"
            else:
                message = f"column '{name}' has {nulls} null(s) ({percent(nulls / rows)}), expected none (nullable = false)"
            failures.append(Failure("nulls", name, message, nulls / rows, limit))
    if column.type == "numeric":
        failures += _numeric_failures(values, column)
    elif column.type == "boolean":
        failures += _boolean_failures(values, column)
    elif column.allowed is not None:
        failures += _allowed_failures(values, column)
    return failures


def _numeric_failures(values: pd.Series, column: ColumnSchema) -> list[Failure]:
    name = column.name
    failures = []
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        numbers = to_numbers(values)
        text = np.isnan(numbers) & values.notna().to_numpy()
        bad = int(text.sum())
        if bad:
            example = values[text].iloc[0]
            message = (
                f"column '{name}' has {bad} non-numeric value(s), e.g. {show(example)}; expected numbers"
            )
            failures.append(
                Failure("type", name, message, {"count": bad, "example": json_scalar(example)}, "numeric")
            )
    infinite = np.isinf(numbers)
    count = int(infinite.sum())
    if count:
        failures.append(Failure("infinite", name, f"column '{name}' has {count} infinite value(s)", count, 0))
        numbers = np.where(infinite, np.nan, numbers)
    if column.min is not None or column.max is not None:
        failures += _range_failures(numbers, column)
    if column.allowed is not None:
        allowed = [n for n in (_number(a) for a in column.allowed) if n is not None]
        outside = ~np.isin(numbers, allowed) & ~np.isnan(numbers)
        bad = int(outside.sum())
        if bad:
            examples = [json_scalar(v) for v in pd.unique(numbers[outside])[:5]]
            message = (
                f"column '{name}' has {bad} value(s) not in the allowed set (e.g. {show(examples[0])}); "
                f"allowed: {', '.join(map(str, column.allowed))}"
            )
            failures.append(
                Failure("allowed", name, message, {"count": bad, "values": examples}, list(column.allowed))
            )
    return failures


def _range_failures(numbers: np.ndarray, column: ColumnSchema) -> list[Failure]:
    lowest = float(np.fmin.reduce(numbers)) if numbers.size else float("nan")
    highest = float(np.fmax.reduce(numbers)) if numbers.size else float("nan")
    below = int((numbers < column.min).sum()) if column.min is not None and lowest < column.min else 0
    above = int((numbers > column.max).sum()) if column.max is not None and highest > column.max else 0
    if not below and not above:
        return []
    low = "-inf" if column.min is None else show(column.min)
    high = "inf" if column.max is None else show(column.max)
    message = (
        f"column '{column.name}' has {below + above} value(s) outside [{low}, {high}] "
        f"(observed min {show(lowest)}, max {show(highest)})"
    )
    observed = {"min": lowest, "max": highest, "below": below, "above": above}
    return [Failure("range", column.name, message, observed, {"min": column.min, "max": column.max})]


def _boolean_failures(values: pd.Series, column: ColumnSchema) -> list[Failure]:
    if pd.api.types.is_bool_dtype(values):
        return []
    unusual = [v for v in values.dropna().unique() if boolean_key(v) not in ("true", "false")]
    if not unusual:
        return []
    bad = int(values.isin(unusual).sum())
    message = (
        f"column '{column.name}' has {bad} value(s) that are not booleans, e.g. {show(unusual[0])}; "
        "expected true/false, yes/no or 1/0"
    )
    observed = {"count": bad, "example": json_scalar(unusual[0])}
    return [Failure("type", column.name, message, observed, "boolean")]


def _allowed_failures(values: pd.Series, column: ColumnSchema) -> list[Failure]:
    allowed = {category_key(a) for a in column.allowed or ()}
    unusual = [v for v in values.unique() if not is_null(v) and category_key(v) not in allowed]
    if not unusual:
        return []
    bad = int(values.isin(unusual).sum())
    message = (
        f"column '{column.name}' has {bad} value(s) not in the allowed set (e.g. {show(unusual[0])}); "
        f"allowed: {', '.join(map(str, column.allowed or ()))}"
    )
    observed = {"count": bad, "values": [json_scalar(v) for v in unusual[:5]]}
    return [Failure("allowed", column.name, message, observed, list(column.allowed or ()))]


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None

"""Per-column validation rules (type, range, allowed values, nulls, infinities) and the view of a
column they share.

Each rule takes a :class:`Column` and returns its failures (count and one example per kind of
bad value); the registry in ``pipeline/core/validation.py`` says which columns each applies to.
What several rules need (the values as numbers, the infinities, the distinct values) is computed
once per column, on first use, so a rule that is skipped costs nothing.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from model.inputs import category_key
from pipeline.config import ColumnSchema, Config
from pipeline.core.values import boolean_key, is_null, json_scalar, percent, show, to_numbers
from pipeline.records import Failure


class Column:
    """One column of the table under validation, with its schema and the config."""

    def __init__(self, frame: pd.DataFrame, schema: ColumnSchema, config: Config) -> None:
        self.frame = frame
        self.schema = schema
        self.config = config
        self.name = schema.name

    @cached_property
    def values(self) -> pd.Series:
        """Return the column's values."""
        return self.frame[self.name]

    @cached_property
    def stored_as_numbers(self) -> bool:
        """Return True when the values are stored as numbers or booleans (no text to parse)."""
        return bool(pd.api.types.is_bool_dtype(self.values) or pd.api.types.is_numeric_dtype(self.values))

    @cached_property
    def numbers(self) -> np.ndarray:
        """Return the values as floats: NaN for a null and for text that is not a number."""
        if self.stored_as_numbers:
            return np.asarray(self.values.to_numpy(dtype=float, na_value=np.nan))
        return to_numbers(self.values)

    @cached_property
    def infinite(self) -> np.ndarray:
        """Return a mask of the infinite numbers."""
        return np.asarray(np.isinf(self.numbers))

    @cached_property
    def finite(self) -> np.ndarray:
        """Return the numbers with infinities as NaN (the range and allowed values judge the rest)."""
        return np.where(self.infinite, np.nan, self.numbers) if self.infinite.any() else self.numbers

    @cached_property
    def distinct(self) -> pd.Series:
        """Return the non-null values' counts (one hash pass, shared by the integrity checks)."""
        return self.values.value_counts(sort=False, dropna=True)


def null_failures(column: Column) -> list[Failure]:
    """Fail when the share of nulls is over the column's limit (the target's is the target check's)."""
    if column.name == column.config.data.target:
        return []
    values, name, limit = column.values, column.name, column.schema.null_limit
    rows = len(values)
    nulls = int(values.isna().sum())
    if not rows or nulls / rows <= limit:
        return []
    if column.schema.nullable:
        message = (
            f"column '{name}' has {percent(nulls / rows)} nulls ({nulls} of {rows}), limit {percent(limit)}"
        )
    else:
        message = (
            f"column '{name}' has {nulls} null(s) ({percent(nulls / rows)}), expected none (nullable = false)"
        )
    return [Failure("nulls", name, message, nulls / rows, limit)]


def type_failures(column: Column) -> list[Failure]:
    """Fail on text that is not a number in a numeric column, or values that are not booleans in a boolean one."""
    if column.schema.type == "boolean":
        return _boolean_failures(column.values, column.schema)
    if column.stored_as_numbers:
        return []
    values, name = column.values, column.name
    text = np.isnan(column.numbers) & values.notna().to_numpy()
    bad = int(text.sum())
    if not bad:
        return []
    example = values[text].iloc[0]
    message = f"column '{name}' has {bad} non-numeric value(s), e.g. {show(example)}; expected numbers"
    return [Failure("type", name, message, {"count": bad, "example": json_scalar(example)}, "numeric")]


def infinite_failures(column: Column) -> list[Failure]:
    """Fail on infinite values in a numeric column."""
    count = int(column.infinite.sum())
    if not count:
        return []
    return [
        Failure("infinite", column.name, f"column '{column.name}' has {count} infinite value(s)", count, 0)
    ]


def range_failures(column: Column) -> list[Failure]:
    """Fail on finite numbers outside the column's ``[min, max]``."""
    return _range_failures(column.finite, column.schema)


def allowed_failures(column: Column) -> list[Failure]:
    """Fail on values outside the column's allowed set (numbers compared as numbers, others by category key)."""
    if column.schema.type != "numeric":
        return _allowed_failures(column.values, column.schema)
    schema, numbers = column.schema, column.finite
    allowed = [n for n in (_number(a) for a in schema.allowed or ()) if n is not None]
    outside = ~np.isin(numbers, allowed) & ~np.isnan(numbers)
    bad = int(outside.sum())
    if not bad:
        return []
    examples = [json_scalar(v) for v in pd.unique(numbers[outside])[:5]]
    message = (
        f"column '{column.name}' has {bad} value(s) not in the allowed set (e.g. {show(examples[0])}); "
        f"allowed: {', '.join(map(str, schema.allowed or ()))}"
    )
    return [
        Failure(
            "allowed", column.name, message, {"count": bad, "values": examples}, list(schema.allowed or ())
        )
    ]


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

"""Rows ready to fit or score: the target checked and cleaned, feature columns typed by the schema.

Features are the schema's columns minus the target and the id columns. A table column the
schema does not list is an error unless ``schema.allow_unexpected_columns`` is true, in which
case it is ignored (and listed in :class:`Prepared`, for the caller to say so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.codec import plain
from pipeline.config import Config
from pipeline.core.values import clean_target, coerce_column
from pipeline.errors import ConfigError, DataError


@dataclass(frozen=True)
class Prepared:
    """A table ready to fit: usable rows, feature list and labels, and what was left out."""

    frame: pd.DataFrame
    features: tuple[tuple[str, str], ...]
    labels: tuple[Any, ...] | None
    positive_label: Any
    dropped_null_target: int = 0
    ignored_columns: tuple[str, ...] = ()


def prepare(table: pd.DataFrame, config: Config) -> Prepared:
    """Check the target and features; return usable rows with typed feature columns."""
    target = config.data.target
    task = config.data.task
    if target not in table.columns:
        raise DataError(
            f"target column '{target}' not found; table columns: {', '.join(map(str, table.columns))}"
        )
    nulls = int(table[target].isna().sum())
    if nulls == len(table):
        raise DataError(f"target column '{target}' is null in all {len(table)} rows")
    frame = table.loc[table[target].notna()] if nulls else table
    frame = frame.reset_index(drop=True)
    features, ignored = feature_list(frame, config)
    frame = frame.copy()
    frame[target] = clean_target(frame[target], task, target)
    for name, kind in features:
        frame[name] = coerce_column(frame[name], name, kind)
    labels: tuple[Any, ...] | None = None
    positive: Any = None
    if task == "classification":
        try:
            labels = tuple(plain(v) for v in np.unique(frame[target].to_numpy()))
        except TypeError:
            raise DataError(
                f"target '{target}' mixes value types (e.g. numbers and text); use one type"
            ) from None
        if len(labels) < 2:
            raise DataError(
                f"target '{target}' has a single class {labels[0]!r}; classification needs at least two"
            )
        positive = resolve_positive(labels, config.data.positive_label, target)
    return Prepared(frame, features, labels, positive, nulls, ignored)


def feature_list(frame: pd.DataFrame, config: Config) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Return ``(name, type)`` of the features (schema columns minus target and ids) and the ignored columns."""
    names = config.feature_columns
    if not names:
        raise ConfigError(
            "the schema lists no feature columns besides the target and ids; "
            "add [schema.columns.*] (python -m pipeline schema infer DATA --target COL prints them)"
        )
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise DataError(f"feature column(s) in the schema but not in the table: {', '.join(missing)}")
    known = {*names, config.data.target, *config.data.id_columns}
    extra = tuple(str(c) for c in frame.columns if c not in known)
    if extra and not config.schema.allow_unexpected_columns:
        raise DataError(
            f"column(s) not in the schema: {', '.join(extra)}; add them to [schema.columns] "
            "or set schema.allow_unexpected_columns = true to ignore them"
        )
    types = {c.name: c.type for c in config.schema.columns}
    return tuple((name, types[name]) for name in names), extra


def resolve_positive(labels: Sequence[Any], configured: Any, target: str) -> Any:
    """Return the positive label for a binary target (as spelled in ``labels``), None otherwise."""
    if len(labels) != 2:
        return None
    if configured is None:
        return labels[-1]
    for label in labels:
        if label == configured:
            return label
    raise DataError(
        f"data.positive_label {configured!r} is not a value of target '{target}' "
        f"(labels: {', '.join(repr(v) for v in labels)})"
    )

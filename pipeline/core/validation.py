"""Validation rules for one table against the config's schema: every failure at once.

The checks are data: ``REGISTRY`` holds one entry per check, in report order (the names are
``CHECKS`` in ``pipeline/core/checks.py``, which the config check reads without pandas). An entry
has a name, a phase (what ``timings`` reports it under), what it applies to and a ``run``
function returning :class:`Failure` records. A :class:`TableCheck` runs once on the table (its
``applies`` names the columns it reads: None for the table as a whole, none at all when it does
not apply); a :class:`ColumnCheck` runs on each column its ``applies`` names. ``validate_frame``
loops over the registry, so skipping (``schema.skip_checks``, any name), counting (how many
columns each check looked at) and ordering happen in one place.

In report order: minimum rows, required and unexpected columns; the target (present, within its
null limit, usable for the task), labels, class balance; per column (``pipeline/core/columns.py``)
type, range, allowed values, nulls and infinities; the features' integrity
(``pipeline/core/integrity.py``: constant, category variants, mixed types, id-like, conflicting
labels), single-feature leakage, and last the share of exact duplicate rows. What several checks
share (the target's values, a column as numbers, its distinct values) is computed once, on first
use, so a skipped check costs nothing.

The checks are vectorised pandas/numpy rather than pandera: on a 1,000,000-row, 20-column
table pandera's range/isin checks alone took 0.35 s (each check copies the column to drop
nulls), and on bad data its row-level failure cases took 26 s (1.9 s capped at two per
check); it also has no null-fraction limit. Here a check costs one pass over a column,
and bad values are counted with one example each.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Literal

import pandas as pd

from pipeline.config import ColumnSchema, Config
from pipeline.core import columns, integrity, table_checks
from pipeline.core.columns import Column
from pipeline.records import CheckSummary, Failure, Validation

Scope = Literal["table", "column"]


class Table:
    """The table under validation, with what several checks share, each computed on first use."""

    def __init__(self, frame: pd.DataFrame, config: Config) -> None:
        self.frame = frame
        self.config = config
        self.schema = config.schema
        self.target = config.data.target
        self.classification = config.data.task == "classification"

    @cached_property
    def present(self) -> list[ColumnSchema]:
        """Return the schema's columns that the table has, in schema order."""
        return [c for c in self.schema.columns if c.name in self.frame.columns]

    @cached_property
    def features(self) -> list[ColumnSchema]:
        """Return the feature columns (not target, not ids) that the table has."""
        return integrity.features(self.frame, self.config)

    @cached_property
    def texts(self) -> list[ColumnSchema]:
        """Return the categorical features, then a classification target (values that are spelled)."""
        found = [c for c in self.features if c.type == "categorical"]
        if self.classification and self.target in self.frame.columns:
            found.append(
                self.schema.column(self.target) or ColumnSchema(name=self.target, type="categorical")
            )
        return found

    @cached_property
    def target_check(self) -> tuple[list[Failure], pd.Series | None]:
        """Return the target check's failures and the target's non-null values (see :func:`check_target`)."""
        return table_checks.check_target(self.frame, self.config)

    @property
    def target_values(self) -> pd.Series | None:
        """Return the target's non-null values (None: no target, or no value in it)."""
        return self.target_check[1]

    @property
    def labelled(self) -> bool:
        """Return True for a classification table whose target has values."""
        return self.classification and self.target_values is not None

    @cached_property
    def class_counts(self) -> pd.Series:
        """Return the rows of each class of the target."""
        values = self.target_values
        return values.value_counts(dropna=True) if values is not None else pd.Series(dtype=int)

    @cached_property
    def conflicting(self) -> list[Failure] | None:
        """Return the conflicting-label failures, or None when the features do not identify rows."""
        limit = self.schema.max_conflicting_fraction
        return integrity.conflicting_failures(self.frame, self.features, self.target, limit)

    def column(self, name: str) -> Column:
        """Return a fresh view of column ``name`` (its schema; a target without one is categorical)."""
        schema = self.schema.column(name) or ColumnSchema(name=name, type="categorical")
        return Column(self.frame, schema, self.config)


@dataclass(frozen=True)
class TableCheck:
    """A check run once on the table; ``applies`` names the columns it reads (None: the table as a
    whole; none: it does not apply to this table)."""

    name: str
    phase: str
    applies: Callable[[Table], Sequence[str] | None]
    run: Callable[[Table], list[Failure]]
    scope: ClassVar[Scope] = "table"


@dataclass(frozen=True)
class ColumnCheck:
    """A check run on each column ``applies`` names, in that order."""

    name: str
    phase: str
    applies: Callable[[Table], Sequence[str]]
    run: Callable[[Column], list[Failure]]
    scope: ClassVar[Scope] = "column"


Check = TableCheck | ColumnCheck


def _schema_columns(keep: Callable[[ColumnSchema], bool]) -> Callable[[Table], list[str]]:
    """Return ``applies``: the schema's columns in the table that ``keep`` accepts."""
    return lambda table: [c.name for c in table.present if keep(c)]


def _feature_columns(keep: Callable[[ColumnSchema], bool]) -> Callable[[Table], list[str]]:
    """Return ``applies``: the feature columns that ``keep`` accepts."""
    return lambda table: [c.name for c in table.features if keep(c)]


def _target_if(when: Callable[[Table], bool]) -> Callable[[Table], tuple[str, ...]]:
    """Return ``applies``: the target column when ``when`` holds, else nothing."""
    return lambda table: (table.target,) if when(table) else ()


def _every(column: ColumnSchema) -> bool:
    return True


def _categorical(column: ColumnSchema) -> bool:
    return column.type == "categorical"


def _numeric(column: ColumnSchema) -> bool:
    return column.type == "numeric"


def _constant(column: Column) -> list[Failure]:
    distinct = {column.name: column.distinct} if column.schema.type == "categorical" else None
    limit = column.config.schema.max_dominant_fraction
    return integrity.constant_failures(column.frame, [column.schema], limit, distinct)


REGISTRY: tuple[Check, ...] = (
    TableCheck(
        "min_rows", "table", lambda t: None, lambda t: table_checks.check_min_rows(t.frame, t.schema.min_rows)
    ),
    TableCheck(
        "required_columns",
        "table",
        lambda t: [c.name for c in t.schema.columns],
        lambda t: table_checks.check_required(t.frame, t.config),
    ),
    TableCheck(
        "unexpected_columns",
        "table",
        lambda t: (
            [str(n) for n in t.frame.columns]
            if t.schema.columns and not t.schema.allow_unexpected_columns
            else []
        ),
        lambda t: table_checks.check_unexpected(t.frame, t.config),
    ),
    TableCheck("target", "target", _target_if(lambda t: True), lambda t: t.target_check[0]),
    TableCheck(
        "labels",
        "target",
        _target_if(lambda t: t.labelled and t.schema.labels is not None),
        lambda t: table_checks.check_labels(t.class_counts, t.config),
    ),
    TableCheck(
        "class_balance",
        "target",
        _target_if(lambda t: t.labelled),
        lambda t: table_checks.check_class_balance(t.class_counts, t.config),
    ),
    ColumnCheck(
        "type", "columns", _schema_columns(lambda c: c.type in ("numeric", "boolean")), columns.type_failures
    ),
    ColumnCheck(
        "range",
        "columns",
        _schema_columns(lambda c: c.type == "numeric" and (c.min is not None or c.max is not None)),
        columns.range_failures,
    ),
    ColumnCheck(
        "allowed",
        "columns",
        _schema_columns(lambda c: c.allowed is not None and c.type != "boolean"),
        columns.allowed_failures,
    ),
    ColumnCheck("nulls", "columns", _schema_columns(_every), columns.null_failures),
    ColumnCheck("infinite", "columns", _schema_columns(_numeric), columns.infinite_failures),
    ColumnCheck("constant", "integrity", _feature_columns(_every), _constant),
    ColumnCheck(
        "category_variants",
        "integrity",
        lambda t: [c.name for c in t.texts],
        lambda c: integrity.variant_failures({c.name: c.distinct}),
    ),
    ColumnCheck(
        "mixed_types",
        "integrity",
        _feature_columns(_categorical),
        lambda c: integrity.mixed_type_failures(c.frame, [c.schema], {c.name: c.distinct}),
    ),
    ColumnCheck(
        "id_like",
        "integrity",
        _feature_columns(_every),
        lambda c: integrity.id_like_failures(c.frame, [c.schema]),
    ),
    TableCheck(
        "conflicting_labels",
        "integrity",
        _target_if(lambda t: t.labelled and t.conflicting is not None),
        lambda t: t.conflicting or [],
    ),
    TableCheck(
        "leakage",
        "leakage",
        lambda t: [c.name for c in t.features] if t.target_values is not None else [],
        lambda t: integrity.leakage_failures(t.frame, t.features, t.config),
    ),
    TableCheck(
        "duplicates",
        "duplicates",
        lambda t: [str(n) for n in t.frame.columns],
        lambda t: table_checks.check_duplicates(t.frame, t.schema.max_duplicate_fraction),
    ),
)
"""Every check, in report order (its names are ``CHECKS``; a test holds the two equal)."""


def validate_frame(
    frame: pd.DataFrame,
    config: Config,
    *,
    run: str = "",
    data_sha256: str = "",
    timings: dict[str, float] | None = None,
) -> Validation:
    """Run every check not in ``schema.skip_checks`` on ``frame`` and return the report.

    ``timings`` (when given) gets seconds per phase; ``run`` and ``data_sha256`` name the run and
    the file the table came from, for the record.
    """
    timings = timings if timings is not None else {}
    table = Table(frame, config)
    skip = set(config.schema.skip_checks)
    looked: dict[str, int | None] = {}
    found: dict[str, list[Failure]] = {}
    for phase, checks in itertools.groupby(REGISTRY, key=lambda check: check.phase):
        started = time.perf_counter()
        _run_phase(table, [c for c in checks if c.name not in skip], looked, found)
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - started
    failures = [failure for name in looked for failure in found[name]]
    return Validation(
        run=run,
        data_sha256=data_sha256,
        passed=not failures,
        rows=len(frame),
        columns=frame.shape[1],
        checks=tuple(CheckSummary(name, n, len(found[name]), not found[name]) for name, n in looked.items()),
        failures=tuple(failures),
    )


def _run_phase(
    table: Table, checks: list[Check], looked: dict[str, int | None], found: dict[str, list[Failure]]
) -> None:
    """Run the checks that apply; record in ``looked`` how many columns each looked at, in ``found`` its failures.

    Column checks run column by column, so what a column's checks share is computed once and
    freed before the next column; each check's failures keep the order of its ``applies``.
    """
    scopes: dict[ColumnCheck, Sequence[str]] = {}
    for check in checks:
        applies = check.applies(table)
        if applies is not None and not applies:
            continue  # it does not apply to this table
        looked[check.name] = None if applies is None else len(applies)
        if isinstance(check, TableCheck):
            found[check.name] = check.run(table)
        elif applies is not None:
            scopes[check] = applies
    results: dict[tuple[str, str], list[Failure]] = {}
    for name in dict.fromkeys(itertools.chain.from_iterable(scopes.values())):
        column = table.column(name)  # freed, with what it computed, before the next column
        for check, names in scopes.items():
            if name in names:
                results[check.name, name] = check.run(column)
    for check, names in scopes.items():
        found[check.name] = [failure for name in names for failure in results[check.name, name]]


def failure_summary(report: Validation, path: str | None) -> str:
    """Return the one error line: the first failure, how many more, and where the report is (if written)."""
    first = report.failures[0].message
    more = len(report.failures) - 1
    parts = [f"and {more} more failure{'s' if more > 1 else ''}"] if more else []
    parts += [f"see {path}"] if path else []
    return f"validation failed: {first}" + (f" ({'; '.join(parts)})" if parts else "")

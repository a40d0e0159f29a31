"""Validation rules on frames (no files): labels, class balance, booleans, nulls, minimum rows, and
the check registry: every check skipped by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Config, load_config
from pipeline.core.checks import CHECKS
from pipeline.core.synth import churn_frame
from pipeline.core.validation import REGISTRY, validate_frame
from tests.conftest import Project

Defect = Callable[[pd.DataFrame, Config], tuple[pd.DataFrame, Config]]


@pytest.fixture
def config(make_project: Callable[..., Project]) -> Config:
    return load_config(make_project(rows=60).config)


def test_labels_and_class_balance_name_the_bad_classes(config: Config) -> None:
    # given a target with an unknown label 2 and a rare class 1
    frame = churn_frame(400, 3)
    frame["churned"] = np.where(np.arange(400) < 10, 1, 0)
    frame.loc[[20, 21], "churned"] = 2

    # when
    report = validate_frame(frame, config)

    # then
    messages = [f"{f.check}: {f.message}" for f in report.failures]
    assert "labels: target 'churned' has value(s) not in schema.labels [0, 1]: 2 (2 rows)" in messages, (
        messages
    )
    assert any(m.startswith("class_balance: class 1 of target 'churned' is 2.5%") for m in messages), messages


def test_boolean_column_accepts_words_and_rejects_other_text(config: Config) -> None:
    # given has_partner spelled yes/no, with one "maybe"
    frame = churn_frame(200, 3)
    frame["has_partner"] = np.where(frame["has_partner"], "yes", "no")
    good = validate_frame(frame, config)
    frame.loc[3, "has_partner"] = "maybe"

    # when
    bad = validate_frame(frame, config)

    # then
    assert good.passed, f"yes/no is a boolean: {good.failures}"
    assert [(f.check, f.column) for f in bad.failures] == [("type", "has_partner")], bad.failures


def test_non_nullable_column_fails_on_a_single_null(config: Config) -> None:
    # given contract (nullable = false) with one null
    frame = churn_frame(200, 3)
    frame.loc[0, "contract"] = None

    # when
    report = validate_frame(frame, config)

    # then
    assert [f.message for f in report.failures] == [
        "column 'contract' has 1 null(s) (0.5%), expected none (nullable = false)"
    ]


def test_min_rows_fails_below_the_limit(config: Config) -> None:
    report = validate_frame(churn_frame(40, 3), config)

    assert ("min_rows", None) in {(f.check, f.column) for f in report.failures}, report.failures


def _schema(config: Config, **changes: Any) -> Config:
    return replace(config, schema=replace(config.schema, **changes))


def _column(config: Config, name: str, **changes: Any) -> Config:
    """Return ``config`` with the schema of column ``name`` changed."""
    columns = tuple(replace(c, **changes) if c.name == name else c for c in config.schema.columns)
    return _schema(config, columns=columns)


def _set(frame: pd.DataFrame, rows: Any, column: str, value: Any) -> pd.DataFrame:
    """Return ``frame`` with ``value`` in ``column`` at ``rows`` (the column becomes object when it must)."""
    frame = frame.astype({column: object})
    frame.loc[rows, column] = value
    return frame


def _conflicting(frame: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, Config]:
    """Rows 20-59 repeat the features of rows 0-39 with the other label (10% of rows)."""
    features = [c for c in frame.columns if c not in ("customer_id", "churned")]
    frame.loc[20:59, features] = frame.loc[0:39, features].to_numpy()
    frame.loc[20:59, "churned"] = 1 - frame.loc[0:39, "churned"].to_numpy()
    return frame, config


def _leak(frame: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, Config]:
    """A feature that is a copy of the target."""
    leak = replace(config.schema.columns[0], name="leak", type="numeric", nullable=True)
    return frame.assign(leak=frame["churned"]), _schema(config, columns=(*config.schema.columns, leak))


# One table per check with that check's defect and no other (the churn table: 400 rows, 30% churn).
DEFECTS: dict[str, Defect] = {
    "min_rows": lambda f, c: (f.head(40), c),
    "required_columns": lambda f, c: (f.drop(columns=["region"]), c),
    "unexpected_columns": lambda f, c: (f.assign(extra=1), c),
    "target": lambda f, c: (_set(f.astype({"churned": float}), slice(0, 5), "churned", np.nan), c),
    "labels": lambda f, c: (_set(f, f.index % 10 == 0, "churned", 2), _column(c, "churned", allowed=None)),
    "class_balance": lambda f, c: (f.assign(churned=(f.index < 8).astype(int)), c),
    "type": lambda f, c: (_set(f, 3, "support_calls", "many"), c),
    "range": lambda f, c: (_set(f, 3, "tenure_months", 500), c),
    "allowed": lambda f, c: (_set(f, 3, "region", "mars"), c),
    "nulls": lambda f, c: (_set(f, 0, "contract", None), c),
    "infinite": lambda f, c: (_set(f, 3, "monthly_charges", np.inf).astype({"monthly_charges": float}), c),
    "constant": lambda f, c: (f.assign(region="north"), c),
    "category_variants": lambda f, c: (
        _set(f, slice(0, 30), "region", "North "),
        _column(c, "region", allowed=None),
    ),
    "mixed_types": lambda f, c: (_set(f, slice(0, 30), "region", "12"), _column(c, "region", allowed=None)),
    "id_like": lambda f, c: (f, replace(c, data=replace(c.data, id_columns=()))),
    "conflicting_labels": _conflicting,
    "leakage": _leak,
    "duplicates": lambda f, c: (pd.concat([f, f.iloc[:30]], ignore_index=True), c),
}


def test_the_registry_runs_every_check_in_report_order() -> None:
    assert tuple(check.name for check in REGISTRY) == CHECKS, (
        "REGISTRY and CHECKS must list the same checks in one order"
    )
    assert set(DEFECTS) == set(CHECKS), f"give each check a defect below: {set(CHECKS) ^ set(DEFECTS)}"


@pytest.mark.parametrize("name", CHECKS)
def test_skip_checks_turns_off_each_check_by_name(name: str, config: Config) -> None:
    # given: a table with this check's defect, and the same config skipping the check
    frame, defective = DEFECTS[name](churn_frame(400, 3), config)
    skipping = _schema(defective, skip_checks=(name,))

    # when
    checked = validate_frame(frame, defective)
    skipped = validate_frame(frame, skipping)

    # then: the check alone fails the table, and skipping it by name passes the table
    assert {f.check for f in checked.failures} == {name}, f"{name}: {[f.message for f in checked.failures]}"
    assert skipped.passed, f"skip_checks = [{name!r}] must pass: {[f.message for f in skipped.failures]}"
    assert name not in {c.check for c in skipped.checks}, f"a skipped check is not reported: {name}"
    assert len(skipped.checks) == len(checked.checks) - 1, "skipping one check leaves the others running"

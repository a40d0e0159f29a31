"""Validation rules on frames (no files): labels, class balance, booleans, nulls, minimum rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from pipeline.config import Config, load_config
from pipeline.core.synth import churn_frame
from pipeline.core.validation import validate_frame
from tests.conftest import Project


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

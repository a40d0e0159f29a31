"""The dummy baseline and the metric floor above it: scored as scikit-learn's dummies score, judged by margin."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor

from model.records import Baseline, BaselineMetrics, Status
from pipeline.config_gates import MetricGate
from pipeline.core.floors import fit_baseline, metric_gate, score_baseline
from pipeline.core.metrics import score


@pytest.mark.parametrize(
    ("y_train", "y_test", "labels"),
    [
        ([0, 0, 0, 1, 1, 0, 1, 0], [1, 0, 0, 1, 0, 1], [0, 1]),
        (["b", "a", "c", "b", "b", "a"], ["a", "b", "c", "c", "b"], ["a", "b", "c"]),
        ([True, False, False, False], [True, True, False], [False, True]),
    ],
    ids=["binary", "three-text-classes", "booleans"],
)
def test_the_baseline_scores_as_the_fitted_dummy_classifier(
    y_train: list[Any], y_test: list[Any], labels: list[Any]
) -> None:
    # given scikit-learn's prior dummy fitted on the same training rows
    X_train, X_test = np.zeros((len(y_train), 1)), np.zeros((len(y_test), 1))
    dummy = DummyClassifier(strategy="prior").fit(X_train, y_train)
    positive = labels[-1]
    expected = score(
        "classification",
        np.asarray(y_test),
        dummy.predict(X_test),
        dummy.predict_proba(X_test),
        labels,
        positive,
    )

    # when
    baseline = fit_baseline(np.asarray(y_train), "classification", labels)
    scored = score_baseline(baseline, "classification", np.asarray(y_test), labels, positive)

    # then: the same scores, and a constant score has a ROC AUC of one half
    assert scored is not None and scored.overall == pytest.approx(expected, nan_ok=True)
    assert scored.overall["roc_auc"] == 0.5
    assert baseline.strategy == "prior" and baseline.rows == len(y_train)
    assert baseline.prior == pytest.approx([y_train.count(label) / len(y_train) for label in labels])


def test_the_baseline_scores_as_the_fitted_dummy_regressor() -> None:
    rng = np.random.default_rng(0)
    y_train, y_test = rng.poisson(3.0, 400).astype(float), rng.poisson(3.0, 150).astype(float)
    dummy = DummyRegressor(strategy="mean").fit(np.zeros((400, 1)), y_train)
    expected = score("regression", y_test, dummy.predict(np.zeros((150, 1))))

    baseline = fit_baseline(y_train, "regression", None)
    scored = score_baseline(baseline, "regression", y_test, [], None)

    assert baseline == Baseline("mean", 400, None, pytest.approx(y_train.mean()))
    assert scored is not None and scored.overall == pytest.approx(expected)
    assert scored.overall["r2"] is not None and scored.overall["r2"] <= 0, (
        "the training mean is no better on new rows"
    )


def test_a_label_the_training_rows_lack_gets_a_share_of_zero() -> None:
    baseline = fit_baseline(np.array(["a", "a", "b"]), "classification", ["a", "b", "c"])

    assert baseline.prior == pytest.approx([2 / 3, 1 / 3, 0.0])


def _baseline(overall: dict[str, float | None]) -> BaselineMetrics:
    return BaselineMetrics(Baseline("mean", 2250, None, 2.61), overall)


@pytest.mark.parametrize(
    ("gate", "value", "base", "status", "floor"),
    [
        (MetricGate("r2", above_baseline=0.01), 0.03, -0.0002, Status.PASSED, 0.0098),
        (MetricGate("r2", above_baseline=0.01), 0.005, -0.0002, Status.FAILED, 0.0098),
        (MetricGate("r2", above_baseline=0.01), -0.0002, -0.0002, Status.FAILED, 0.0098),
        (MetricGate("rmse", above_baseline=0.1), 4.0, 4.2, Status.PASSED, 4.1),
        (MetricGate("rmse", above_baseline=0.1), 4.15, 4.2, Status.FAILED, 4.1),
        (MetricGate("r2", above_baseline=0.0), 0.0, 0.0, Status.PASSED, 0.0),
    ],
    ids=[
        "beats",
        "beats-by-less-than-the-margin",
        "is-the-dummy",
        "lower-is-better",
        "lower-short",
        "tie-at-0",
    ],
)
def test_a_floor_above_the_baseline_is_the_baseline_moved_by_the_margin_towards_better(
    gate: MetricGate, value: float, base: float, status: Status, floor: float
) -> None:
    result = metric_gate(gate, {gate.metric: value}, _baseline({gate.metric: base}))

    assert result.status is status, result.message
    assert result.threshold == pytest.approx(floor) and result.observed == value
    assert f"the dummy baseline's {base:.4f}" in result.message, result.message
    assert f"margin {gate.above_baseline:g}" in result.message
    assert "mean of its 2,250 training rows" in result.message, "the message says what the dummy is"


def test_a_baseline_that_was_not_measured_is_an_error_never_a_pass() -> None:
    gate = MetricGate("r2", above_baseline=0.01)

    missing = metric_gate(gate, {"r2": 0.5}, None)
    undefined = metric_gate(gate, {"r2": 0.5}, _baseline({"r2": None}))
    nan = metric_gate(gate, {"r2": 0.5}, _baseline({"r2": float("nan")}))

    assert missing.status is Status.ERROR and "the baseline was not measured" in missing.message
    assert undefined.status is Status.ERROR and "undefined on the held-out rows" in undefined.message
    assert nan.status is Status.ERROR, nan.message


def test_an_absolute_threshold_ignores_the_baseline() -> None:
    gate = MetricGate("roc_auc", threshold=0.75)

    result = metric_gate(gate, {"roc_auc": 0.8}, None)

    assert (
        result.status is Status.PASSED
        and result.message == "roc_auc 0.8000 meets >= 0.75 on the held-out rows"
    )

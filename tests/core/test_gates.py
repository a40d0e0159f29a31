"""Gate rules on plain data: thresholds in the metric's direction, the champion rule, slices, collapse, drift."""

from __future__ import annotations

import pytest

from model.records import Status
from pipeline.config_gates import ChampionGate, CollapseGate, DriftGate, MetricGate, SliceGate
from pipeline.core.gates import champion_gate, collapse_gate, drift_gate, metric_gate, slice_gate
from pipeline.records import Comparison, Drift
from tests.conftest import drift_limits, feature_drift

PASSED, FAILED, SKIPPED, INCONCLUSIVE = Status.PASSED, Status.FAILED, Status.SKIPPED, Status.INCONCLUSIVE


def _comparison(delta: float, low: float, high: float) -> Comparison:
    return Comparison(
        "roc_auc", {"roc_auc": 0.8 + delta}, {"roc_auc": 0.8}, delta, low, high, 1000, 0.95, 500
    )


@pytest.mark.parametrize(
    ("delta", "low", "high", "status", "why"),
    [
        (-0.05, -0.08, -0.02, FAILED, "a drop beyond tolerance whose CI is below zero is a real regression"),
        (-0.05, -0.10, 0.01, INCONCLUSIVE, "a wide interval that spans the tolerance cannot decide"),
        (-0.005, -0.009, -0.001, PASSED, "a significant drop within tolerance is a tie"),
        (0.0, 0.0, 0.0, PASSED, "the same model is a tie"),
        (0.03, 0.01, 0.05, PASSED, "a better candidate passes"),
    ],
)
def test_champion_rule(delta: float, low: float, high: float, status: str, why: str) -> None:
    result = champion_gate(ChampionGate(tolerance=0.01), _comparison(delta, low, high))

    assert result.status == status, f"{why}: got {result.status} ({result.message})"


def test_champion_gate_without_champion_is_skipped_and_says_why() -> None:
    result = champion_gate(ChampionGate(), None, "no champion: first model, nothing to compare")

    assert result.status == SKIPPED
    assert "first model" in result.message


@pytest.mark.parametrize(
    ("gate", "value", "status"),
    [
        (MetricGate("roc_auc", 0.75), 0.80, PASSED),
        (MetricGate("roc_auc", 0.75), 0.70, FAILED),
        (MetricGate("log_loss", 0.6, direction="lower"), 0.5, PASSED),
        (MetricGate("log_loss", 0.6, direction="lower"), 0.7, FAILED),
    ],
)
def test_metric_gate_respects_direction(gate: MetricGate, value: float, status: str) -> None:
    assert metric_gate(gate, {gate.metric: value}).status == status, f"{gate} with {value}"


def test_a_metric_that_was_not_measured_is_an_error_never_a_pass() -> None:
    missing = metric_gate(MetricGate("roc_auc", 0.75), {"accuracy": 0.9})
    undefined = metric_gate(MetricGate("roc_auc", 0.75), {"roc_auc": None})

    assert missing.status == Status.ERROR and "not evaluated" in missing.message
    assert undefined.status == Status.ERROR and "undefined" in undefined.message
    assert missing.blocking and undefined.blocking, "a required gate that could not measure must fail the run"


def test_collapse_gate_fails_when_a_class_is_never_predicted() -> None:
    result = collapse_gate(CollapseGate(0.02), "classification", [0, 1], {"0": 0.995, "1": 0.005})

    assert result.status == FAILED, result.message
    assert "1 0.5%" in result.message, f"the message must name the rare class: {result.message}"


def test_collapse_gate_fails_on_constant_regression_predictions() -> None:
    collapsed = collapse_gate(CollapseGate(), "regression", [], {"mean": 3.0, "std": 0.0})
    healthy = collapse_gate(CollapseGate(), "regression", [], {"mean": 3.0, "std": 1.2})

    assert (collapsed.status, healthy.status) == (FAILED, PASSED)


def test_slice_gate_names_the_slice_below_the_floor() -> None:
    slices = {
        "region": {
            "north": {"rows": 60, "roc_auc": 0.8},
            "south": {"rows": 55, "roc_auc": 0.6},
            "east": {"rows": 3, "skipped": "fewer than slices.min_rows = 30 rows"},
        }
    }

    result = slice_gate(SliceGate("roc_auc", 0.65), slices)
    unconfigured = slice_gate(SliceGate(), slices)

    assert result.status == FAILED and "region=south" in result.message, result.message
    assert unconfigured.status == SKIPPED


def test_drift_gate_fails_when_drift_did_not_pass() -> None:
    feature = feature_drift("tenure_months", "numeric", 0.5, True)
    report = Drift(
        "r1",
        "d" * 64,
        "ref.csv",
        "csv",
        Status.FAILED,
        (feature,),
        ("tenure_months",),
        (),
        False,
        None,
        None,
        drift_limits(),
    )
    failed = drift_gate(DriftGate(), report)
    missing = drift_gate(DriftGate(), None, "no drift.json: drift.reference is not configured")

    assert failed.status == FAILED and "tenure_months" in failed.message
    assert missing.status == SKIPPED and "not configured" in missing.message


def test_a_lower_is_better_gate_without_direction_fails_above_its_threshold() -> None:
    # given: an rmse gate that names no direction (the metric table says lower is better)
    gate = MetricGate("rmse", 10.0)

    # when: the model's rmse is far above the threshold, and then below it
    high, low = metric_gate(gate, {"rmse": 55.0}), metric_gate(gate, {"rmse": 8.0})

    # then
    assert high.status == FAILED, f"rmse 55 must miss <= 10: {high.message}"
    assert low.status == PASSED and "<= 10" in low.message, low.message


def test_a_champion_comparison_on_no_row_is_an_error_that_the_warn_rule_cannot_pass() -> None:
    # given every held-out row of the candidate was on the champion's training side: nothing compared
    from pipeline.core.gates import check_blockers

    empty = Comparison("roc_auc", {}, {}, None, None, None, 1000, 0.95, 0)

    # when
    result = champion_gate(ChampionGate(), empty, excluded=750)

    # then: not "inconclusive" (which a pull-request check passes with a warning): it measured nothing
    assert result.status == Status.ERROR, result
    assert "750" in result.message and "none of" in result.message, result.message
    assert check_blockers([result], "warn") == [result]


def test_a_prediction_drift_that_could_not_be_compared_is_an_error_when_a_reference_is_configured() -> None:
    from pipeline.config_gates import PredictionDriftGate
    from pipeline.core.gates import prediction_drift_gate

    why = "none of the 400 reference rows falls on the candidate's held-out side"
    configured = prediction_drift_gate(PredictionDriftGate(required=True), None, why, configured=True)
    unset = prediction_drift_gate(
        PredictionDriftGate(required=True), None, "drift.reference is not configured"
    )

    assert configured.status == Status.ERROR and configured.blocking and why in configured.message
    assert unset.status == SKIPPED

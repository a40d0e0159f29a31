"""The metric entries: each equals scikit-learn's own function, unweighted and weighted, and scoring calls them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from pipeline.core.metrics import METRICS, lookup, metric_names, score

CLASSIFICATION = metric_names("classification")
REGRESSION = metric_names("regression")


def _averaged(function: Callable[..., Any]) -> Callable[..., Any]:
    """Return scikit-learn's precision/recall/F1 as the pipeline scores them (binary: the positive class)."""

    def reference(y: np.ndarray, response: np.ndarray, w: Any, labels: list[Any], positive: Any) -> Any:
        average = {"average": "binary", "pos_label": positive} if len(labels) == 2 else {"average": "macro"}
        return function(y, response, labels=labels, zero_division=0, sample_weight=w, **average)

    return reference


def _roc_auc(y: np.ndarray, proba: np.ndarray, w: Any, labels: list[Any], positive: Any) -> Any:
    if len(labels) == 2:
        return skm.roc_auc_score(y == positive, proba[:, labels.index(positive)], sample_weight=w)
    return skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels, sample_weight=w)


def _brier(y: np.ndarray, proba: np.ndarray, w: Any, labels: list[Any], positive: Any) -> Any:
    if len(labels) == 2:
        return skm.brier_score_loss(y == positive, proba[:, labels.index(positive)], sample_weight=w)
    return skm.brier_score_loss(y, proba, labels=labels, sample_weight=w)


def _ece(y: np.ndarray, proba: np.ndarray, w: Any, labels: list[Any], positive: Any) -> Any:
    """Expected calibration error written out bin by bin (scikit-learn has none): the weighted share of
    each of ten equal-width bins times its gap between mean probability and the rate it came true."""
    weights = np.ones(len(y)) if w is None else np.asarray(w, dtype=float)
    if len(labels) == 2:
        confidence = proba[:, labels.index(positive)]
        happened = (y == positive).astype(float)
    else:
        confidence = proba.max(axis=1)
        happened = (np.asarray(labels)[proba.argmax(axis=1)] == y).astype(float)
    total = 0.0
    for b in range(10):
        low, high = b / 10, (b + 1) / 10
        inside = (confidence >= low) & ((confidence < high) if b < 9 else (confidence <= high))
        if weights[inside].sum() > 0:
            gap = np.average(confidence[inside], weights=weights[inside]) - np.average(
                happened[inside], weights=weights[inside]
            )
            total += weights[inside].sum() * abs(gap)
    return total / weights.sum()


# scikit-learn's function for each metric: (y_true, response, sample_weight, labels, positive label)
SKLEARN: dict[str, Callable[[np.ndarray, np.ndarray, Any, list[Any], Any], Any]] = {
    "accuracy": lambda y, r, w, labels, pos: skm.accuracy_score(y, r, sample_weight=w),
    "balanced_accuracy": lambda y, r, w, labels, pos: skm.balanced_accuracy_score(y, r, sample_weight=w),
    "precision": _averaged(skm.precision_score),
    "recall": _averaged(skm.recall_score),
    "f1": _averaged(skm.f1_score),
    "roc_auc": _roc_auc,
    "log_loss": lambda y, r, w, labels, pos: skm.log_loss(y, r, labels=labels, sample_weight=w),
    "brier": _brier,
    "ece": _ece,
    "mae": lambda y, r, w, labels, pos: skm.mean_absolute_error(y, r, sample_weight=w),
    "rmse": lambda y, r, w, labels, pos: skm.root_mean_squared_error(y, r, sample_weight=w),
    "r2": lambda y, r, w, labels, pos: skm.r2_score(y, r, sample_weight=w),
}


def _weights(kind: str, rows: int) -> np.ndarray | None:
    """Return no weights, positive real weights, or a bootstrap resample's counts (zeros included)."""
    rng = np.random.default_rng(7)
    if kind == "unit":
        return None
    if kind == "real":
        return rng.uniform(0.1, 3.0, rows)
    return np.bincount(rng.integers(0, rows, rows), minlength=rows).astype(float)


def _classifier(classes: int, rows: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return labels ("a", "b", ...), a decent classifier's predictions and its probabilities (ties included)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, classes, rows)
    proba = rng.dirichlet(np.ones(classes), rows)
    proba[np.arange(rows), codes] += 0.4
    proba = np.round(proba / proba.sum(axis=1, keepdims=True), 2)  # ties exercise the AUC's half credit
    proba[:, -1] = 1.0 - proba[:, :-1].sum(axis=1)
    names = np.array(list("abcdef"[:classes]))
    return names[codes], names[proba.argmax(axis=1)], proba


def test_every_metric_has_a_scikit_learn_reference() -> None:
    assert set(SKLEARN) == set(METRICS), (
        f"give each metric its scikit-learn reference: {set(METRICS) ^ set(SKLEARN)}"
    )


@pytest.mark.parametrize("weights", ["unit", "real", "resample"])
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_entry_equals_scikit_learn(name: str, classes: int, weights: str) -> None:
    # given: a classifier's predictions on string labels, and weights of one kind
    y, y_pred, proba = _classifier(classes)
    labels = sorted(set(y.tolist()))
    positive = labels[0]  # not the default (last) label: the entry must honour it
    w = _weights(weights, len(y))
    metric = METRICS[name]
    response = metric.pick(y_pred, proba)

    # when: the entry scores them
    value = metric(y, response, sample_weight=w, labels=labels, positive_label=positive)

    # then: it equals scikit-learn's function with the same weights
    expected = float(SKLEARN[name](y, response, w, labels, positive))
    assert value == pytest.approx(expected, abs=1e-12), (
        f"{name} ({weights} weights): {value} != sklearn {expected}"
    )


@pytest.mark.parametrize("weights", ["unit", "real", "resample"])
@pytest.mark.parametrize("name", REGRESSION)
def test_regression_entry_equals_scikit_learn(name: str, weights: str) -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(1000.0, 5.0, 300)  # a large mean: the R² sums must not lose digits
    y_pred = y + rng.normal(scale=2.0, size=300)
    w = _weights(weights, len(y))

    value = METRICS[name](y, y_pred, sample_weight=w)

    expected = float(SKLEARN[name](y, y_pred, w, [], None))
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-12), (
        f"{name} ({weights}): {value} != sklearn {expected}"
    )


def test_one_weight_row_per_resample_gives_one_value_each() -> None:
    # given: three resamples' weights at once, as the bootstrap passes them
    y, _, proba = _classifier(2)
    labels = ["a", "b"]
    rows = len(y)
    weights = np.stack([np.ones(rows), np.arange(rows) % 3, np.linspace(0.5, 2.0, rows)])

    # when
    values = lookup("roc_auc").weighed(y, proba, labels, "b")(weights)

    # then: each equals the one-row call
    expected = [
        lookup("roc_auc")(y, proba, sample_weight=row, labels=labels, positive_label="b") for row in weights
    ]
    assert values.tolist() == pytest.approx(expected, abs=1e-12)


def test_undefined_metrics_are_none_as_scikit_learn_has_them_nan_or_raises() -> None:
    # given: a single class in the truth, one regression row, a constant regression truth
    y = np.array(["a"] * 10)
    proba = np.tile([0.3, 0.7], (10, 1))

    # then
    assert METRICS["roc_auc"](y, proba, labels=["a", "b"]) is None, "ROC AUC of one class is undefined"
    assert METRICS["roc_auc"](y, None, labels=["a", "b"]) is None, "no probabilities, no ROC AUC"
    assert METRICS["r2"]([1.0], [2.0]) is None, "R² of one row is undefined"
    assert METRICS["r2"]([3.0, 3.0, 3.0], [3.0, 3.0, 4.0]) == skm.r2_score([3.0] * 3, [3.0, 3.0, 4.0]) == 0.0
    unknown = np.array(["a", "b", "c"])
    assert METRICS["log_loss"](unknown, np.tile([0.5, 0.5], (3, 1)), labels=["a", "b"]) is None, (
        "a true label outside the labels has no probability column"
    )


def test_score_reports_every_metric_of_the_task_from_the_entries() -> None:
    y, y_pred, proba = _classifier(3)
    labels = ["a", "b", "c"]

    scores = score("classification", y, y_pred, proba, labels)

    assert tuple(scores) == CLASSIFICATION
    for name in CLASSIFICATION:
        expected = METRICS[name](y, METRICS[name].pick(y_pred, proba), labels=labels)
        assert scores[name] == expected, name

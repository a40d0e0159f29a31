"""The paired bootstrap: the weighted form of every metric equals the reference score, and intervals decide."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.bootstrap import Predictions, paired_bootstrap, weighted_metric
from pipeline.core.metrics import metric_names, score

CLASSIFICATION = metric_names("classification")
REGRESSION = metric_names("regression")


def _random_classification(classes: int, rows: int = 400, seed: int = 0) -> tuple[np.ndarray, Predictions]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    proba = rng.dirichlet(np.ones(classes), rows)
    proba[np.arange(rows), y] += 0.4
    proba /= proba.sum(axis=1, keepdims=True)
    if classes == 2:  # ties in the scores exercise the half-credit of the AUC
        proba = np.round(proba, 2)
    return y, Predictions(proba.argmax(axis=1), proba)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("metric", CLASSIFICATION)
def test_weighted_metric_with_unit_weights_equals_score(classes: int, metric: str) -> None:
    # given: predictions of a decent classifier
    y, predictions = _random_classification(classes)
    labels = list(range(classes))

    # when: the bootstrap's weighted form is evaluated with every row counted once
    value = weighted_metric(metric, "classification", y, predictions, labels, 1)(np.ones((1, len(y))))[0]

    # then: it equals the reference implementation
    expected = score("classification", y, predictions.y_pred, predictions.proba, labels, 1)[metric]
    assert value == pytest.approx(expected, abs=1e-9), f"{metric}: bootstrap form {value} != score {expected}"


@pytest.mark.parametrize("metric", REGRESSION)
def test_weighted_regression_metric_with_unit_weights_equals_score(metric: str) -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    pred = y + rng.normal(scale=0.5, size=300)

    value = weighted_metric(metric, "regression", y, Predictions(pred, None))(np.ones((1, 300)))[0]

    assert value == pytest.approx(score("regression", y, pred)[metric], abs=1e-9), metric


def test_bootstrap_of_identical_models_is_a_zero_interval() -> None:
    y, predictions = _random_classification(2)

    low, high = paired_bootstrap("roc_auc", "classification", y, predictions, predictions, [0, 1], 1, 200)

    assert (low, high) == (0.0, 0.0), f"same model on the same resamples must give delta 0, got {low}..{high}"


def test_bootstrap_interval_excludes_zero_for_a_clearly_worse_candidate() -> None:
    # given: a good model (champion) and the same with its scores scrambled (candidate)
    y, good = _random_classification(2, rows=600)
    assert good.proba is not None
    order = np.random.default_rng(5).permutation(len(y))
    bad = Predictions(good.y_pred[order], good.proba[order])

    low, high = paired_bootstrap("roc_auc", "classification", y, bad, good, [0, 1], 1, 500)

    assert low is not None and high is not None
    assert high < 0, f"a scrambled candidate must be significantly worse, CI {low:.3f}..{high:.3f}"

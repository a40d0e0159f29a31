"""The paired bootstrap: it resamples with the metric entries scoring uses, and its intervals decide."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from pipeline.core.bootstrap import Predictions, paired_bootstrap
from pipeline.core.metrics import METRICS, Metric, Weighed, metric_names

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


def _spied(metric: Metric, calls: list[tuple[Any, Any]]) -> Metric:
    """Return ``metric`` with its function wrapped to record what it was given."""

    def function(y_true: Any, response: Any, labels: list[Any], positive: Any) -> Weighed:
        calls.append((y_true, response))
        return metric.function(y_true, response, labels, positive)

    return dataclasses.replace(metric, function=function)


@pytest.mark.parametrize("metric", [*CLASSIFICATION, *REGRESSION])
def test_the_bootstrap_resamples_with_the_metric_entry(metric: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: the metric's entry in METRICS replaced by one recording each call of its function
    if metric in REGRESSION:
        rng = np.random.default_rng(1)
        y = rng.normal(size=300)
        candidate = Predictions(y + rng.normal(scale=0.5, size=300), None)
        champion = Predictions(y + rng.normal(scale=0.6, size=300), None)
        task, labels = "regression", []
    else:
        y, candidate = _random_classification(3)
        _, champion = _random_classification(3, seed=1)
        task, labels = "classification", [0, 1, 2]
    expected = paired_bootstrap(metric, task, y, candidate, champion, labels, None, 200)
    calls: list[tuple[Any, Any]] = []
    monkeypatch.setitem(METRICS, metric, _spied(METRICS[metric], calls))

    # when
    interval = paired_bootstrap(metric, task, y, candidate, champion, labels, None, 200)

    # then: the entry's function scored both models, with the response the entry asks for
    entry = METRICS[metric]
    given = [response for _, response in calls]
    wanted = [entry.pick(p.y_pred, p.proba) for p in (candidate, champion)]
    assert len(given) == 2 and all(
        g is w or np.array_equal(g, w) for g, w in zip(given, wanted, strict=True)
    ), f"{metric}: the bootstrap must call the METRICS entry once per model with its response"
    assert interval == expected


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

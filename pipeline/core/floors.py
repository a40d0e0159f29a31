"""Metric floors that mean something: the dummy baseline, and the metric gate judged against it.

A floor such as "R² >= 0.1" is a guess that fails every honest model of a hard target (a count
of doctor visits) and passes a useless one of an easy target. The baseline makes it relative:
the dummy model that ignores every feature, fitted on the candidate's own training rows
(scikit-learn's ``DummyClassifier(strategy="prior")`` or ``DummyRegressor(strategy="mean")``)
and scored on the same held-out rows by the same metric functions. ``train`` fits it
(:func:`fit_baseline`, into the model's metadata), ``evaluate`` scores it (:func:`score_baseline`,
into ``metrics.json``'s ``baseline``), and a ``[[gates.metric]]`` with ``above_baseline = X``
requires the model to beat it by at least ``X`` in the metric's units and direction
(:func:`metric_gate`; ``threshold`` is the absolute floor). Pure: no file access.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from model.codec import plain
from model.records import Baseline, BaselineMetrics, Label, Result, Status
from pipeline.config_gates import MetricGate
from pipeline.core.metrics import lookup, score


def fit_baseline(y_train: Any, task: str, labels: Sequence[Label] | None) -> Baseline:
    """Return the dummy model fitted on the training rows' target ``y_train`` (no null targets).

    Classification: ``DummyClassifier(strategy="prior")``, its class shares in ``labels`` order (a
    label the rows lack has share 0); regression: ``DummyRegressor(strategy="mean")``, its mean.
    """
    from sklearn.dummy import DummyClassifier, DummyRegressor

    y = np.asarray(y_train)
    X = np.zeros((len(y), 1))
    if task == "classification":
        dummy = DummyClassifier(strategy="prior").fit(X, y)
        shares = {plain(c): float(p) for c, p in zip(dummy.classes_, dummy.class_prior_, strict=True)}
        prior = tuple(shares.get(label, 0.0) for label in (labels or list(shares)))
        return Baseline("prior", len(y), prior, None)
    regressor = DummyRegressor(strategy="mean").fit(X, y.astype(float))
    return Baseline("mean", len(y), None, float(np.ravel(regressor.constant_)[0]))


def baseline_response(baseline: Baseline, rows: int, labels: Sequence[Label]) -> tuple[np.ndarray, Any]:
    """Return what the dummy answers for ``rows`` rows: its predictions and (classifier) probabilities.

    As scikit-learn's dummies do: the commonest class (the first in label order on a tie) with the
    class shares as every row's probabilities, or the mean.
    """
    if baseline.strategy == "mean":
        return np.full(rows, baseline.mean, dtype=float), None
    prior = np.asarray(baseline.prior, dtype=float)
    commonest = list(labels)[int(np.argmax(prior))]
    return np.array([commonest] * rows, dtype=object), np.tile(prior, (rows, 1))


def score_baseline(
    baseline: Baseline | None, task: str, y_true: Any, labels: Sequence[Label], positive_label: Any
) -> BaselineMetrics | None:
    """Return the baseline scored on the rows ``y_true`` by every metric of ``task`` (None: no baseline)."""
    if baseline is None:
        return None
    y_pred, proba = baseline_response(baseline, len(y_true), labels)
    return BaselineMetrics(baseline, score(task, y_true, y_pred, proba, labels, positive_label))


def described(baseline: BaselineMetrics) -> str:
    """Return what the dummy predicts, in words: ``the mean of its 2,250 training rows``."""
    what = "class shares" if baseline.fitted.strategy == "prior" else "mean"
    return f"the {what} of its {baseline.fitted.rows:,} training rows"


def metric_gate(gate: MetricGate, metrics: dict[str, Any], baseline: BaselineMetrics | None = None) -> Result:
    """Compare one evaluated metric with its floor, in the metric's direction.

    The floor is ``threshold``, or the dummy baseline's value moved by ``above_baseline`` towards
    better. A metric, or a baseline, that was not measured (or is undefined on these rows) is an
    error: never a pass.
    """
    name = f"metric:{gate.metric}"
    higher = (gate.direction or lookup(gate.metric).direction) == "higher"
    value = _measured(metrics.get(gate.metric))
    if value is None:
        known = ", ".join(sorted(metrics)) or "none"
        why = (
            f"metric {gate.metric!r} not evaluated (have: {known})"
            if gate.metric not in metrics
            else f"{gate.metric} is undefined on the held-out rows"
        )
        return Result(name, Status.ERROR, gate.required, None, gate.threshold, why)
    floor, compared = _floor(gate, higher, baseline)
    if floor is None:
        message = f"{gate.metric} {value:.4f}, but above_baseline cannot be judged: {compared}"
        return Result(name, Status.ERROR, gate.required, value, None, message)
    ok = value >= floor if higher else value <= floor
    message = f"{gate.metric} {value:.4f} {'meets' if ok else 'misses'} {'>=' if higher else '<='} {compared}"
    return Result(name, Status.PASSED if ok else Status.FAILED, gate.required, value, floor, message)


def _floor(gate: MetricGate, higher: bool, baseline: BaselineMetrics | None) -> tuple[float | None, str]:
    """Return the floor and what it is, in words; (None, why) when the baseline it needs was not measured."""
    if gate.above_baseline is None:  # MetricGate holds exactly one of the two
        threshold = float(gate.threshold if gate.threshold is not None else math.nan)
        return threshold, f"{threshold:g} on the held-out rows"
    if baseline is None:
        return (
            None,
            "the baseline was not measured (metrics.json has none: the model's metadata records no dummy)",
        )
    base = _measured(baseline.overall.get(gate.metric))
    if base is None:
        return None, f"the dummy baseline's {gate.metric} is undefined on the held-out rows"
    floor = base + gate.above_baseline if higher else base - gate.above_baseline
    said = (
        f"{floor:.4f}: the dummy baseline's {base:.4f} {'+' if higher else '-'} margin {gate.above_baseline:g} "
        f"(the dummy predicts {described(baseline)}; both scored on the same held-out rows)"
    )
    return floor, said


def _measured(value: Any) -> float | None:
    """Return a metric's value, or None when it is missing or NaN (which is below no floor)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)

"""Calibration: whether a classifier's probabilities mean what they say.

The Brier score and the expected calibration error are metrics (``brier`` and ``ece`` of ``METRICS`` in
``pipeline/core/metrics.py``, which call these); the reliability curve is what the error sums: per
probability bin, what the rows said against how often it came true.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.core.metrics import Weighed, _average, _codes, _positive, _undefined
from pipeline.records import Calibration, ReliabilityBin

CALIBRATION_BINS = 10  # equal-width probability bins of the expected calibration error


def brier(y_true: np.ndarray, proba: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
    """Mean squared error of the probabilities: binary, of the positive class (scikit-learn's
    ``brier_score_loss``); multiclass, summed over the classes."""
    codes = _codes(y_true, labels)
    if len(labels) < 2 or (codes < 0).any():
        return _undefined
    onehot = np.eye(len(labels))[codes]
    proba = proba.astype(float)
    if len(labels) == 2:
        column = labels.index(_positive(labels, positive_label))
        squared = (proba[:, column] - onehot[:, column]) ** 2
    else:
        squared = ((proba - onehot) ** 2).sum(axis=1)
    return lambda w: _average(w, squared)


def calibration_outcomes(
    y_true: np.ndarray, proba: np.ndarray, labels: list[Any], positive_label: Any
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return each row's stated probability and whether it came true, as calibration judges them (None:
    undefined): binary, the positive class's probability and the row being positive; multiclass, the
    top class's probability and the top class being right."""
    codes = _codes(y_true, labels)
    if len(labels) < 2 or (codes < 0).any():
        return None
    proba = proba.astype(float)
    if len(labels) == 2:
        column = labels.index(_positive(labels, positive_label))
        return proba[:, column], (codes == column).astype(float)
    return proba.max(axis=1), (proba.argmax(axis=1) == codes).astype(float)


def calibration_bins(confidence: np.ndarray) -> np.ndarray:
    """Return each probability's bin of ``CALIBRATION_BINS`` equal-width ones (1.0 in the last)."""
    return np.asarray(np.minimum((confidence * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1))


def ece(y_true: np.ndarray, proba: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
    """Expected calibration error: each bin's share of the rows times the gap between its mean
    probability and how often it came true (``calibration_outcomes``)."""
    outcomes = calibration_outcomes(y_true, proba, labels, positive_label)
    if outcomes is None:
        return _undefined
    confidence, happened = outcomes
    member = np.eye(CALIBRATION_BINS)[calibration_bins(confidence)]  # rows x bins

    def per_resample(w: np.ndarray) -> np.ndarray:
        gaps = np.abs(w @ (member * confidence[:, None]) - w @ (member * happened[:, None])).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(gaps / w.sum(axis=1))

    return per_resample


def reliability(
    y_true: Any, proba: Any, labels: Sequence[Any], positive_label: Any = None
) -> tuple[ReliabilityBin, ...]:
    """Return, per non-empty bin, its range, rows, mean probability and how often it came true (empty: undefined)."""
    if proba is None:
        return ()
    outcomes = calibration_outcomes(np.asarray(y_true), np.asarray(proba), list(labels), positive_label)
    if outcomes is None:
        return ()
    confidence, happened = outcomes
    bins = calibration_bins(confidence)
    return tuple(
        ReliabilityBin(
            b / CALIBRATION_BINS,
            (b + 1) / CALIBRATION_BINS,
            int((bins == b).sum()),
            float(confidence[bins == b].mean()),
            float(happened[bins == b].mean()),
        )
        for b in range(CALIBRATION_BINS)
        if (bins == b).any()
    )


def curves(
    y_true: Any, candidate: Any, champion: Any, labels: Sequence[Any], positive_label: Any = None
) -> Calibration:
    """Return both models' reliability curves on the same rows (``candidate``, ``champion``: probabilities)."""
    return Calibration(
        reliability(y_true, candidate, labels, positive_label),
        reliability(y_true, champion, labels, positive_label),
    )

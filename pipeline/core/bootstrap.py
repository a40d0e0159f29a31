"""The paired bootstrap behind the no-regression gate: every metric as a function of row weights.

Both models are scored on the same resampled rows (a resample is a vector of per-row counts),
so the interval is of the *difference*, which is far tighter than comparing two intervals.
Per-row quantities are computed once; each resample then costs a few matrix products.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.config import MAX_BOOTSTRAP
from pipeline.core.metrics import DEFAULT_METRIC, lookup, score
from pipeline.records import Comparison

BOOTSTRAP_SEED = 0  # fixed: the same inputs always give the same interval
CHUNK_CELLS = 2_000_000  # resamples x rows held in memory at once


@dataclass(frozen=True)
class Predictions:
    """One model's predictions on the held-out rows (``proba`` columns follow ``labels``)."""

    y_pred: np.ndarray
    proba: np.ndarray | None


def compare(
    metric_name: str | None,
    task: str,
    y_true: np.ndarray,
    candidate: Predictions,
    champion: Predictions,
    labels: Sequence[Any],
    positive_label: Any,
    resamples: int,
    confidence: float,
) -> Comparison:
    """Score both models on the same rows and bootstrap the delta of ``metric_name`` (default: the task's)."""
    metric = lookup(metric_name or DEFAULT_METRIC[task], task)
    cand = score(task, y_true, candidate.y_pred, candidate.proba, labels, positive_label)
    champ = score(task, y_true, champion.y_pred, champion.proba, labels, positive_label)
    a, b = cand[metric.name], champ[metric.name]
    delta = metric.improvement(a, b) if a is not None and b is not None else None
    low, high = paired_bootstrap(
        metric.name, task, y_true, candidate, champion, labels, positive_label, resamples, confidence
    )
    return Comparison(metric.name, cand, champ, delta, low, high, resamples, confidence, len(y_true))


def paired_bootstrap(
    metric: str,
    task: str,
    y_true: np.ndarray,
    candidate: Predictions,
    champion: Predictions,
    labels: Sequence[Any] = (),
    positive_label: Any = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float | None, float | None]:
    """Return the ``confidence`` interval of the improvement delta over paired resamples.

    Row indices are drawn with replacement; each resample scores both models on the same
    rows. The delta is positive when the candidate is better (see ``METRICS``).
    Resamples where the metric is undefined (e.g. a single class) are left out. The work is
    ``resamples`` x rows, so ``resamples`` is held to the config's bound (``MAX_BOOTSTRAP``).
    """
    if not 1 <= resamples <= MAX_BOOTSTRAP:
        raise ValueError(
            f"resamples must be from 1 to {MAX_BOOTSTRAP:,} (gates.champion.bootstrap), got {resamples}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (gates.champion.confidence), got {confidence}")
    y_true = np.asarray(y_true)
    rows = len(y_true)
    if rows == 0:
        return None, None
    cand_fn = weighted_metric(metric, task, y_true, candidate, labels, positive_label)
    champ_fn = weighted_metric(metric, task, y_true, champion, labels, positive_label)
    sign = 1.0 if lookup(metric, task).direction == "higher" else -1.0
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_CELLS // rows)
    deltas: list[np.ndarray] = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = rng.integers(0, rows, size=(size, rows))
        offsets = (np.arange(size) * rows)[:, None]
        weights = np.bincount((draws + offsets).ravel(), minlength=size * rows).reshape(size, rows)
        weights = weights.astype(float)
        deltas.append(sign * (cand_fn(weights) - champ_fn(weights)))
    values = np.concatenate(deltas)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def weighted_metric(
    metric: str,
    task: str,
    y_true: np.ndarray,
    predictions: Predictions,
    labels: Sequence[Any] = (),
    positive_label: Any = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """Return ``f(weights) -> values``: ``metric`` for each row of a (resamples, rows) weight matrix.

    With all weights 1 this equals :func:`pipeline.core.metrics.score` (tests hold the two equal).
    Per-row quantities are computed once, so each resample costs a few matrix products.
    """
    y = np.asarray(y_true)
    rows = len(y)
    if task == "regression":
        return _regression_metric(metric, y.astype(float), np.asarray(predictions.y_pred, dtype=float))
    labels = list(labels)
    pred = np.asarray(predictions.y_pred)
    proba = predictions.proba
    binary = len(labels) == 2
    pos = positive_label if positive_label is not None else (labels[-1] if labels else None)
    if metric == "accuracy":
        correct = (y == pred).astype(float)
        return lambda w: w @ correct / rows
    if metric in {"precision", "recall", "f1", "balanced_accuracy"}:
        classes = [pos] if binary and metric != "balanced_accuracy" else labels
        truth = np.stack([(y == c) for c in classes], axis=1).astype(float)
        said = np.stack([(pred == c) for c in classes], axis=1).astype(float)
        hits = truth * said
        return lambda w: _count_metric(metric, w @ hits, w @ said, w @ truth)
    if proba is None:
        return lambda w: np.full(w.shape[0], np.nan)
    if metric == "log_loss":
        index = {label: i for i, label in enumerate(labels)}
        column = np.array([index.get(v, -1) for v in y.tolist()])
        if (column < 0).any():
            return lambda w: np.full(w.shape[0], np.nan)
        p = proba / proba.sum(axis=1, keepdims=True)
        eps = np.finfo(p.dtype).eps
        loss = -np.log(np.clip(p[np.arange(rows), column], eps, 1 - eps))
        return lambda w: w @ loss / rows
    if metric == "roc_auc":
        if binary:
            auc = _weighted_auc(y == pos, proba[:, labels.index(pos)])
            return auc
        per_class = [_weighted_auc(y == c, proba[:, i]) for i, c in enumerate(labels)]
        return lambda w: np.mean(np.stack([f(w) for f in per_class]), axis=0)
    raise ValueError(f"no bootstrap for metric {metric!r}")


def _count_metric(metric: str, tp: np.ndarray, said: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Return precision/recall/F1 (macro over columns) or balanced accuracy from weighted counts."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "balanced_accuracy":
            recall = np.where(truth > 0, tp / truth, np.nan)
            return np.asarray(np.nanmean(recall, axis=1))
        if metric == "precision":
            value = np.where(said > 0, tp / said, 0.0)
        elif metric == "recall":
            value = np.where(truth > 0, tp / truth, 0.0)
        else:
            denominator = said + truth
            value = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    return np.asarray(value.mean(axis=1))


def _weighted_auc(positive: np.ndarray, scores: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Return ``f(weights)``: ROC AUC per weight row, ties counted half (rank formula)."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    pos = positive[order].astype(float)
    neg = 1.0 - pos

    def auc(weights: np.ndarray) -> np.ndarray:
        w = weights[:, order]
        pos_groups = np.add.reduceat(w * pos, starts, axis=1)
        neg_groups = np.add.reduceat(w * neg, starts, axis=1)
        neg_below = np.cumsum(neg_groups, axis=1) - neg_groups
        wins = (pos_groups * (neg_below + 0.5 * neg_groups)).sum(axis=1)
        pairs = pos_groups.sum(axis=1) * neg_groups.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(pairs > 0, wins / pairs, np.nan)

    return auc


def _regression_metric(metric: str, y: np.ndarray, pred: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    rows = len(y)
    err = pred - y
    if metric == "mae":
        absolute = np.abs(err)
        return lambda w: w @ absolute / rows
    if metric == "rmse":
        squared = err**2
        return lambda w: np.sqrt(w @ squared / rows)
    if metric == "r2":
        squared, y2 = err**2, y**2

        def r2(w: np.ndarray) -> np.ndarray:
            total = w @ y2 - (w @ y) ** 2 / rows
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(total > 0, 1 - (w @ squared) / total, np.nan)

        return r2
    raise ValueError(f"no bootstrap for metric {metric!r}")

"""The paired bootstrap behind the no-regression gate: the metric's own function, on row weights.

Both models are scored on the same resampled rows (a resample is a vector of per-row counts),
so the interval is of the *difference*, which is far tighter than comparing two intervals.
The metric is the entry of ``METRICS`` (``pipeline/core/metrics.py``) that scoring uses: its
function does the per-row work once, then each chunk of resamples costs a few matrix products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.config_types import MAX_BOOTSTRAP
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
    entry = lookup(metric, task)
    cand_fn = entry.weighed(y_true, entry.pick(candidate.y_pred, candidate.proba), labels, positive_label)
    champ_fn = entry.weighed(y_true, entry.pick(champion.y_pred, champion.proba), labels, positive_label)
    sign = 1.0 if entry.direction == "higher" else -1.0
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

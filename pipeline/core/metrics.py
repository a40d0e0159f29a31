"""Quality metrics as data: one table of entries, each carrying its function, its direction and
the response it needs (the scikit-learn scorer habit).

Scoring (:func:`score`), the paired bootstrap (``pipeline/core/bootstrap.py``), config
validation, the gates, the report and the registry diff all read ``METRICS``, so a metric is
computed, and its direction decided, here and nowhere else. A metric's function takes the true
values, the response and the labels, does the per-row work once and returns ``f(weights)``: the
metric for each row of a (resamples, rows) weight matrix. Scoring calls it with one row of
weights (ones, or ``sample_weight``), the bootstrap with a chunk of resamples, so a resample
costs a few matrix products. Each equals scikit-learn's own function, unweighted and weighted
(``tests/core/test_metrics.py``). NumPy is imported only when something is scored, scikit-learn
only for the per-class table and the confusion matrix, so reading the table is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from model.codec import plain
from model.records import Confusion

if TYPE_CHECKING:
    import numpy as np

Direction = Literal["higher", "lower"]
Response = Literal["predict", "predict_proba"]
Weighed = Callable[["np.ndarray"], "np.ndarray"]
"""``f(weights)``: a (resamples, rows) weight matrix in, one value per resample out (NaN: undefined)."""
MetricFunction = Callable[[Any, Any, list[Any], Any], Weighed]
"""``function(y_true, response, labels, positive_label) -> f(weights)``; labels and the positive
label matter to classification only (``None``: the last label)."""


@dataclass(frozen=True)
class Metric:
    """One metric: which task it scores, which way is better, the response it needs, its function.

    ``response`` is what the function is given besides the truth: ``predict`` (labels or values)
    or ``predict_proba`` (class probabilities, columns in label order).
    """

    name: str
    task: str
    direction: Direction
    function: MetricFunction
    response: Response = "predict"

    @property
    def needs_proba(self) -> bool:
        """Return True when the metric scores probabilities."""
        return self.response == "predict_proba"

    def better(self, a: float, b: float) -> bool:
        """Return True when value ``a`` is strictly better than ``b``."""
        return a > b if self.direction == "higher" else a < b

    def improvement(self, candidate: float, baseline: float) -> float:
        """Return ``candidate - baseline`` signed so that positive always means better."""
        diff = candidate - baseline
        return diff if self.direction == "higher" else -diff

    def pick(self, y_pred: Any, proba: Any) -> Any:
        """Return the response this metric scores: ``proba`` (may be None) or ``y_pred``."""
        return proba if self.needs_proba else y_pred

    def weighed(
        self, y_true: Any, response: Any, labels: Sequence[Any] = (), positive_label: Any = None
    ) -> Weighed:
        """Return ``f(weights)``: this metric for each row of a (resamples, rows) weight matrix.

        Per-row work happens here, once; a missing response (no probabilities) gives NaN.
        """
        import numpy as np

        if response is None:
            return _undefined
        return self.function(np.asarray(y_true), np.asarray(response), list(labels), positive_label)

    def __call__(
        self,
        y_true: Any,
        response: Any,
        sample_weight: Any = None,
        labels: Sequence[Any] = (),
        positive_label: Any = None,
    ) -> float | None:
        """Return the metric of ``response`` against ``y_true`` (weighted by ``sample_weight``).

        None when it is undefined on these rows (one class for ROC AUC, fewer than two rows for
        R²) or there is no response to score.
        """
        import numpy as np

        truth = np.asarray(y_true)
        weights = np.ones(len(truth)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        value = float(self.weighed(truth, response, labels, positive_label)(weights[None, :])[0])
        return value if math.isfinite(value) else None


def _undefined(weights: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.full(weights.shape[0], np.nan)


def _average(weights: np.ndarray, per_row: np.ndarray) -> np.ndarray:
    """Return the weighted mean of ``per_row`` for each row of ``weights`` (NaN for zero weight)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((weights @ per_row) / weights.sum(axis=1))


def _positive(labels: list[Any], positive_label: Any) -> Any:
    return positive_label if positive_label is not None else (labels[-1] if labels else None)


def _codes(values: np.ndarray, labels: Sequence[Any]) -> np.ndarray:
    """Return each value's position in ``labels`` (-1 for a value not among them)."""
    import numpy as np

    codes = np.full(len(values), -1)
    for i, label in enumerate(labels):
        codes[values == label] = i
    return codes


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
    correct = (y_true == y_pred).astype(float)
    return lambda w: _average(w, correct)


def _counted(kind: str) -> MetricFunction:
    """Return the function of precision, recall, F1 (binary: the positive class; else the macro
    average over ``labels``, zero where undefined) or balanced accuracy (the mean recall of the
    classes present), from weighted counts of hits, predictions and truths per class."""

    def function(y_true: np.ndarray, y_pred: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
        import numpy as np

        if kind == "balanced_accuracy":
            unseen = y_true[_codes(y_true, labels) < 0]
            classes = [*labels, *dict.fromkeys(unseen.tolist())]
        elif len(labels) == 2:
            classes = [_positive(labels, positive_label)]
        else:
            classes = labels
        truth = np.stack([y_true == c for c in classes], axis=1).astype(float)
        said = np.stack([y_pred == c for c in classes], axis=1).astype(float)
        hits = truth * said
        return lambda w: _from_counts(kind, w @ hits, w @ said, w @ truth)

    return function


def _from_counts(kind: str, hits: np.ndarray, said: np.ndarray, truth: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "balanced_accuracy":
            recall = np.where(truth > 0, hits / truth, np.nan)
            present = (truth > 0).sum(axis=1)
            return np.where(present > 0, np.nansum(recall, axis=1) / present, np.nan)
        if kind == "precision":
            value = np.where(said > 0, hits / said, 0.0)
        elif kind == "recall":
            value = np.where(truth > 0, hits / truth, 0.0)
        else:
            both = said + truth
            value = np.where(both > 0, 2 * hits / both, 0.0)
    return np.asarray(value.mean(axis=1))


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
    """Binary: the positive class's AUC; more classes: the mean one-vs-rest AUC (as scikit-learn,
    undefined when a value is not among the labels or a row's probabilities do not sum to one)."""
    import numpy as np

    proba = proba.astype(float)
    if len(labels) == 2:
        pos = _positive(labels, positive_label)
        if pos not in labels:
            return _undefined
        return _weighted_auc(y_true == pos, proba[:, labels.index(pos)])
    codes = _codes(y_true, labels)
    if not labels or (codes < 0).any() or not np.allclose(proba.sum(axis=1), 1.0):
        return _undefined
    per_class = [_weighted_auc(codes == i, proba[:, i]) for i in range(len(labels))]
    return lambda w: np.mean(np.stack([f(w) for f in per_class]), axis=0)


def _weighted_auc(positive: np.ndarray, scores: np.ndarray) -> Weighed:
    """Return ``f(weights)``: ROC AUC per weight row, ties counted half (the rank formula)."""
    import numpy as np

    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
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


def _log_loss(y_true: np.ndarray, proba: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
    """Mean negative log probability of the true class, clipped to [eps, 1 - eps] as scikit-learn."""
    import numpy as np

    codes = _codes(y_true, labels)
    if len(labels) < 2 or (codes < 0).any():
        return _undefined
    proba = proba.astype(float)
    eps = np.finfo(proba.dtype).eps
    loss = -np.log(np.clip(proba[np.arange(len(codes)), codes], eps, 1 - eps))
    return lambda w: _average(w, loss)


def _brier(y_true: np.ndarray, proba: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
    from pipeline.core.calibration import brier  # it builds on this module's helpers

    return brier(y_true, proba, labels, positive_label)


def _ece(y_true: np.ndarray, proba: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
    from pipeline.core.calibration import ece

    return ece(y_true, proba, labels, positive_label)


def _errors(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.asarray(np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float))


def _mae(y_true: np.ndarray, y_pred: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
    import numpy as np

    absolute = np.abs(_errors(y_true, y_pred))
    return lambda w: _average(w, absolute)


def _rmse(y_true: np.ndarray, y_pred: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
    import numpy as np

    squared = _errors(y_true, y_pred) ** 2
    return lambda w: np.sqrt(_average(w, squared))


def _r2(y_true: np.ndarray, y_pred: np.ndarray, labels: list[Any], positive_label: Any) -> Weighed:
    """R² (undefined below two rows); a constant truth scores 1 if predicted exactly, else 0 (as
    scikit-learn). The truth is centred first, so the one-pass sum of squares loses no digits."""
    import numpy as np

    if len(y_true) < 2:
        return _undefined
    y = np.asarray(y_true, dtype=float)
    squared = _errors(y, y_pred) ** 2
    centred = y - y.mean()
    centred2 = centred**2

    def r2(w: np.ndarray) -> np.ndarray:
        residual = w @ squared
        with np.errstate(divide="ignore", invalid="ignore"):
            total = w @ centred2 - (w @ centred) ** 2 / w.sum(axis=1)
            return np.where(total > 0, 1 - residual / total, np.where(residual == 0, 1.0, 0.0))

    return r2


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", "higher", _accuracy),
        Metric("balanced_accuracy", "classification", "higher", _counted("balanced_accuracy")),
        Metric("precision", "classification", "higher", _counted("precision")),
        Metric("recall", "classification", "higher", _counted("recall")),
        Metric("f1", "classification", "higher", _counted("f1")),
        Metric("roc_auc", "classification", "higher", _roc_auc, "predict_proba"),
        Metric("log_loss", "classification", "lower", _log_loss, "predict_proba"),
        Metric("brier", "classification", "lower", _brier, "predict_proba"),
        Metric("ece", "classification", "lower", _ece, "predict_proba"),
        Metric("mae", "regression", "lower", _mae),
        Metric("rmse", "regression", "lower", _rmse),
        Metric("r2", "regression", "higher", _r2),
    )
}
DEFAULT_METRIC = {"classification": "roc_auc", "regression": "rmse"}


def metric_names(task: str) -> tuple[str, ...]:
    """Return the metrics computed for ``task``, in report order."""
    return tuple(name for name, m in METRICS.items() if m.task == task)


def lookup(name: str, task: str | None = None) -> Metric:
    """Return the metric ``name`` (of ``task`` when given); ``ValueError`` names the allowed ones."""
    found = METRICS.get(name)
    if found is None or (task is not None and found.task != task):
        allowed = metric_names(task) if task is not None else tuple(METRICS)
        scope = f"{task} " if task is not None else ""
        raise ValueError(f"unknown {scope}metric {name!r}, expected one of: {', '.join(allowed)}")
    return found


def score(
    task: str,
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray | None = None,
    labels: Sequence[Any] = (),
    positive_label: Any = None,
) -> dict[str, float | None]:
    """Return every metric of ``task``; a metric that is undefined on this data is None."""
    if task == "regression":
        return regression_metrics(y_true, y_pred)
    return classification_metrics(y_true, y_pred, proba, labels, positive_label)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float | None]:
    """Return MAE, RMSE and R² (R² is None with fewer than two rows)."""
    return {name: METRICS[name](y_true, y_pred) for name in metric_names("regression")}


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray | None,
    labels: Sequence[Any],
    positive_label: Any = None,
) -> dict[str, float | None]:
    """Return accuracy, balanced accuracy, precision, recall, F1, ROC AUC and log loss.

    Binary problems score the positive class (default: the last label); multiclass ones use
    macro averages and one-vs-rest ROC AUC. ``proba`` columns follow ``labels``; without it ROC
    AUC and log loss are None.
    """
    return {
        name: METRICS[name](
            y_true, METRICS[name].pick(y_pred, proba), labels=labels, positive_label=positive_label
        )
        for name in metric_names("classification")
    }


def per_class(y_true: Any, y_pred: Any, labels: Sequence[Any]) -> dict[str, dict[str, float]]:
    """Return precision, recall, F1 and support for each label (keys are ``str(label)``)."""
    import numpy as np
    from sklearn import metrics as skm

    p, r, f, s = skm.precision_recall_fscore_support(
        np.asarray(y_true), np.asarray(y_pred), labels=list(labels), zero_division=0
    )
    return {
        str(label): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, label in enumerate(labels)
    }


def confusion(y_true: Any, y_pred: Any, labels: Sequence[Any]) -> Confusion:
    """Return the confusion matrix (rows: true label, columns: predicted) with its labels."""
    import numpy as np
    from sklearn import metrics as skm

    matrix = skm.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=list(labels))
    return Confusion(tuple(plain(label) for label in labels), tuple(tuple(row) for row in matrix.tolist()))

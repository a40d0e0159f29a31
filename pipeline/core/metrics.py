"""Quality metrics: the one table of metrics (task, direction, whether it needs probabilities) and
pure functions of labels, predictions and probabilities.

Config validation, gates, the paired bootstrap, the report and the registry diff all read
``METRICS``, so a metric's direction is decided here and nowhere else. scikit-learn is imported
only when something is scored, so reading the table is cheap.
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


@dataclass(frozen=True)
class Metric:
    """One metric: which task it scores, which way is better, and whether it needs probabilities."""

    name: str
    task: str
    direction: Direction
    needs_proba: bool = False

    def better(self, a: float, b: float) -> bool:
        """Return True when value ``a`` is strictly better than ``b``."""
        return a > b if self.direction == "higher" else a < b

    def improvement(self, candidate: float, baseline: float) -> float:
        """Return ``candidate - baseline`` signed so that positive always means better."""
        diff = candidate - baseline
        return diff if self.direction == "higher" else -diff


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", "higher"),
        Metric("balanced_accuracy", "classification", "higher"),
        Metric("precision", "classification", "higher"),
        Metric("recall", "classification", "higher"),
        Metric("f1", "classification", "higher"),
        Metric("roc_auc", "classification", "higher", needs_proba=True),
        Metric("log_loss", "classification", "lower", needs_proba=True),
        Metric("mae", "regression", "lower"),
        Metric("rmse", "regression", "lower"),
        Metric("r2", "regression", "higher"),
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
    import numpy as np
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    err = y_pred - y_true
    r2 = float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(math.sqrt(np.mean(err**2))),
        "r2": r2,
    }


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    proba: np.ndarray | None,
    labels: Sequence[Any],
    positive_label: Any = None,
) -> dict[str, float | None]:
    """Return accuracy, balanced accuracy, precision, recall, F1, ROC AUC and log loss.

    Binary problems score the positive class; multiclass ones use macro averages and
    one-vs-rest ROC AUC. ``proba`` columns follow ``labels``.
    """
    import numpy as np
    from sklearn import metrics as skm

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = list(labels)
    binary = len(labels) == 2
    pos = positive_label if positive_label is not None else (labels[-1] if labels else None)
    average: dict[str, Any] = {"average": "binary", "pos_label": pos} if binary else {"average": "macro"}
    result: dict[str, float | None] = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _safe(lambda: skm.balanced_accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, labels=labels, zero_division=0, **average)),
        "recall": float(skm.recall_score(y_true, y_pred, labels=labels, zero_division=0, **average)),
        "f1": float(skm.f1_score(y_true, y_pred, labels=labels, zero_division=0, **average)),
        "roc_auc": None,
        "log_loss": None,
    }
    if proba is not None and len(np.unique(y_true)) > 1:
        if binary:
            column = proba[:, labels.index(pos)]
            result["roc_auc"] = _safe(lambda: skm.roc_auc_score(y_true == pos, column))
        else:
            result["roc_auc"] = _safe(
                lambda: skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
            )
    if proba is not None:
        result["log_loss"] = _safe(lambda: skm.log_loss(y_true, proba, labels=labels))
    return result


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


def _safe(compute: Callable[[], Any]) -> float | None:
    """Return ``compute()`` as a float, or None when the metric is undefined or not finite."""
    try:
        value = float(compute())
    except ValueError:
        return None
    return value if math.isfinite(value) else None

"""Quality metrics: pure functions of labels, predictions and probabilities.

One place decides each metric's direction (higher or lower is better), so gates,
reports and the champion comparison agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

DIRECTION: dict[str, str] = {
    "accuracy": "higher",
    "balanced_accuracy": "higher",
    "precision": "higher",
    "recall": "higher",
    "f1": "higher",
    "roc_auc": "higher",
    "log_loss": "lower",
    "mae": "lower",
    "rmse": "lower",
    "r2": "higher",
}
CLASSIFICATION = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION = ("mae", "rmse", "r2")
DEFAULT_METRIC = {"classification": "roc_auc", "regression": "rmse"}


def metric_names(task: str) -> tuple[str, ...]:
    """Return the metrics computed for ``task``."""
    return CLASSIFICATION if task == "classification" else REGRESSION


def is_better(metric: str, a: float, b: float) -> bool:
    """Return True when value ``a`` is strictly better than ``b`` for ``metric``."""
    return a > b if DIRECTION[metric] == "higher" else a < b


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
    p, r, f, s = skm.precision_recall_fscore_support(
        np.asarray(y_true), np.asarray(y_pred), labels=list(labels), zero_division=0
    )
    return {
        str(label): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, label in enumerate(labels)
    }


def confusion(y_true: Any, y_pred: Any, labels: Sequence[Any]) -> dict[str, Any]:
    """Return the confusion matrix (rows: true label, columns: predicted) with its labels."""
    matrix = skm.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=list(labels))
    return {"labels": [_plain(label) for label in labels], "matrix": matrix.tolist()}


def _safe(compute: Any) -> float | None:
    """Return ``compute()`` as a float, or None when the metric is undefined or not finite."""
    try:
        value = float(compute())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _plain(value: Any) -> Any:
    """Return numpy scalars as Python scalars (for JSON)."""
    return value.item() if hasattr(value, "item") else value

"""Scoring a model on held-out rows: quality, per-slice metrics, the prediction mix, single-row timing.

``evaluate`` returns the ``metrics.json`` record, with the dummy baseline the model's metadata
records scored on the same rows (``pipeline/core/floors.py``); ``score_rows`` is the one way a model is
applied to rows (evaluate, the champion comparison and the report's residuals use it), so
every step prepares rows exactly as training did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from model.codec import plain
from model.records import Metrics, ModelMetadata
from pipeline.config import Config
from pipeline.core.bootstrap import Predictions
from pipeline.core.floors import score_baseline
from pipeline.core.metrics import confusion, per_class, score
from pipeline.core.values import clean_target, coerce_column
from pipeline.errors import DataError, ModelError

MAX_WARMUP = 20
NULL_KEY = "null"


def evaluate(
    estimator: Any, metadata: ModelMetadata, frame: pd.DataFrame, config: Config, run: str = ""
) -> Metrics:
    """Return the ``metrics.json`` record for ``estimator`` scored on ``frame`` (rows with a target).

    Everything in it is a function of the model and the rows: the same inputs give the same record.
    """
    task = metadata.task
    labels = metadata.label_list
    y_true, predictions, rows = score_rows(estimator, metadata, frame)
    y_pred, proba = predictions.y_pred, predictions.proba
    classifier = task == "classification"
    return Metrics(
        run=run,
        task=task,
        model_sha256=metadata.model_sha256,
        rows=len(rows),
        overall=score(task, y_true, y_pred, proba, labels, metadata.positive_label),
        per_class=per_class(y_true, y_pred, labels) if classifier else None,
        confusion_matrix=confusion(y_true, y_pred, labels) if classifier else None,
        slices=slice_metrics(rows, y_true, predictions, metadata, config),
        prediction_distribution=prediction_distribution(task, y_pred, labels),
        baseline=score_baseline(metadata.baseline, task, y_true, labels, metadata.positive_label),
    )


def score_rows(
    estimator: Any, metadata: ModelMetadata, frame: pd.DataFrame
) -> tuple[np.ndarray, Predictions, pd.DataFrame]:
    """Return the target, the model's predictions and the usable rows (prepared as in training)."""
    rows = usable_rows(frame, metadata)
    predictions = predict(estimator, rows[metadata.feature_names], metadata.task, metadata.label_list)
    return rows[metadata.target].to_numpy(), predictions, rows


def feature_rows(frame: pd.DataFrame, metadata: ModelMetadata, source: object) -> pd.DataFrame:
    """Return the model's feature columns of ``frame``, in order and typed as in training (no target needed).

    ``source`` names the table in the error when a feature column is missing.
    """
    return typed_columns(frame, [(f.name, f.type) for f in metadata.features], source)


def typed_columns(frame: pd.DataFrame, features: Sequence[tuple[str, str]], source: object) -> pd.DataFrame:
    """Return the ``features`` (name, type) of ``frame``, in order and typed as in training; ``source`` names the table."""
    missing = [name for name, _ in features if name not in frame.columns]
    if missing:
        raise DataError(f"{source}: column(s) the model needs are missing: {', '.join(missing)}")
    result = frame[[name for name, _ in features]].reset_index(drop=True).copy()
    for name, kind in features:
        result[name] = coerce_column(result[name], name, kind)
    return result


def usable_rows(frame: pd.DataFrame, metadata: ModelMetadata) -> pd.DataFrame:
    """Return rows with a target, features typed as in training; raise naming missing columns."""
    target = metadata.target
    missing = [name for name in (target, *metadata.feature_names) if name not in frame.columns]
    if missing:
        raise DataError(f"column(s) the model needs are missing from the data: {', '.join(missing)}")
    nulls = int(frame[target].isna().sum())
    if nulls == len(frame):
        raise DataError(f"target column '{target}' is null in all {len(frame)} rows")
    if nulls:
        frame = frame.loc[frame[target].notna()]
    frame = frame.reset_index(drop=True).copy()
    frame[target] = clean_target(frame[target], metadata.task, target)
    for feature in metadata.features:
        frame[feature.name] = coerce_column(frame[feature.name], feature.name, feature.type)
    return frame


def predict(estimator: Any, X: pd.DataFrame, task: str, labels: list[Any]) -> Predictions:
    """Return predictions and, for classifiers, probabilities with columns in ``labels`` order."""
    try:
        y_pred = np.asarray(estimator.predict(X))
        proba = None
        if task == "classification" and hasattr(estimator, "predict_proba"):
            classes = [plain(c) for c in estimator.classes_]
            if classes != labels:
                raise ModelError(f"model classes {classes} differ from the labels in its metadata {labels}")
            proba = np.asarray(estimator.predict_proba(X), dtype=float)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"the model cannot score these rows ({type(exc).__name__}: {exc})") from None
    return Predictions(y_pred, proba)


def slice_metrics(
    frame: pd.DataFrame, y_true: np.ndarray, predictions: Predictions, metadata: ModelMetadata, config: Config
) -> dict[str, dict[str, dict[str, Any]]]:
    """Return ``{column: {value: {rows, <metrics>}}}``; small slices carry ``skipped`` instead."""
    task, labels, positive = metadata.task, metadata.label_list, metadata.positive_label
    y_pred, proba = predictions.y_pred, predictions.proba
    minimum = config.slices.min_rows
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for column in config.slices.columns:
        if column not in frame.columns:
            raise DataError(f"slices.columns names '{column}', which is not a column of the evaluated data")
        keys = frame[column].map(_slice_key).to_numpy()
        groups: dict[str, dict[str, Any]] = {}
        for key in sorted(set(keys)):
            mask = keys == key
            rows = int(mask.sum())
            if rows < minimum:
                groups[key] = {"rows": rows, "skipped": f"fewer than slices.min_rows = {minimum} rows"}
                continue
            part = proba[mask] if proba is not None else None
            groups[key] = {"rows": rows, **score(task, y_true[mask], y_pred[mask], part, labels, positive)}
        result[column] = groups
    return result


def prediction_distribution(task: str, y_pred: np.ndarray, labels: list[Any]) -> dict[str, float]:
    """Return each label's share of the predictions, or summary statistics of regression outputs."""
    if task == "classification":
        total = len(y_pred)
        return {str(label): float(np.sum(y_pred == label) / total) for label in labels}
    values = y_pred.astype(float)
    p05, p50, p95 = np.percentile(values, [5, 50, 95])
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "p05": float(p05),
        "p50": float(p50),
        "p95": float(p95),
    }


def time_single_rows(
    predictors: Sequence[Callable[[list[dict[str, Any]]], Any]],
    records: Sequence[dict[str, Any]],
    samples: int,
) -> list[np.ndarray]:
    """Return, per predictor, ``samples`` single-record predict times in ms, timed alternately (A, B, A, B).

    A predictor takes a list of JSON records, as the server's runtime does. Alternating in one
    process exposes both models to the same machine load, so their ratio is meaningful on a
    shared runner even when the absolute figures are not. A warm-up of :func:`warmup` untimed
    rows comes first.
    """
    skip = warmup(samples)
    rows = [[records[i % len(records)]] for i in range(skip + samples)]
    for row in rows[:skip]:
        for predict in predictors:
            predict(row)
    timings = [np.empty(samples) for _ in predictors]
    for i, row in enumerate(rows[skip:]):
        for timing, predict in zip(timings, predictors, strict=True):
            started = time.perf_counter()
            predict(row)
            timing[i] = (time.perf_counter() - started) * 1000.0
    return timings


def warmup(samples: int) -> int:
    """Return how many untimed predicts come first: a tenth of the timed ones, 5 to 20."""
    return min(MAX_WARMUP, max(5, samples // 10))


def _slice_key(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return NULL_KEY
    return str(plain(value))


def model_outputs(estimator: Any, rows: pd.DataFrame, metadata: ModelMetadata) -> tuple[np.ndarray, str]:
    """Return what prediction drift compares, and its kind: the positive class's probability for a
    binary classifier (a label hides most moves), the predicted class for more classes, the
    prediction for a regressor."""
    if (
        metadata.task == "classification"
        and len(metadata.label_list) == 2
        and hasattr(estimator, "predict_proba")
    ):
        column = (
            metadata.label_list.index(metadata.positive_label)
            if metadata.positive_label in metadata.label_list
            else 1
        )
        return np.asarray(estimator.predict_proba(rows))[:, column], "numeric"
    kind = "categorical" if metadata.task == "classification" else "numeric"
    return np.asarray(estimator.predict(rows)), kind

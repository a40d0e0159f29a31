"""Score a model artefact on held-out rows: quality, per-slice metrics, latency, prediction mix.

    python -m pipeline evaluate --config configs/pipeline.toml --out out

Loads ``OUT/model`` (hash verified) and ``OUT/holdout.parquet`` written by ``train``
(or ``--model`` and ``--data``) and writes ``OUT/metrics.json``: overall metrics,
per-class metrics and confusion matrix (classification), metrics per value of each
``slices.columns`` column (values with fewer than ``slices.min_rows`` rows are listed
as skipped), in-process prediction latency and the distribution of predictions.
Latency figures vary from run to run and live under their own key ``latency``;
everything else is identical for identical inputs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.artifact import load_artifact
from model.files import write_json_atomic
from pipeline.config import Config, load_config
from pipeline.errors import DataError, ModelError
from pipeline.metrics import DEFAULT_METRIC, confusion, per_class, score
from pipeline.tables import read_table
from pipeline.train import HOLDOUT_FILE, MODEL_DIR, clean_target, coerce_column

METRICS_FILE = "metrics.json"
SINGLE_ROWS = 200
WARMUP_ROWS = 20
BATCH_ROWS = 5000
NULL_KEY = "null"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``evaluate`` options."""
    parser.add_argument("--model", type=Path, help="model artefact directory (default OUT/model)")
    parser.add_argument(
        "--data", type=Path, help="rows to score, with the target (default OUT/holdout.parquet)"
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="artefact directory (default out)")


def run(args: argparse.Namespace) -> int:
    """Evaluate and write ``OUT/metrics.json``."""
    config = load_config(args.config)
    out = Path(args.out)
    model_dir = Path(args.model) if args.model else out / MODEL_DIR
    data_path = Path(args.data) if args.data else out / HOLDOUT_FILE
    estimator, metadata = load_artifact(model_dir)
    frame = read_table(data_path)
    if args.data is None and len(frame) != metadata.get("holdout_rows"):
        raise ModelError(
            f"{data_path} has {len(frame)} rows but {model_dir} was trained with "
            f"{metadata.get('holdout_rows')} held-out rows; run train again"
        )
    metrics = evaluate(estimator, metadata, frame, config)
    write_json_atomic(out / METRICS_FILE, metrics)
    headline = DEFAULT_METRIC[metrics["task"]]
    value = metrics["overall"].get(headline)
    latency = metrics["latency"]
    print(
        f"evaluate: {metrics['rows']} rows, {headline} {_fmt(value)}, "
        f"single-row p50 {latency['single_p50_ms']:.2f} ms p95 {latency['single_p95_ms']:.2f} ms, "
        f"batch {latency['batch_rows_per_s']:.0f} rows/s; wrote {out / METRICS_FILE}",
        file=sys.stderr,
    )
    return 0


def evaluate(estimator: Any, metadata: dict[str, Any], frame: pd.DataFrame, config: Config) -> dict[str, Any]:
    """Return the content of ``metrics.json`` for ``estimator`` scored on ``frame``."""
    task = str(metadata["task"])
    target = str(metadata["target"])
    labels = list(metadata.get("labels") or [])
    positive = metadata.get("positive_label")
    frame = usable_rows(frame, metadata)
    names = [f["name"] for f in metadata["features"]]
    X = frame[names]
    y_true = frame[target].to_numpy()
    y_pred, proba = predict(estimator, X, task, labels)
    result: dict[str, Any] = {
        "task": task,
        "model_sha256": metadata["model_sha256"],
        "rows": len(frame),
        "overall": score(task, y_true, y_pred, proba, labels, positive),
        "per_class": per_class(y_true, y_pred, labels) if task == "classification" else None,
        "confusion_matrix": confusion(y_true, y_pred, labels) if task == "classification" else None,
        "slices": slice_metrics(frame, y_true, y_pred, proba, metadata, config),
        "prediction_distribution": prediction_distribution(task, y_pred, labels),
        "latency": measure_latency(estimator, X),
    }
    return result


def usable_rows(frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    """Return rows with a target, features typed as in training; raise naming missing columns."""
    target = str(metadata["target"])
    features = [(str(f["name"]), str(f["type"])) for f in metadata["features"]]
    missing = [name for name in (target, *(n for n, _ in features)) if name not in frame.columns]
    if missing:
        raise DataError(f"column(s) the model needs are missing from the data: {', '.join(missing)}")
    nulls = int(frame[target].isna().sum())
    if nulls == len(frame):
        raise DataError(f"target column '{target}' is null in all {len(frame)} rows")
    if nulls:
        print(f"evaluate: dropped {nulls} rows with a null target '{target}'", file=sys.stderr)
        frame = frame.loc[frame[target].notna()]
    frame = frame.reset_index(drop=True).copy()
    frame[target] = clean_target(frame[target], str(metadata["task"]), target)
    for name, kind in features:
        frame[name] = coerce_column(frame[name], name, kind)
    return frame


def predict(
    estimator: Any, X: pd.DataFrame, task: str, labels: list[Any]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return predictions and, for classifiers, probabilities with columns in ``labels`` order."""
    try:
        y_pred = np.asarray(estimator.predict(X))
        proba = None
        if task == "classification" and hasattr(estimator, "predict_proba"):
            classes = [_plain(c) for c in estimator.classes_]
            if classes != labels:
                raise ModelError(f"model classes {classes} differ from the labels in its metadata {labels}")
            proba = np.asarray(estimator.predict_proba(X), dtype=float)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"the model cannot score these rows ({type(exc).__name__}: {exc})") from None
    return y_pred, proba


def slice_metrics(
    frame: pd.DataFrame,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    metadata: dict[str, Any],
    config: Config,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Return ``{column: {value: {rows, <metrics>}}}``; small slices carry ``skipped`` instead."""
    task = str(metadata["task"])
    labels = list(metadata.get("labels") or [])
    positive = metadata.get("positive_label")
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


def measure_latency(estimator: Any, X: pd.DataFrame) -> dict[str, float | int]:
    """Time single-row predicts (after a warm-up) and one batch predict of at least 5000 rows."""
    rows = [X.iloc[[i % len(X)]] for i in range(WARMUP_ROWS + SINGLE_ROWS)]
    for row in rows[:WARMUP_ROWS]:
        estimator.predict(row)
    timings = []
    for row in rows[WARMUP_ROWS:]:
        started = time.perf_counter()
        estimator.predict(row)
        timings.append((time.perf_counter() - started) * 1000.0)
    p50, p95 = np.percentile(timings, [50, 95])
    batch = pd.concat([X] * math.ceil(BATCH_ROWS / len(X)), ignore_index=True)
    started = time.perf_counter()
    estimator.predict(batch)
    seconds = max(time.perf_counter() - started, 1e-9)
    return {
        "single_p50_ms": float(p50),
        "single_p95_ms": float(p95),
        "batch_rows_per_s": float(len(batch) / seconds),
        "single_rows": SINGLE_ROWS,
        "batch_rows": len(batch),
    }


def _slice_key(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return NULL_KEY
    return str(_plain(value))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)

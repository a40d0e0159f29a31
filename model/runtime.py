"""The served model: loaded and verified once, and the one path from validated records to an answer.

The records become a DataFrame with the training column order and the dtypes pandas gives
the same values read from a table (integers stay integers, nulls become NaN), so the served
predictions equal the offline model's on the same batch of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from model.artifact import load_artifact
from model.codec import plain, read_record
from model.errors import ArtifactError
from model.records import Feature, Label, Lineage, Metrics, ModelMetadata
from model.request import parse_records, request_model
from model.telemetry import REGRESSION_LABEL


@dataclass(frozen=True)
class LoadedModel:
    """A verified estimator with what serving needs from its metadata."""

    estimator: Any
    metadata: ModelMetadata
    version: str
    labels: list[Label] | None
    metrics: dict[str, float | None] | None
    request_model: type[BaseModel]

    @property
    def features(self) -> tuple[Feature, ...]:
        """Return the model's inputs in training order."""
        return self.metadata.features

    @property
    def is_classifier(self) -> bool:
        """Return True when the model predicts classes with probabilities."""
        return self.labels is not None


def load_model(model_dir: Path) -> LoadedModel:
    """Load and verify the artefact; return it with its version, schema and request model."""
    estimator, metadata = load_artifact(model_dir)
    if not metadata.features:
        raise ArtifactError(f"{model_dir}: model metadata lists no features; retrain to record them")
    labels: list[Label] | None = None
    if metadata.task == "classification":
        labels = metadata.label_list
        classes = [plain(c) for c in getattr(estimator, "classes_", [])]
        if classes != labels:
            raise ArtifactError(
                f"{model_dir}: model classes {classes} differ from the metadata labels {labels}"
            )
        if not hasattr(estimator, "predict_proba"):
            raise ArtifactError(f"{model_dir}: classifier {type(estimator).__name__} has no predict_proba")
    return LoadedModel(
        estimator=estimator,
        metadata=metadata,
        version=model_version(model_dir, metadata),
        labels=labels,
        metrics=model_metrics(model_dir),
        request_model=request_model(metadata.features),
    )


def model_version(model_dir: Path, metadata: ModelMetadata) -> str:
    """Return the version to report: the registry version in lineage.json, else the sha256 prefix."""
    path = Path(model_dir) / Lineage.FILE
    if path.is_file():
        return str(read_record(path, Lineage).version)
    return metadata.model_sha256[:12]


def model_metrics(model_dir: Path) -> dict[str, float | None] | None:
    """Return the model's overall quality metrics from the metrics.json beside it, else None."""
    path = Path(model_dir) / Metrics.FILE
    return dict(read_record(path, Metrics).overall) if path.is_file() else None


def answer_predict(loaded: LoadedModel, body: bytes, max_batch: int) -> tuple[JSONResponse, dict[str, int]]:
    """Validate and predict a ``/predict`` body; return the response and the rows per predicted label."""
    records = parse_records(body, loaded.request_model, max_batch)
    if isinstance(records, JSONResponse):
        return records, {}
    answer, counts = predict_records(loaded, records)
    return JSONResponse(answer), counts


def predict_records(
    loaded: LoadedModel, records: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, int]]:
    """Predict validated records; return the response body and the count of rows per predicted label."""
    frame = records_frame(records, loaded.features)
    predictions, proba = score(loaded.estimator, frame, with_proba=loaded.is_classifier)
    answer: dict[str, Any] = {
        "predictions": predictions.tolist(),
        "probabilities": None,
        "labels": loaded.labels,
        "model_version": loaded.version,
    }
    if loaded.labels is not None and proba is not None:
        keys = [str(label) for label in loaded.labels]
        answer["probabilities"] = [dict(zip(keys, row, strict=True)) for row in proba.tolist()]
        values, counts = np.unique(predictions, return_counts=True)
        return answer, {str(plain(v)): int(c) for v, c in zip(values, counts, strict=True)}
    return answer, {REGRESSION_LABEL: len(predictions)}


def score(estimator: Any, frame: pd.DataFrame, with_proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``estimator.predict(frame)`` and, if asked, ``predict_proba(frame)``.

    For a scikit-learn ``Pipeline`` the preprocessing runs once and both calls use its
    output, exactly as ``Pipeline.predict`` and ``Pipeline.predict_proba`` would each
    compute it (the same steps on the same input), at half the cost.
    """
    final, X = estimator, frame
    steps = getattr(estimator, "steps", None)
    if steps is not None:
        for _, step in steps[:-1]:
            if step is not None and not isinstance(step, str):  # None or "passthrough" skip a step
                X = step.transform(X)
        final = steps[-1][1]
    predictions = np.asarray(final.predict(X))
    proba = np.asarray(final.predict_proba(X), dtype=float) if with_proba else None
    return predictions, proba


def records_frame(records: Sequence[dict[str, Any]], features: Sequence[Feature]) -> pd.DataFrame:
    """Return records as a DataFrame in training column order, typed as a table read would type them.

    Integers stay int64, floats float64, strings pandas' string dtype; a null becomes NaN
    (numeric and boolean columns with a null become float64, as in training).
    """
    columns: dict[str, pd.Series] = {}
    for feature in features:
        values = [record[feature.name] for record in records]
        has_null = any(v is None for v in values)
        if has_null and feature.type in {"numeric", "boolean"}:
            columns[feature.name] = pd.Series(values, dtype="float64")
        elif has_null:
            columns[feature.name] = pd.Series([np.nan if v is None else v for v in values])
        else:
            columns[feature.name] = pd.Series(values)
    return pd.DataFrame(columns, columns=[f.name for f in features])

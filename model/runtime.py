"""The served model: loaded and verified once, with one predict function from validated records.

``load_model`` picks the runtime: ONNX Runtime when the artefact ships an ONNX form that passed
its parity check at train time (``model/compiled.py``, microseconds a row, no scikit-learn or
pandas needed), else the pickled scikit-learn pipeline (``model/sklearn_runtime.py``). The
answer has the same shape either way, and either runtime predicts with at most ``threads``
threads (``MODEL_THREADS`` in the server, the config's ``[serving] threads`` in the gate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from model.artifact import check_servable, model_version
from model.codec import plain, read_record
from model.compiled import load_compiled
from model.errors import ArtifactError
from model.records import Feature, Label, Metrics, ModelMetadata
from model.request import request_model
from model.settings import DEFAULT_THREADS, Runtime
from model.telemetry import REGRESSION_LABEL

Predict = Callable[[Sequence[dict[str, Any]]], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class LoadedModel:
    """A verified model with its predict function and what serving needs from its metadata."""

    predict: Predict
    runtime: Literal["onnx", "sklearn"]
    metadata: ModelMetadata
    version: str
    labels: list[Label] | None
    metrics: dict[str, float | None] | None
    request_model: type[BaseModel]
    booleans: tuple[str, ...]  # the boolean features: validated records carry them as True/False
    threads: int  # at most this many threads in the runtime's native thread pools, per prediction

    @property
    def features(self) -> tuple[Feature, ...]:
        """Return the model's inputs in training order."""
        return self.metadata.features

    @property
    def is_classifier(self) -> bool:
        """Return True when the model predicts classes with probabilities."""
        return self.labels is not None


def load_model(model_dir: Path, runtime: Runtime = "auto", threads: int = DEFAULT_THREADS) -> LoadedModel:
    """Load and verify the artefact with ``runtime`` (auto: ONNX when shipped); return it ready to serve.

    Its predict function uses at most ``threads`` threads of the runtime's native thread pools.
    """
    model_dir = Path(model_dir)
    metadata, onnx = check_servable(model_dir, runtime)
    classifier = metadata.task == "classification"
    predict: Predict
    if onnx is not None:
        try:
            predict = load_compiled(onnx, metadata.features, metadata.labels, threads).predict
        except ValueError as exc:
            raise ArtifactError(f"{model_dir}: {exc}") from None
        chosen: Literal["onnx", "sklearn"] = "onnx"
    else:
        from model.sklearn_runtime import load_sklearn

        predict, metadata = load_sklearn(model_dir, threads)
        chosen = "sklearn"
    return LoadedModel(
        predict=predict,
        runtime=chosen,
        metadata=metadata,
        version=model_version(model_dir, metadata),
        labels=metadata.label_list if classifier else None,
        metrics=model_metrics(model_dir),
        request_model=request_model(metadata.features, metadata.out_of_range),
        booleans=tuple(f.name for f in metadata.features if f.type == "boolean"),
        threads=threads,
    )


def model_metrics(model_dir: Path) -> dict[str, float | None] | None:
    """Return the model's overall quality metrics from the metrics.json beside it, else None."""
    path = Path(model_dir) / Metrics.FILE
    return dict(read_record(path, Metrics).overall) if path.is_file() else None


def predict_records(
    loaded: LoadedModel, records: Sequence[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, int]]:
    """Predict validated records; return the response body and the count of rows per predicted label."""
    predictions, proba = loaded.predict(records)
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

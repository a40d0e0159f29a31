"""A model's ONNX form as a scikit-learn-like estimator: scores a table without unpickling anything.

The gate scores a champion whose pickle it may not load (its signature does not check with the
key held here) through this: ONNX is data, run by ONNX Runtime, so no code from the artefact runs.
Rows go in as the server receives them, JSON records typed by the model's features; the answers
are the served model's, within the parity limit checked when it was trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from model.compiled import CompiledModel, load_compiled
from model.records import ModelMetadata
from model.settings import DEFAULT_THREADS
from pipeline.core.values import json_records


class ServedForm:
    """``predict`` / ``predict_proba`` / ``classes_`` of an ONNX model, as the evaluation code calls them."""

    def __init__(self, onnx: bytes, metadata: ModelMetadata, threads: int = DEFAULT_THREADS) -> None:
        """Open the ONNX bytes (checked against the metadata by the caller) for ``metadata``'s features.

        ``threads``: ONNX Runtime's threads, as the server's (``model/settings.py``).
        """
        self.compiled: CompiledModel = load_compiled(onnx, metadata.features, metadata.labels, threads)
        self.booleans = {f.name for f in metadata.features if f.type == "boolean"}
        self.names = metadata.feature_names
        self.classes_ = np.asarray(metadata.label_list) if metadata.task == "classification" else None

    def _run(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        return self.compiled.predict(json_records(X[self.names], self.booleans))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Return the predictions for the rows of ``X``."""
        return self._run(X)[0]

    def predict_proba(self, X: pd.DataFrame) -> Any:
        """Return the class probabilities for the rows of ``X``, in ``classes_`` order."""
        proba = self._run(X)[1]
        if proba is None:
            raise ValueError("a regressor has no class probabilities")
        return proba

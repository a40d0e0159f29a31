"""The model's ONNX form in ONNX Runtime: loaded once, fed straight from validated records.

One thread per session by default (``intra_op`` and ``inter_op``; ``MODEL_THREADS`` in
``model/settings.py`` sets another number): a single row takes microseconds, a thread pool would
compete with the server on a small machine, and a fixed summation order keeps a forest's
probabilities identical from call to call (with more threads, rows whose probability is exactly
0.5 can flip). ONNX Runtime is imported only here, with its telemetry switched off
(``ORT_DISABLE_TELEMETRY=1`` unless set otherwise: since 1.29 it would otherwise try to reach
Microsoft's collector and write a device id under ``~/.cache``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

import numpy as np

from model.inputs import onnx_feeds
from model.records import Feature, Label
from model.settings import DEFAULT_THREADS

ONNX_FILE = "model.onnx"
CLASSES_KEY = "ml_cicd_classes"  # ONNX metadata entry: a classifier's classes as JSON, in output order
INPUTS_KEY = "ml_cicd_inputs"  # ONNX metadata entry: feature name -> graph input name, as JSON


def onnxruntime() -> ModuleType:
    """Import and return ``onnxruntime`` with its telemetry disabled."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    return cast(ModuleType, ort)


@dataclass(frozen=True)
class CompiledModel:
    """An ONNX Runtime session with the feature list it is fed by and whether it gives probabilities."""

    session: Any
    features: tuple[Feature, ...]
    inputs: tuple[str, ...]  # the graph input each feature feeds, in feature order
    classifier: bool

    def predict(self, records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the predictions and (classifiers) the class probabilities of ``records``."""
        outputs = self.session.run(None, onnx_feeds(records, self.features, self.inputs))
        if not self.classifier:
            return np.asarray(outputs[0]).reshape(-1), None
        return np.asarray(outputs[0]).reshape(-1), np.asarray(outputs[1], dtype=np.float64)


def load_compiled(
    model: bytes, features: Sequence[Feature], labels: Sequence[Label] | None, threads: int = DEFAULT_THREADS
) -> CompiledModel:
    """Return a session for the ONNX ``model`` bytes; raise ``ValueError`` when it cannot serve.

    ``labels`` are the classes the metadata names (None: a regressor); a classifier's ONNX file
    records its own, which must be the same, in the same order. ``threads``: the session's
    intra-op and inter-op threads.
    """
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    options.log_severity_level = 3  # errors only: warnings about unused initializers are noise here
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime raises its own exception types for a bad graph
        raise ValueError(f"ONNX Runtime cannot load the model ({str(exc).strip().splitlines()[0]})") from None
    meta = session.get_modelmeta().custom_metadata_map
    if INPUTS_KEY not in meta:
        raise ValueError(
            "the ONNX model records no feature-to-input mapping (not made by this ml-cicd); retrain"
        )
    mapping = json.loads(meta[INPUTS_KEY])
    names = sorted(i.name for i in session.get_inputs())
    expected = [f.name for f in features]
    if sorted(mapping) != sorted(expected) or sorted(mapping.values()) != names:
        raise ValueError(f"the ONNX model's inputs {names} do not map onto the model's features {expected}")
    classifier = labels is not None
    outputs = len(session.get_outputs())
    if outputs != (2 if classifier else 1):
        what = "a classifier has 2" if classifier else "a regressor has 1"
        raise ValueError(f"the ONNX model has {outputs} outputs; {what}")
    if labels is not None:
        recorded = meta.get(CLASSES_KEY)
        classes = json.loads(recorded) if recorded else None
        if classes != list(labels):
            raise ValueError(f"ONNX model classes {classes} differ from the metadata labels {list(labels)}")
    return CompiledModel(session, tuple(features), tuple(mapping[name] for name in expected), classifier)

"""Smoke-test logic: request bodies from held-out rows, and served answers compared with the offline model.

Pure: ``pipeline/steps/smoke.py`` sends the requests (``pipeline/io/http.py``) and turns
what these functions find into results. ``bad_record`` is the ``bad_payload`` check's record:
a held-out row with one wrong value, its only defect.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from model.records import Feature
from pipeline.core.values import json_records

# What the bad_payload check puts in a record's first feature: a value of that type refused at a glance.
WRONG_VALUES: dict[str, Any] = {
    "numeric": "not a number",
    "boolean": "maybe",
    "categorical": ["not", "a", "category"],
}


def compare(
    answer: dict[str, Any],
    estimator: Any,
    rows: pd.DataFrame,
    labels: list[Any] | None,
    start: int,
    tolerance: float = 0.0,
) -> tuple[str, float]:
    """Compare a ``/predict`` answer with the offline model on ``rows``.

    Return what differs ('' if nothing) and the largest difference seen. Labels must be equal;
    probabilities (regressors: predictions) may differ by ``tolerance``: 0 for an answer from
    scikit-learn, the parity limit for one from ONNX Runtime.
    """
    expected = np.asarray(estimator.predict(rows)).tolist()
    got = answer.get("predictions")
    if not isinstance(got, list) or len(got) != len(expected):
        return f"rows {start}+: expected {len(expected)} predictions, got {short(got)}", math.inf
    if labels is None:
        if answer.get("probabilities") is not None:
            return "a regressor's answer carries probabilities; expected null", math.inf
        return _within(got, expected, tolerance, start, "predictions")
    wrong = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
    if wrong:
        i = wrong[0]
        return (
            f"{len(wrong)} of {len(expected)} predictions differ from the offline model; "
            f"first: row {start + i} served {got[i]!r}, offline {expected[i]!r}"
        ), math.inf
    keys = [str(label) for label in labels]
    proba = np.asarray(estimator.predict_proba(rows), dtype=float)
    served = answer.get("probabilities")
    if not isinstance(served, list) or len(served) != len(proba):
        return f"rows {start}+: expected {len(proba)} probability rows, got {short(served)}", math.inf
    try:
        values = np.array([[row[key] for key in keys] for row in served], dtype=float)
    except (KeyError, TypeError, ValueError):
        return (
            f"rows {start}+: probabilities are not one number per label {keys}: {short(served[:1])}",
            math.inf,
        )
    return _within(values, proba, tolerance, start, "probabilities")


def _within(served: Any, offline: Any, tolerance: float, start: int, what: str) -> tuple[str, float]:
    """Return '' and the largest difference when every served value is within ``tolerance`` of offline."""
    try:
        got = np.asarray(served, dtype=float)
    except (TypeError, ValueError):
        return f"rows {start}+: {what} are not numbers: {short(served)}", math.inf
    diff = np.abs(got - np.asarray(offline, dtype=float)).reshape(len(got), -1).max(axis=1)
    worst = float(diff.max()) if len(diff) else 0.0
    if worst <= tolerance:
        return "", worst
    i = int(np.argmax(diff))
    bound = "exactly" if tolerance == 0 else f"within {tolerance:.2g}"
    return (
        f"{what} differ from the offline model by up to {worst:.3g}, not {bound}; first: row {start + i} "
        f"served {short(np.asarray(served)[i].tolist())}, offline {short(np.asarray(offline)[i].tolist())}"
    ), worst


def bad_record(features: pd.DataFrame, specs: Sequence[Feature]) -> tuple[dict[str, Any], str, Any]:
    """Return the first held-out row as a client sends it, its first feature and a value that feature refuses.

    The row is sent as ``predict`` sends it (booleans as true/false), so the wrong value put in
    that one feature is the record's only defect: the 422 it earns names that field alone.
    """
    booleans = {spec.name for spec in specs if spec.type == "boolean"}
    record = json_records(features.iloc[:1], booleans)[0]
    first = specs[0]
    return record, first.name, WRONG_VALUES[first.type]


def batch_bodies(
    features: pd.DataFrame, max_batch: int, max_body: int, booleans: Collection[str] = ()
) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(start, stop, json_body)`` batches of at most ``max_batch`` rows and ``max_body`` bytes."""
    start = 0
    size = max(1, max_batch)
    while start < len(features):
        stop = min(start + size, len(features))
        body = json.dumps({"records": json_records(features.iloc[start:stop], booleans)}).encode()
        if max_body and len(body) > max_body and stop - start > 1:
            size = max(1, (stop - start) // 2)
            continue
        yield start, stop, body
        start = stop


def short(value: Any, limit: int = 200) -> str:
    """Return ``value`` as text of at most ``limit`` characters (JSON for non-text)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""Smoke-test logic: request bodies from held-out rows, and served answers compared with the offline model.

Pure: ``pipeline/commands/smoke.py`` sends the requests (``pipeline/io/http.py``) and turns
what these functions find into results.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator
from typing import Any

import numpy as np
import pandas as pd

from model.codec import plain


def compare(
    answer: dict[str, Any], estimator: Any, rows: pd.DataFrame, labels: list[Any] | None, start: int
) -> str:
    """Return what differs between a ``/predict`` answer and the offline model on ``rows`` ('' if nothing)."""
    expected = np.asarray(estimator.predict(rows)).tolist()
    got = answer.get("predictions")
    if not isinstance(got, list) or len(got) != len(expected):
        return f"rows {start}+: expected {len(expected)} predictions, got {short(got)}"
    wrong = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
    if wrong:
        i = wrong[0]
        return (
            f"{len(wrong)} of {len(expected)} predictions differ from the offline model; "
            f"first: row {start + i} served {got[i]!r}, offline {expected[i]!r}"
        )
    if labels is None:
        if answer.get("probabilities") is not None:
            return "a regressor's answer carries probabilities; expected null"
        return ""
    keys = [str(label) for label in labels]
    proba = np.asarray(estimator.predict_proba(rows), dtype=float).tolist()
    served = answer.get("probabilities")
    if not isinstance(served, list) or len(served) != len(proba):
        return f"rows {start}+: expected {len(proba)} probability rows, got {short(served)}"
    for i, (row, offline) in enumerate(zip(served, proba, strict=True)):
        values = [row.get(key) for key in keys] if isinstance(row, dict) else None
        if values != offline:
            return (
                f"probabilities differ from the offline model; first: row {start + i} "
                f"served {short(row)}, offline {dict(zip(keys, offline, strict=True))}"
            )
    return ""


def batch_bodies(
    features: pd.DataFrame, max_batch: int, max_body: int, booleans: Collection[str] = ()
) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(start, stop, json_body)`` batches of at most ``max_batch`` rows and ``max_body`` bytes."""
    start = 0
    size = max(1, max_batch)
    while start < len(features):
        stop = min(start + size, len(features))
        body = json.dumps({"records": to_records(features.iloc[start:stop], booleans)}).encode()
        if max_body and len(body) > max_body and stop - start > 1:
            size = max(1, (stop - start) // 2)
            continue
        yield start, stop, body
        start = stop


def to_records(frame: pd.DataFrame, booleans: Collection[str] = ()) -> list[dict[str, Any]]:
    """Return rows as JSON-ready dicts: Python scalars, missing values as None, ``booleans`` as true/false.

    A boolean feature may be stored as 0/1 (as a table read gives it); the API takes JSON booleans.
    """
    columns = {
        name: [_json_value(v, name in booleans) for v in frame[name].tolist()] for name in frame.columns
    }
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _json_value(value: Any, boolean: bool = False) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value) if boolean else plain(value)


def short(value: Any, limit: int = 200) -> str:
    """Return ``value`` as text of at most ``limit`` characters (JSON for non-text)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."

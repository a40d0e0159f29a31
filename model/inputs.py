"""How a value becomes a model input: one rule for training, scikit-learn serving and ONNX serving.

A categorical value is compared as text: ``1`` and ``1.0`` are one category, booleans are
``true``/``false``, and a missing value is the empty string (the fitted pipeline imputes it).
Numeric and boolean values are numbers (``true`` is 1.0) with NaN for a missing one; ONNX takes
them as float32 and each feature as its own ``[rows, 1]`` input. No pandas: the lean serving
image builds its ONNX inputs straight from the validated JSON records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from model.records import Feature

MISSING_CATEGORY = ""  # what a missing categorical value is, to the pipeline and to ONNX


def category_key(value: Any) -> str:
    """Return the text a category is compared by: ``1.0`` and ``1`` agree, booleans are true/false."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def category_text(value: Any) -> str:
    """Return a categorical value as model input: its category key, or ``""`` when missing."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return MISSING_CATEGORY
    return category_key(value)


def number(value: Any) -> float:
    """Return a numeric or boolean value as model input: a float, NaN when missing."""
    return math.nan if value is None else float(value)


def onnx_feeds(
    records: Sequence[dict[str, Any]], features: Sequence[Feature], inputs: Sequence[str]
) -> dict[str, np.ndarray]:
    """Return the ONNX inputs for ``records``: one ``[rows, 1]`` array per feature, keyed by ``inputs``.

    ``inputs`` are the graph input names, in feature order (the converter may rename a feature).
    """
    feeds: dict[str, np.ndarray] = {}
    for feature, input_name in zip(features, inputs, strict=True):
        name = feature.name
        if feature.type == "categorical":
            column = np.array([category_text(r[name]) for r in records], dtype=object)
        else:
            column = np.array([number(r[name]) for r in records], dtype=np.float32)
        feeds[input_name] = column.reshape(-1, 1)
    return feeds

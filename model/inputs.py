"""How a value becomes a model input: one rule for training, scikit-learn serving and ONNX serving.

A categorical value is compared as text: ``1`` and ``1.0`` are one category, booleans are
``true``/``false``, and a missing value is the empty string (the fitted pipeline imputes it).
Numeric and boolean values are numbers (``true`` is 1.0) with NaN for a missing one; ONNX takes
them as float32 and each feature as its own ``[rows, 1]`` input. No pandas: the lean serving
image builds its ONNX inputs straight from the validated JSON records.

Which spellings are booleans is decided here, once (``BOOLEAN_WORDS``, ``boolean_value``): ``init``
types a column boolean by it, validation and training read table cells by it, and the server
accepts a boolean feature's JSON value by it, so a record copied from the training table means
to the model what its row meant in training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from model.records import Feature

MISSING_CATEGORY = ""  # what a missing categorical value is, to the pipeline and to ONNX
# Booleans spelled as words, each pair (true, false); read in any case, surrounding spaces ignored.
BOOLEAN_WORDS: tuple[tuple[str, str], ...] = (
    ("true", "false"),
    ("t", "f"),
    ("yes", "no"),
    ("y", "n"),
    ("1", "0"),
)
TRUE_WORDS = frozenset(true for true, _ in BOOLEAN_WORDS)
FALSE_WORDS = frozenset(false for _, false in BOOLEAN_WORDS)
BOOLEAN_SPELLINGS = (  # for messages and the API docs: every spelling of a boolean, true first
    "true/false, 1/0, or the text "
    + ", ".join(f'"{true}"/"{false}"' for true, false in BOOLEAN_WORDS)
    + " in any case"
)


def category_key(value: Any) -> str:
    """Return the text a category is compared by: ``1.0`` and ``1`` agree, booleans are true/false."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def boolean_value(value: Any) -> bool | None:
    """Return what a value spelled as a boolean means, or None when it is no boolean.

    True/False, the numbers 1/0 (``1.0`` too) and the words of ``BOOLEAN_WORDS`` in any case with
    surrounding spaces ignored (``"Yes"``, ``" n "``, ``"1"``); anything else (``2``, ``"maybe"``,
    ``""``, ``"1.0"``, a null) is None.
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    key = category_key(value).strip().lower()
    if key in TRUE_WORDS:
        return True
    if key in FALSE_WORDS:
        return False
    return None


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

"""How small a difference the no-regression gate can resolve at a number of rows, and the rows a difference needs.

The paired bootstrap's interval of the candidate-minus-champion difference narrows as one over the
square root of the rows scored: its half-width is about ``z * spread / sqrt(rows)``, where
``spread`` is the standard deviation of the per-row contribution to the difference (for accuracy,
the square root of the share of rows that exactly one model gets right). The half-width is the
smallest difference the comparison resolves (its minimum detectable effect, as this pipeline
states it): a true difference smaller than it looks the same as none. When it exceeds the
tolerance, a candidate exactly as good as its champion cannot pass: the gate says inconclusive.

Measured on the gate (``detectable_from``) or predicted before any model exists
(``detectable_difference`` with ``SIMILAR_MODELS_SPREAD``, e.g. by ``init``). Pure functions.
"""

from __future__ import annotations

import math
from statistics import NormalDist

# Per-row spread of the paired difference between two random forests that differ only in their seed
# (100 trees, min_samples_leaf 2), from the intervals the gate measured on the 7,000-row synth table
# (1,750 held-out rows; 750 gave the same to two figures). rmse is relative to the champion's rmse.
# Rough: other tables and models spread more or less; a measured interval always wins.
SIMILAR_MODELS_SPREAD: dict[str, float] = {"roc_auc": 0.27}


def z_value(confidence: float) -> float:
    """Return the two-sided normal quantile of ``confidence`` (0.95 -> 1.96)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def detectable_difference(rows: int, spread: float, confidence: float = 0.95) -> float:
    """Return the smallest difference a paired comparison on ``rows`` rows resolves: its interval's half-width.

    ``spread`` is the per-row standard deviation of the difference (``SIMILAR_MODELS_SPREAD`` holds
    rough values for two similar models; ``spread_of`` reads one off a measured interval).
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if spread < 0:
        raise ValueError(f"spread must be >= 0, got {spread}")
    return z_value(confidence) * spread / math.sqrt(rows)


def detectable_from(low: float, high: float) -> float:
    """Return the smallest difference a measured interval resolves: half its width."""
    return (high - low) / 2


def spread_of(low: float, high: float, rows: int, confidence: float) -> float:
    """Return the per-row spread a measured ``confidence`` interval on ``rows`` rows implies."""
    return detectable_from(low, high) * math.sqrt(rows) / z_value(confidence)


def rows_to_resolve(rows: int, detectable: float, difference: float) -> int | None:
    """Return the rows at which a comparison resolving ``detectable`` on ``rows`` rows resolves ``difference``.

    None when ``difference`` is not positive: no number of rows resolves a difference of zero.
    """
    if difference <= 0:
        return None
    return max(1, math.ceil(rows * (detectable / difference) ** 2))

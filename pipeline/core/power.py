"""How small a difference the no-regression gate can resolve at a number of rows, and the rows a difference needs.

The paired bootstrap's interval of the candidate-minus-champion difference narrows as one over the
square root of the rows scored: its half-width is about ``z * spread / sqrt(rows)``, where
``spread`` is the standard deviation of the per-row contribution to the difference (for accuracy,
the square root of the share of rows that exactly one model gets right). The half-width is the
smallest difference the comparison resolves (its minimum detectable effect, as this pipeline
states it): a true difference smaller than it looks the same as none. When it exceeds the
tolerance, a candidate exactly as good as its champion cannot pass: the gate says inconclusive.

Measured on the gate's interval (``detectable_from``), or foreseen before any model exists
(``foreseen``, by ``init``) from the spread two similar models showed. Pure functions.
"""

from __future__ import annotations

import math
from statistics import NormalDist

# Per-row spread of the paired ROC AUC difference of two random forests that differ only in their seed,
# from the gate's interval on the 7,000-row churn table (1,748 held-out rows: half-width 0.0132 at 95%).
# Rough: other tables and models spread more or less; the interval a gate measures always wins.
SIMILAR_FORESTS_ROC_AUC_SPREAD = 0.28


def foreseen(rows: int, spread: float = SIMILAR_FORESTS_ROC_AUC_SPREAD, confidence: float = 0.95) -> float:
    """Return the difference a paired comparison on ``rows`` rows will resolve: about z * spread / sqrt(rows)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2) * spread / math.sqrt(max(rows, 1))


def detectable_from(low: float, high: float) -> float:
    """Return the smallest difference a measured interval resolves: half its width."""
    return (high - low) / 2


def rows_to_resolve(rows: int, detectable: float, difference: float) -> int | None:
    """Return the rows at which a comparison resolving ``detectable`` on ``rows`` rows resolves ``difference``.

    None when ``difference`` is not positive: no number of rows resolves a difference of zero.
    """
    if difference <= 0:
        return None
    return max(1, math.ceil(rows * (detectable / difference) ** 2))


def rows_to_decide(rows: int, delta: float, low: float, high: float, threshold: float) -> str:
    """Estimate the held-out rows that would shrink the interval (width ~ 1/sqrt(rows)) clear of the margin."""
    needed = rows_to_resolve(rows, detectable_from(low, high), abs(delta - threshold))
    if needed is None or abs(delta - threshold) < 1e-12:
        return "the point estimate sits on the tolerance: no number of rows would decide it"
    return f"about {needed:,} held-out rows would decide"

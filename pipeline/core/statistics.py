"""The statistics drift is judged by: bins, category shares, PSI, KS and chi-squared tests, distances.

Pure functions of two samples (or their counts); ``pipeline/core/drift.py`` picks which one a
column gets. SciPy provides the tests and the Jensen-Shannon distance; the Wasserstein distance of
two equal-size samples is the mean absolute difference of their sorted values, computed here
(``tests/core/test_statistics.py`` holds it equal to SciPy's).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from model.inputs import category_key
from pipeline.core.values import boolean_key

EPSILON = 1e-4  # stands in for an empty bin's fraction so PSI stays finite
DISTANCE_ROWS = 50_000  # rows per side large-sample statistics are computed on (seeded sample)
SEED = 0


def unseen_shares(expected: dict[str, float], actual: dict[str, float]) -> dict[str, float]:
    """Return ``{category: share}`` of the current categories the reference never had."""
    return {key: share for key, share in actual.items() if key not in expected}


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Return the distinct quantile edges (min ... max) splitting ``values`` into up to ``bins`` bins."""
    if values.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))


def bin_fractions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Return the share of ``values`` in each bin; the outer bins are open-ended."""
    count = max(len(edges) - 1, 1) if len(edges) else 0
    if values.size == 0 or count == 0:
        return np.zeros(count)
    index = np.searchsorted(edges[1:-1], values, side="right")
    return np.bincount(index, minlength=count) / values.size


def category_fractions(series: pd.Series, boolean: bool = False) -> dict[str, float]:
    """Return ``{category key: share of non-null rows}``, keys sorted."""
    counts = category_counts(series, boolean)
    total = sum(counts.values())
    return {name: counts[name] / total for name in sorted(counts)} if total else {}


def category_counts(series: pd.Series, boolean: bool = False) -> dict[str, float]:
    """Return ``{category key: non-null rows}``."""
    key = boolean_key if boolean else category_key
    merged: dict[str, float] = {}
    for value, count in series.value_counts(dropna=True).items():
        name = key(value)
        merged[name] = merged.get(name, 0) + float(count)
    return merged


def psi(expected: Iterable[float], actual: Iterable[float]) -> float:
    """Return the population stability index of two aligned distributions (fractions)."""
    e = np.clip(np.asarray(list(expected), dtype=float), EPSILON, None)
    a = np.clip(np.asarray(list(actual), dtype=float), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def category_psi(expected: dict[str, float], actual: dict[str, float]) -> float:
    """Return the PSI over the union of categories (new or vanished ones count as epsilon)."""
    keys = sorted(set(expected) | set(actual))
    return psi((expected.get(k, 0.0) for k in keys), (actual.get(k, 0.0) for k in keys))


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float | None, float | None]:
    """Return the two-sample KS statistic and p-value, or Nones when a side has no values."""
    if reference.size == 0 or current.size == 0:
        return None, None
    from scipy import stats  # about 1 s to import; validate without drift.reference never needs it

    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def chi2_test(expected: dict[str, float], actual: dict[str, float]) -> tuple[float | None, float | None]:
    """Return the chi-squared statistic and p-value of the two sides' category counts (homogeneity)."""
    keys = sorted(set(expected) | set(actual))
    table = np.array([[expected.get(k, 0.0) for k in keys], [actual.get(k, 0.0) for k in keys]])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0  # one category on both sides: nothing moved
    from scipy import stats

    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def normalised_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """Return the Wasserstein-1 distance of the two samples divided by the reference's standard deviation.

    On equal-size samples W1 is the mean absolute difference of the sorted values; the larger side
    is subsampled (seeded, at most ``DISTANCE_ROWS``) to the smaller one's size.
    """
    size = min(reference.size, current.size, DISTANCE_ROWS)
    rng = np.random.default_rng(SEED)
    a = np.sort(reference if reference.size == size else reference[rng.integers(0, reference.size, size)])
    b = np.sort(current if current.size == size else current[rng.integers(0, current.size, size)])
    distance = float(np.mean(np.abs(a - b)))
    spread = float(np.std(reference))
    if spread > 0:
        return distance / spread
    return 0.0 if distance == 0 else float("inf")


def jensen_shannon(expected: dict[str, float], actual: dict[str, float]) -> float:
    """Return the Jensen-Shannon distance (base 2, in [0, 1]) of the two sides' category counts."""
    from scipy.spatial.distance import jensenshannon

    keys = sorted(set(expected) | set(actual))
    p = np.array([expected.get(k, 0.0) for k in keys])
    q = np.array([actual.get(k, 0.0) for k in keys])
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    return float(jensenshannon(p, q, base=2))

"""The statistics drift is judged by: bins, category shares, PSI, KS and chi-squared tests, distances.

Pure functions of two samples (or their counts); ``pipeline/core/drift.py`` picks which one a
column gets. SciPy provides the tests, the Jensen-Shannon distance and the exact Wasserstein
distance of two samples of any sizes (a side above ``DISTANCE_ROWS`` values is first sampled
without replacement, seeded, so the distance stays exact for the values compared).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist

import numpy as np
import pandas as pd

from model.inputs import category_key
from pipeline.core.values import boolean_key

EPSILON = 1e-4  # stands in for an empty bin's fraction so PSI stays finite
DISTANCE_ROWS = 50_000  # rows per side large-sample statistics are computed on (seeded sample)
SEED = 0
NOISE_LEVEL = 0.001  # chance that two samples of one source go beyond a noise allowance (unseen, JS floor)
RARE_ROWS = 10  # categories with fewer rows (both sides) are pooled for Jensen-Shannon (see pooled)
RARE_KEY = "\x00rare"  # the pooled categories' key: no category read from a table is spelled so


def unseen_shares(expected: dict[str, float], actual: dict[str, float]) -> dict[str, float]:
    """Return ``{category: share}`` of the current categories the reference never had."""
    return {key: share for key, share in actual.items() if key not in expected}


def unseen_limit(reference: dict[str, float], current_rows: int, floor: float) -> float:
    """Return the share of current rows with never-seen categories beyond which a column drifted.

    A sample misses some of its source's rarer categories, so fresh data from the same source brings
    never-seen ones by chance: about as many rows as the reference has categories seen once
    (Good-Turing's estimate of the unseen share). The limit allows twice that, plus ln(1 /
    NOISE_LEVEL) rows' worth of the reference (a category that common goes unseen with probability
    NOISE_LEVEL), plus 3.1 standard errors of the current side's share; never below ``floor``
    (``drift.max_unseen_share``). ``reference``: category -> rows.
    """
    rows = sum(reference.values())
    if rows <= 0 or current_rows <= 0:
        return floor
    once = sum(1 for count in reference.values() if round(count) == 1)
    expected = (2 * once + math.log(1 / NOISE_LEVEL)) / rows
    return max(floor, expected + NormalDist().inv_cdf(1 - NOISE_LEVEL) * math.sqrt(expected / current_rows))


def pooled(expected: dict[str, float], actual: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Return both sides with the categories under ``RARE_ROWS`` rows on the two sides together pooled as one.

    A long tail (a free categorical: cities, products) is mostly categories seen once or twice, whose
    shares two samples of one source never agree on: compared one by one, Jensen-Shannon calls them
    drift (1,000 categories of a Zipf law, 5,000 rows a side: above 0.1 in every draw). Pooled, their
    share as a whole is compared; new categories are judged apart (:func:`unseen_limit`).
    """
    rare = {
        k for k in expected.keys() | actual.keys() if expected.get(k, 0.0) + actual.get(k, 0.0) < RARE_ROWS
    }
    if len(rare) < 2:
        return expected, actual
    sides = []
    for counts in (expected, actual):
        kept = {k: v for k, v in counts.items() if k not in rare}
        sides.append({**kept, RARE_KEY: sum(v for k, v in counts.items() if k in rare)})
    return sides[0], sides[1]


def jensen_shannon_floor(expected: dict[str, float], actual: dict[str, float]) -> float:
    """Return the Jensen-Shannon distance two samples of one source go beyond with probability NOISE_LEVEL.

    For small differences the divergence (base 2) is about a chi-squared statistic with k - 1 degrees
    of freedom (k categories seen) times (1/n1 + 1/n2) / (8 ln 2): many categories on few rows move
    by chance alone as far as a limit (51 categories, 2,000 rows a side: 0.10 typically, 0.125 at the
    0.999 quantile). Sides are category -> rows.
    """
    first, second = sum(expected.values()), sum(actual.values())
    seen = {k for k, v in expected.items() if v > 0} | {k for k, v in actual.items() if v > 0}
    if first <= 0 or second <= 0 or len(seen) < 2:
        return 0.0
    from scipy import stats

    chi2 = float(stats.chi2.ppf(1 - NOISE_LEVEL, len(seen) - 1))
    return math.sqrt(chi2 * (1 / first + 1 / second) / (8 * math.log(2)))


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

    Exact for sides of any sizes (SciPy integrates the difference of the two empirical CDFs); no side
    is resampled with replacement, which would inflate the distance when the sizes differ. A side
    above ``DISTANCE_ROWS`` values is sampled down to that many, without replacement (seeded).
    """
    from scipy import stats

    rng = np.random.default_rng(SEED)
    a, b = (
        side if side.size <= DISTANCE_ROWS else rng.choice(side, DISTANCE_ROWS, replace=False)
        for side in (reference, current)
    )
    if a.size == 0 or b.size == 0:
        raise ValueError("the Wasserstein distance needs values on both sides")  # compare_one tests those
    distance = float(stats.wasserstein_distance(a, b))
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

"""Limits that fresh data from the same source passes, inferred from one sample of it (``init``).

A sample shows neither its source's extremes, nor its null rate or class shares exactly: every
limit here leaves the room another sample of that size needs by chance (about ``NOISE_LEVEL`` per
limit), yet a real defect (a surge of nulls, a unit error, a planted leak) still breaks it. Table-
level limits the table itself would break are loosened to fit it, each with a note saying so.
``pipeline/core/schema.py`` calls these for ``InferOptions(fresh=True)``; ``bench/bench_defaults.py``
measures them on split halves of real tables.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from model.inputs import category_key
from pipeline.config import ColumnSchema, SchemaConfig
from pipeline.core.integrity import conflicting_failures, leakage_scores

DEFAULT_MIN_ROWS = 50
DEFAULT_MAX_DUPLICATE_FRACTION = 0.05
DEFAULT_MIN_CLASS_FRACTION = 0.05  # what init starts from; lowered for a rarer class, with a note
DEFAULT_MAX_CONFLICTING_FRACTION = SchemaConfig().max_conflicting_fraction  # measured: see pipeline/config.py
# One feature alone scoring this ROC AUC is a leak (bench/bench_defaults.py: a leak of AUC 0.99 scored
# 0.980-0.991 on 2,000 churn rows, the best real feature 0.67-0.71), unless the table's own best feature
# comes close (leakage_limit). Regression keeps the R² limit of pipeline/config.py: nothing was measured.
DEFAULT_LEAKAGE_LIMIT = 0.97
# Per limit, the chance that fresh data from the same source breaks it is about NOISE_LEVEL; a table has
# tens of limits, so a run fails by chance in a few hundredths at most (bench/bench_defaults.py).
NOISE_LEVEL = 0.001
FRESH_RATIO = 10  # ranges hold for fresh samples up to this many times the onboarded sample's size
# A heavy tail's allowance (log scale) ends at this many times the observed maximum: the heavy-tailed
# breast-cancer columns' maximum grew up to 2.6 times from one random half to the other (200 halves).
HEAVY_TAIL_CAP = 5.0
Z = 3.5  # standard errors (of the difference of two shares) a fresh share may sit above the observed one
Z_LOWER = 3.09  # ... and below it: the normal tail's 0.001 quantile (a low count's lower tail is shorter)


def duplicate_limit(repeated: int, rows: int, fresh: bool, notes: list[str]) -> float:
    """Return ``schema.max_duplicate_fraction``: the default, raised (with a note) when the table repeats more rows.

    ``fresh``: raised with the headroom another sample of this size needs (:func:`headroom`).
    """
    share = repeated / rows if rows else 0.0
    wanted = share + headroom(repeated, rows) if fresh and share > DEFAULT_MAX_DUPLICATE_FRACTION else share
    limit = max(DEFAULT_MAX_DUPLICATE_FRACTION, ceil_to(wanted, 2))
    if limit > DEFAULT_MAX_DUPLICATE_FRACTION:
        notes.append(
            f"loosened schema.max_duplicate_fraction to {limit:g} (from {DEFAULT_MAX_DUPLICATE_FRACTION:g}): "
            f"{share:.1%} of the rows ({repeated} of {rows}) repeat an earlier row exactly"
        )
    return limit


def class_limit(values: pd.Series, fresh: bool, notes: list[str]) -> float:
    """Return ``schema.min_class_fraction``: 0.05, lowered (with a note) to half the rarest class's share.

    ``fresh``: also below what another sample of this size may show of that class by chance (the
    share less ``Z_LOWER`` standard errors of the difference of two shares: a class of 12% of 75
    rows may show as 2 rows; of 27% of 89 rows, not below 5%).
    """
    counts = values.map(category_key).value_counts()
    rarest, rows = str(counts.index[-1]), len(values)
    share = int(counts.iloc[-1]) / rows
    wanted = share / 2
    if fresh:
        wanted = min(wanted, share - Z_LOWER * _spread(int(counts.iloc[-1]), rows))
    limit = min(DEFAULT_MIN_CLASS_FRACTION, max(0.0, floor_to(wanted, 3)))
    if limit < DEFAULT_MIN_CLASS_FRACTION:
        notes.append(
            f"loosened schema.min_class_fraction to {limit:g} (from {DEFAULT_MIN_CLASS_FRACTION:g}): "
            f"the rarest class ({rarest!r}) is {share:.1%} of the {rows} labelled rows"
        )
    return limit


def conflicting_limit(
    frame: pd.DataFrame, features: dict[str, dict[str, Any]], target: str, notes: list[str]
) -> float:
    """Return ``schema.max_conflicting_fraction``: the default, raised (with a note) when the table has more.

    Rows with another row's features and another label do not arise by sampling where the features
    nearly identify a row (the only tables the check judges): a table within the default keeps it;
    one beyond it gets its own share plus :func:`headroom`.
    """
    columns = [ColumnSchema(name=name, type=spec["type"]) for name, spec in features.items()]
    found = conflicting_failures(frame, columns, target, 0.0)
    if not found:  # None (not judged) or no conflicting rows
        return DEFAULT_MAX_CONFLICTING_FRACTION
    count, rows = int(found[0].observed["rows"]), int(frame[target].notna().sum())
    if count / rows <= DEFAULT_MAX_CONFLICTING_FRACTION:
        return DEFAULT_MAX_CONFLICTING_FRACTION
    limit = ceil_to(count / rows + headroom(count, rows), 3)
    notes.append(
        f"loosened schema.max_conflicting_fraction to {limit:g} (from {DEFAULT_MAX_CONFLICTING_FRACTION:g}): "
        f"{count / rows:.1%} of the rows ({count} of {rows}) have another row's features and another '{target}'"
    )
    return limit


def fresh_range(numbers: np.ndarray, integer: bool) -> tuple[float | int, float | int]:
    """Return ``[low, high]`` that fresh samples from the source of ``numbers`` (finite) stay within.

    A fresh sample as large as this one exceeds its maximum half the time, so each end extends
    past the observed extreme by a margin from the tail's own scale: the mean excess of the ``k``
    most extreme values over the next one (``k`` about the square root of the rows; for an
    exponential tail, its scale), times ln(FRESH_RATIO / NOISE_LEVEL) (under such a tail, a fresh
    sample up to FRESH_RATIO times as large goes beyond with probability about NOISE_LEVEL), times
    1 + 1/sqrt(k) for the uncertainty of a scale estimated from ``k`` values, so fewer rows get a
    wider margin. Tied extremes (a clip, a coarse scale) extend at least one step, to where the
    next value would be. Heavy tails (amounts, sizes, counts) outrun an exponential one, so for a
    column with no negatives the upper end is at least the same rule on a log scale with
    ln(1 / NOISE_LEVEL) (a Pareto-like tail, a fresh sample of the same size), up to
    HEAVY_TAIL_CAP times the maximum; such a column never goes below 0. An integer column gets
    whole numbers; one value gets 10% of it (at least 1).
    """
    rows = numbers.size
    low, high = float(numbers.min()), float(numbers.max())
    if rows < 3 or low == high:
        return widen(low, high, 0.1, integer)
    k = min(rows - 1, math.ceil(math.sqrt(rows)))
    certainty = 1 + 1 / math.sqrt(k)
    top = np.sort(np.partition(numbers, rows - k - 1)[rows - k - 1 :])  # the k + 1 largest, ascending
    bottom = np.sort(-np.partition(numbers, k)[: k + 1])  # the k + 1 smallest, negated, ascending
    upper = high + max(math.log(FRESH_RATIO / NOISE_LEVEL) * certainty * _excess(top), _step(numbers, top))
    lower = low - max(
        math.log(FRESH_RATIO / NOISE_LEVEL) * certainty * _excess(bottom), _step(-numbers, bottom)
    )
    if low >= 0 and high > 0:
        upper = max(upper, _heavy_tail(numbers[numbers > 0] if top[0] == 0 else top, high, k))
    return outwards(lower, upper, low >= 0, integer)


def _heavy_tail(tail: np.ndarray, high: float, k: int) -> float:
    """Return the upper end a heavy (log-scale) tail allows: ``tail`` is the positive end of a non-negative column.

    Either its ``k + 1`` largest values, or, for a column that is mostly zeros (fewer positive
    values than that: counts, amounts, sparse intensities), all of its positive values, whose own
    tail then sets the scale; with fewer than three, nothing does, and the cap applies.
    """
    if tail.size < 3:
        return high * HEAVY_TAIL_CAP
    if tail.size > k + 1:
        tail = np.sort(tail)[-(k + 1) :]
    scale = math.log(1 / NOISE_LEVEL) * (1 + 1 / math.sqrt(tail.size - 1)) * _excess(np.log(np.sort(tail)))
    return high * math.exp(min(scale, math.log(HEAVY_TAIL_CAP)))


def _excess(tail: np.ndarray) -> float:
    """Return the mean excess of ``tail[1:]`` over ``tail[0]`` (ascending values at one end of a column)."""
    return float(np.mean(tail[1:] - tail[0]))


def _step(numbers: np.ndarray, tail: np.ndarray) -> float:
    """Return the gap between the largest of ``numbers`` and the next smaller value (``tail``: the largest few)."""
    below = tail[tail < tail[-1]]
    nearest = float(below[-1]) if below.size else float(numbers[numbers < tail[-1]].max())
    return float(tail[-1]) - nearest


def outwards(
    lower: float, upper: float, non_negative: bool, integer: bool
) -> tuple[float | int, float | int]:
    """Return ``[lower, upper]`` rounded outwards (whole numbers for ``integer``); not below 0 when ``non_negative``."""
    if non_negative:
        lower = max(lower, 0.0)
    if integer:
        return math.floor(lower), math.ceil(upper)
    return floor_to(lower, 4), ceil_to(upper, 4)


def null_limit(nulls: int, rows: int) -> float:
    """Return a null limit that another sample of ``rows`` rows from the same source stays under by chance.

    The observed fraction plus :func:`headroom`, rounded up to a hundredth: 0 nulls in 285 rows give
    0.04, in 2,000 rows 0.01; 2% nulls in 285 rows give 0.08. A surge (a broken join nulling a fifth of
    a column) still fails.
    """
    if rows == 0:
        return 1.0
    return min(1.0, ceil_to(nulls / rows + headroom(nulls, rows), 2))


def headroom(count: int, rows: int) -> float:
    """Return how far another sample of ``rows`` rows may put a share observed as ``count`` of ``rows``.

    ``Z`` standard errors of the difference of two such shares (the share taken as (count + 2) / (rows +
    4), so that a share seen as 0 still gets room), plus 2 / rows for the rounding of small counts.
    Beyond it by chance: under 1 in 1,000 at any share and from 75 rows up (bench/bench_defaults.py).
    """
    if rows == 0:
        return 1.0
    return Z * _spread(count, rows) + 2 / rows


def _spread(count: int, rows: int) -> float:
    """Return the standard error of the difference of two shares of ``rows`` rows, the share near ``count``."""
    share = (count + 2) / (rows + 4)
    return math.sqrt(2 * share * (1 - share) / rows)


def ceil_to(value: float, digits: int) -> float:
    """Return the smallest ``digits``-decimal number >= ``value``."""
    scale = float(10**digits)
    result = math.ceil(value * scale) / scale
    return result if result >= value else (math.ceil(value * scale) + 1) / scale


def floor_to(value: float, digits: int) -> float:
    """Return the largest ``digits``-decimal number <= ``value``."""
    scale = float(10**digits)
    result = math.floor(value * scale) / scale
    return result if result <= value else (math.floor(value * scale) - 1) / scale


def leakage_limit(
    frame: pd.DataFrame, features: dict[str, dict[str, Any]], target: str, notes: list[str]
) -> float:
    """Return ``schema.leakage_limit`` for a classification table: the default, raised (with a note) above its own best feature.

    A real feature may predict the label nearly alone (iris's petal width: ROC AUC 0.87-0.99 over
    random halves of 75 rows). On few rows the score moves by chance, so the limit sits above the
    best real feature's score by :func:`headroom` (the score's shortfall from 1 read as a share of
    the rows scored), up to 1: a small table only fails a feature that is a perfect copy of the label.
    """
    columns = [ColumnSchema(name=name, type=spec["type"]) for name, spec in features.items()]
    scores, rows, what = leakage_scores(frame, columns, target, "classification", SchemaConfig().leakage_rows)
    if not scores:
        return DEFAULT_LEAKAGE_LIMIT
    name, best = max(scores.items(), key=lambda item: item[1])
    wanted = best + headroom(round((1 - best) * rows), rows)
    if wanted < DEFAULT_LEAKAGE_LIMIT:
        return DEFAULT_LEAKAGE_LIMIT
    limit = min(1.0, ceil_to(wanted, 3))
    notes.append(
        f"loosened schema.leakage_limit to {limit:g} (from {DEFAULT_LEAKAGE_LIMIT:g}): '{name}' alone predicts "
        f"'{target}' with {what} {best:.4f} on {rows} rows, and another sample this size may score up to {min(wanted, 1.0):.4f}"
    )
    return limit


def widen(low: float, high: float, margin: float, integer: bool) -> tuple[float | int, float | int]:
    """Return ``[low, high]`` widened by ``margin`` of the span, rounded outwards; not below 0 when low >= 0."""
    span = high - low
    pad = margin * (span if span > 0 else max(abs(high), 1.0))
    return outwards(low - pad, high + pad, low >= 0, integer)

"""Drift of a table against a reference table, or a model's stored data profile: features, label, predictions.

Each feature is compared by the statistic its type and the sample size call for, the choice
Evidently documents as its default (release notes of 0.1.50): when the smaller side has at most
``drift.test_max_rows`` non-null values, a test (two-sample Kolmogorov-Smirnov for numbers,
chi-squared for categories, booleans and numbers with at most ``drift.bins`` distinct values),
its p-values corrected across the tested features by Benjamini-Hochberg and compared with
``drift.alpha``; above that, a distance against a limit, because on large samples every test
flags shifts too small to matter: the Wasserstein distance divided by the reference's standard
deviation (``drift.wasserstein_limit``: a shift of a tenth of a standard deviation) and the
Jensen-Shannon distance, base 2 (``drift.jensen_shannon_limit``), over the categories with at
least 10 rows on the two sides together (rarer ones pooled as one:
:func:`~pipeline.core.statistics.pooled`), its limit raised to what chance alone
reaches on a column with many categories and few rows
(:func:`~pipeline.core.statistics.jensen_shannon_floor`: 51 categories on 2,000 rows a side
went past 0.1 in 9 of 20 split halves). ``drift.method`` forces ``test`` or
``distance``. Against a model's profile there are no raw reference values: numbers are compared
over the profile's quantile bins (chi-squared or Jensen-Shannon). PSI is reported for every
feature; it counts as drift only when ``drift.psi_limit`` is set.

Categories the reference never had count as drift above ``drift.max_unseen_share`` of the
rows, or above what the reference's own rare categories predict fresh data brings
(:func:`~pipeline.core.statistics.unseen_limit`): a free categorical (too many values for an
allowed list) seen on a few hundred rows misses some of its values, and the next sample has
them. This is how a free categorical's new values are caught: ``validate`` checks only the
allowed values a schema lists, and never fails on drift (the drift gate and ``drift`` do).

The check fails when more than ``drift.max_drifted_features`` features drift, and is an *error*
when any feature could not be compared (absent from the table or the reference). The label (the
target) and the model's predictions are compared the same way, reported apart and gated by
their own gates; the label's Jensen-Shannon limit is its own, lower one
(``drift.label_jensen_shannon_limit``, 0.05): a churn rate moving from 26.5% to 36.5% is a distance of
0.09, which the features' 0.1 lets through. Distances use a seeded sample of at most
``DISTANCE_ROWS`` values per side. Nulls are left out (validate checks null fractions).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from model.inputs import category_key
from model.records import ModelMetadata
from pipeline.config import ColumnSchema, Config, DriftConfig
from pipeline.core.drift_verdict import drift_report
from pipeline.core.profile import column_kinds, data_profile, profile_entry
from pipeline.core.statistics import (
    DISTANCE_ROWS,
    SEED,
    bin_fractions,
    category_counts,
    category_fractions,
    category_psi,
    chi2_test,
    jensen_shannon,
    jensen_shannon_floor,
    ks_test,
    normalised_wasserstein,
    pooled,
    psi,
    unseen_limit,
    unseen_shares,
)
from pipeline.core.values import numeric_values
from pipeline.errors import ModelError
from pipeline.records import Drift, FeatureDrift

Method = Literal["ks", "chi2", "wasserstein", "jensen_shannon"]


@dataclass(frozen=True)
class Side:
    """One side of a comparison: raw values (numeric) or category/bin counts."""

    values: np.ndarray | None  # finite numbers, when the raw rows are at hand
    counts: dict[str, float]  # category (or bin) -> count
    rows: int


def against_reference(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    name: str,
    config: Config,
    *,
    run: str = "",
    data_sha256: str = "",
) -> Drift:
    """Return the drift report of ``current`` against the ``reference`` table (called ``name``)."""
    current, reference = sampled(current), sampled(reference)
    columns = drift_columns(config, current, reference)
    kinds = column_kinds(columns, reference)
    profile = data_profile(reference, columns, config.drift.bins)
    features = compare(current, profile, kinds, config.drift, reference)
    missing = _missing(kinds, current, profile)
    label = label_drift(current, reference, config)
    return drift_report(features, config.drift, name, "csv", missing, run, data_sha256, label)


def against_profile(
    current: pd.DataFrame,
    metadata: ModelMetadata,
    name: str,
    config: Config,
    *,
    run: str = "",
    data_sha256: str = "",
) -> Drift:
    """Return the drift report of ``current`` against the data profile stored in a model's metadata.

    The model's predictions are compared by ``drift --model`` (``pipeline/commands/drift.py``), on
    the rows it never trained on only.
    """
    profile = metadata.profile
    if not {"numeric", "categorical"} <= set(profile):
        raise ModelError(f"{name}: model metadata has no data profile (expected 'profile' from train)")
    kinds: dict[str, str] = {f.name: f.type for f in metadata.features}
    features = compare(current, profile, kinds, config.drift)
    missing = _missing(kinds, current, profile)
    task_kind = "categorical" if metadata.task == "classification" else "numeric"
    label = None
    if "target" in profile and metadata.target in current.columns:
        label = compare_one(
            metadata.target,
            task_kind,
            current[metadata.target],
            profile["target"],
            label_limits(config.drift),
        )
    return drift_report(features, config.drift, name, "profile", missing, run, data_sha256, label)


def sampled(frame: pd.DataFrame) -> pd.DataFrame:
    """Return at most ``DISTANCE_ROWS`` rows of ``frame`` (a seeded sample; all of them when fewer).

    Large tables are judged by distances and PSI, whose estimates from 50,000 rows differ from
    the full table's by far less than their limits; small ones keep every row for the tests.
    """
    return frame if len(frame) <= DISTANCE_ROWS else frame.iloc[_sample_rows(len(frame))]


def _sample_rows(rows: int) -> np.ndarray:
    return np.sort(np.random.default_rng(SEED).choice(rows, DISTANCE_ROWS, replace=False))


def label_drift(current: pd.DataFrame, reference: pd.DataFrame, config: Config) -> FeatureDrift | None:
    """Compare the target's distribution in ``current`` with the reference's (None when one lacks it)."""
    target = config.data.target
    if target not in current.columns or target not in reference.columns:
        return None
    kind = "categorical" if config.data.task == "classification" else "numeric"
    entry = profile_entry(reference[target], kind, config.drift.bins)
    return compare_one(target, kind, current[target], entry, label_limits(config.drift), reference[target])


def label_limits(limits: DriftConfig) -> DriftConfig:
    """Return ``limits`` with the label's own Jensen-Shannon limit (``drift.label_jensen_shannon_limit``)."""
    return dataclasses.replace(limits, jensen_shannon_limit=limits.label_jensen_shannon_limit)


def prediction_drift(
    current: np.ndarray, reference: np.ndarray, kind: str, limits: DriftConfig
) -> FeatureDrift:
    """Compare a model's outputs on new rows with its outputs on reference rows (see :func:`model_outputs`)."""
    entry = profile_entry(pd.Series(reference), kind, limits.bins)
    return compare_one("predictions", kind, pd.Series(current), entry, limits, pd.Series(reference))


def drift_columns(config: Config, current: pd.DataFrame, reference: pd.DataFrame) -> list[ColumnSchema | str]:
    """Return the features to compare: schema features, else the columns of the reference (minus target, ids)."""
    if config.feature_columns:
        return [c for c in config.schema.columns if c.name in set(config.feature_columns)]
    skip = {config.data.target, *config.data.id_columns}
    return [str(c) for c in reference.columns if c not in skip]


def compare(
    current: pd.DataFrame,
    profile: dict[str, Any],
    kinds: dict[str, str],
    limits: DriftConfig,
    reference: pd.DataFrame | None = None,
) -> list[FeatureDrift]:
    """Return the drift of each feature of ``kinds`` present in ``current`` and in ``profile``.

    Test p-values are adjusted across the features tested (Benjamini-Hochberg) before judging.
    """
    results = []
    for name, kind in kinds.items():
        entry = profile["numeric" if kind == "numeric" else "categorical"].get(name)
        if name not in current.columns or entry is None:
            continue
        raw = reference[name] if reference is not None and name in reference.columns else None
        results.append(compare_one(name, kind, current[name], entry, limits, raw, adjust=False))
    return adjusted(results, limits)


def compare_one(
    name: str,
    kind: str,
    current: pd.Series,
    entry: dict[str, Any],
    limits: DriftConfig,
    reference: pd.Series | None = None,
    adjust: bool = True,
) -> FeatureDrift:
    """Compare one column with its reference (profile ``entry``, and the raw values when given)."""
    expected, actual = _sides(kind, current, entry, reference)
    psi_value = _psi(kind, current, entry)
    categories = kind != "numeric" or "values" in entry
    unseen = unseen_shares(_fractions(expected.counts), _fractions(actual.counts)) if categories else {}
    new = bool(unseen) and sum(unseen.values()) > unseen_limit(
        expected.counts, actual.rows, limits.max_unseen_share
    )
    smaller = min(expected.rows, actual.rows)
    use_test = limits.method == "test" or (limits.method == "auto" and smaller <= limits.test_max_rows)
    method: Method
    statistic: float | None = None
    p_value: float | None = None
    if expected.values is not None and actual.values is not None:
        if use_test or smaller == 0:
            method, limit = "ks", limits.alpha
            statistic, p_value = ks_test(expected.values, actual.values)
        else:
            method, limit = "wasserstein", limits.wasserstein_limit
            statistic = normalised_wasserstein(expected.values, actual.values)
    elif use_test or smaller == 0:
        method, limit = "chi2", limits.alpha
        if smaller:
            statistic, p_value = chi2_test(expected.counts, actual.counts)
    else:
        method = "jensen_shannon"
        first, second = pooled(expected.counts, actual.counts)
        limit = max(limits.jensen_shannon_limit, jensen_shannon_floor(first, second))
        statistic = jensen_shannon(first, second)
    feature = FeatureDrift(
        feature=name,
        kind=kind,
        method=method,
        statistic=statistic,
        p_value=p_value,
        p_adjusted=p_value,
        limit=limit,
        reference_rows=expected.rows,
        current_rows=actual.rows,
        psi=psi_value,
        unseen=unseen,
        drifted=new,  # so far: its never-seen categories alone; adjusted() judges the rest
    )
    return adjusted([feature], limits)[0] if adjust else feature


def adjusted(features: list[FeatureDrift], limits: DriftConfig) -> list[FeatureDrift]:
    """Return ``features`` with test p-values adjusted across them (Benjamini-Hochberg) and each judged.

    ``features`` come from :func:`compare_one` unadjusted: ``drifted`` is what their never-seen
    categories decided (only :func:`compare_one` sees the reference's counts they are judged by).
    """
    tested = [i for i, f in enumerate(features) if f.p_value is not None]
    corrected: dict[int, float] = {}
    if tested:
        from scipy import stats

        values = stats.false_discovery_control([features[i].p_value for i in tested], method="bh")
        corrected = {i: float(v) for i, v in zip(tested, values, strict=True)}
    judged = []
    for i, feature in enumerate(features):
        p_adjusted = corrected.get(i)
        judged.append(
            FeatureDrift(
                **{
                    **feature.__dict__,
                    "p_adjusted": p_adjusted,
                    "drifted": _drifted(feature, p_adjusted, limits),
                }
            )
        )
    return judged


def _drifted(feature: FeatureDrift, p_adjusted: float | None, limits: DriftConfig) -> bool:
    if feature.method in ("ks", "chi2"):
        beyond = p_adjusted is not None and p_adjusted < limits.alpha
    else:
        beyond = feature.statistic is not None and feature.statistic > feature.limit
    by_psi = limits.psi_limit is not None and feature.psi is not None and feature.psi > limits.psi_limit
    return beyond or by_psi or feature.drifted


def _sides(
    kind: str, current: pd.Series, entry: dict[str, Any], reference: pd.Series | None
) -> tuple[Side, Side]:
    """Return the reference and current sides of one comparison, in the form its statistic needs."""
    if kind == "numeric" and "values" not in entry:
        values = numeric_values(current)
        if reference is not None:
            ref = numeric_values(reference)
            return Side(ref, {}, ref.size), Side(values, {}, values.size)
        edges = np.asarray(entry["edges"], dtype=float)
        rows = int(entry.get("rows", 0)) or DISTANCE_ROWS
        expected = {str(i): f * rows for i, f in enumerate(entry["fractions"])}
        actual = {str(i): f * values.size for i, f in enumerate(bin_fractions(values, edges))}
        return Side(None, expected, rows), Side(None, actual, values.size)
    if kind == "numeric":  # few distinct values: compared as categories
        values = numeric_values(current)
        actual = category_counts(pd.Series(values))
        rows = int(entry.get("rows", 0)) or DISTANCE_ROWS
        expected = {
            category_key(v): f * rows for v, f in zip(entry["values"], entry["fractions"], strict=True)
        }
        return Side(None, expected, rows), Side(None, actual, int(values.size))
    fractions = entry["fractions"] if isinstance(entry.get("fractions"), dict) else entry  # older profiles
    rows = int(entry.get("rows", 0)) if isinstance(entry.get("fractions"), dict) else 0
    rows = rows or DISTANCE_ROWS
    actual = category_counts(current, boolean=kind == "boolean")
    expected = {k: f * rows for k, f in fractions.items()}
    return Side(None, expected, rows), Side(None, actual, int(sum(actual.values())))


def _psi(kind: str, current: pd.Series, entry: dict[str, Any]) -> float | None:
    """Return the PSI of one column against its profile entry."""
    if kind == "numeric" and "values" in entry:
        expected = {category_key(v): f for v, f in zip(entry["values"], entry["fractions"], strict=True)}
        return category_psi(expected, category_fractions(pd.Series(numeric_values(current))))
    if kind == "numeric":
        edges = np.asarray(entry["edges"], dtype=float)
        if not edges.size:
            return None
        return psi(np.asarray(entry["fractions"], dtype=float), bin_fractions(numeric_values(current), edges))
    fractions = entry["fractions"] if isinstance(entry.get("fractions"), dict) else entry
    actual = category_fractions(current, boolean=kind == "boolean")
    return category_psi(fractions, actual) if fractions else None


def _fractions(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def _missing(kinds: dict[str, str], current: pd.DataFrame, profile: dict[str, Any]) -> list[str]:
    """Return the features one side lacks (not compared)."""
    profiled = {*profile["numeric"], *profile["categorical"]}
    return [name for name in kinds if name not in current.columns or name not in profiled]

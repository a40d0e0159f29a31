"""Drift statistics: a table against a reference table or a model's stored data profile.

PSI uses the reference's quantile bins for numeric features and value frequencies for
categorical and boolean ones (an empty bin counts as a small epsilon). The two-sample KS
test runs on numeric features when the raw reference rows are available, not against a
model's stored profile (PSI only). A feature drifts when PSI > drift.psi_limit, or when the
KS statistic > drift.ks_statistic_limit with p < drift.ks_pvalue_limit; the check fails when
more than drift.max_drifted_features drift. Nulls are left out of both measures (validate
checks null fractions). Features are the schema's columns minus target and ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from model.records import Drift, DriftLimits, FeatureDrift, ModelMetadata
from pipeline.config import ColumnSchema, Config, DriftConfig
from pipeline.core.values import boolean_key, category_key, numeric_values
from pipeline.errors import ModelError

EPSILON = 1e-4  # stands in for an empty bin's fraction so PSI stays finite


def against_reference(current: pd.DataFrame, reference: pd.DataFrame, name: str, config: Config) -> Drift:
    """Return the drift report of ``current`` against the ``reference`` table (called ``name``)."""
    columns = drift_columns(config, current, reference)
    kinds = column_kinds(columns, reference)
    profile = data_profile(reference, columns, config.drift.bins)
    features = compare(current, profile, kinds, config.drift, reference)
    return drift_report(features, config.drift, name, "csv", _missing(kinds, current, profile))


def against_profile(current: pd.DataFrame, metadata: ModelMetadata, name: str, config: Config) -> Drift:
    """Return the drift report of ``current`` against the data profile stored in a model's metadata."""
    profile = metadata.profile
    if not {"numeric", "categorical"} <= set(profile):
        raise ModelError(f"{name}: model metadata has no data profile (expected 'profile' from train)")
    types = {f.name: f.type for f in metadata.features}
    kinds: dict[str, str] = {}
    for column in profile["numeric"]:
        kinds[column] = "numeric"
    for column in profile["categorical"]:
        kinds[column] = "boolean" if types.get(column) == "boolean" else "categorical"
    features = compare(current, profile, kinds, config.drift)
    return drift_report(features, config.drift, name, "profile", _missing(kinds, current, profile))


def drift_columns(config: Config, current: pd.DataFrame, reference: pd.DataFrame) -> list[ColumnSchema | str]:
    """Return the features to compare: schema features, else the columns both tables share."""
    if config.feature_columns:
        return [c for c in config.schema.columns if c.name in set(config.feature_columns)]
    skip = {config.data.target, *config.data.id_columns}
    return [str(c) for c in reference.columns if c not in skip and c in current.columns]


def column_kinds(columns: Sequence[ColumnSchema | str], frame: pd.DataFrame) -> dict[str, str]:
    """Return ``{name: numeric|categorical|boolean}``: the schema type, else guessed from the dtype."""
    kinds: dict[str, str] = {}
    for column in columns:
        if isinstance(column, ColumnSchema):
            kinds[column.name] = column.type
        elif column in frame.columns and pd.api.types.is_bool_dtype(frame[column]):
            kinds[column] = "boolean"
        elif column in frame.columns and pd.api.types.is_numeric_dtype(frame[column]):
            kinds[column] = "numeric"
        else:
            kinds[column] = "categorical"
    return kinds


def data_profile(frame: pd.DataFrame, columns: Sequence[ColumnSchema | str], bins: int) -> dict[str, Any]:
    """Return the drift profile of ``frame``: quantile bins per numeric column, frequencies otherwise.

    ``{"numeric": {col: {"edges": [...], "fractions": [...]}}, "categorical": {col: {value: fraction}}}``;
    a column given by name gets its kind from its dtype; columns absent from ``frame`` are left out.
    """
    numeric: dict[str, dict[str, list[float]]] = {}
    categorical: dict[str, dict[str, float]] = {}
    for name, kind in column_kinds(columns, frame).items():
        if name not in frame.columns:
            continue
        if kind == "numeric":
            values = numeric_values(frame[name])
            edges = quantile_edges(values, bins)
            numeric[name] = {"edges": edges.tolist(), "fractions": bin_fractions(values, edges).tolist()}
        else:
            categorical[name] = category_fractions(frame[name], boolean=kind == "boolean")
    return {"numeric": numeric, "categorical": categorical}


def compare(
    current: pd.DataFrame,
    profile: dict[str, Any],
    kinds: dict[str, str],
    limits: DriftConfig,
    reference: pd.DataFrame | None = None,
) -> list[FeatureDrift]:
    """Return the drift of each feature of ``kinds`` present in ``current`` and in ``profile``.

    KS runs on numeric features only when the raw ``reference`` rows are given.
    """
    results = []
    for name, kind in kinds.items():
        if name not in current.columns:
            continue
        ks_stat: float | None = None
        ks_p: float | None = None
        if kind == "numeric":
            entry = profile["numeric"].get(name)
            if entry is None:
                continue
            values = numeric_values(current[name])
            edges = np.asarray(entry["edges"], dtype=float)
            expected = np.asarray(entry["fractions"], dtype=float)
            value = psi(expected, bin_fractions(values, edges)) if edges.size else None
            if reference is not None and name in reference.columns:
                ks_stat, ks_p = ks_test(numeric_values(reference[name]), values)
        else:
            ref_freq = profile["categorical"].get(name)
            if ref_freq is None:
                continue
            cur_freq = category_fractions(current[name], boolean=kind == "boolean")
            value = category_psi(ref_freq, cur_freq) if ref_freq else None
        drifted = is_drifted(value, ks_stat, ks_p, limits)
        results.append(FeatureDrift(name, kind, value, ks_stat, ks_p, drifted))
    return results


def is_drifted(
    psi_value: float | None, ks_stat: float | None, ks_p: float | None, limits: DriftConfig
) -> bool:
    """Return True when PSI or the KS test is beyond the configured limits."""
    if psi_value is not None and psi_value > limits.psi_limit:
        return True
    return (
        ks_stat is not None
        and ks_p is not None
        and ks_stat > limits.ks_statistic_limit
        and ks_p < limits.ks_pvalue_limit
    )


def drift_report(
    features: Sequence[FeatureDrift], limits: DriftConfig, reference: str, source: str, missing: list[str]
) -> Drift:
    """Return the ``drift.json`` record."""
    drifted = tuple(f.feature for f in features if f.drifted)
    return Drift(
        reference=reference,
        source="csv" if source == "csv" else "profile",
        features=tuple(features),
        drifted=drifted,
        missing=tuple(missing),
        passed=len(drifted) <= limits.max_drifted_features,
        limits=DriftLimits(
            psi_limit=limits.psi_limit,
            ks_statistic_limit=limits.ks_statistic_limit,
            ks_pvalue_limit=limits.ks_pvalue_limit,
            max_drifted_features=limits.max_drifted_features,
            bins=limits.bins,
        ),
    )


def failure_summary(report: Drift, path: str) -> str:
    """Return the one-line reason the drift check failed."""
    drifted = report.drifted
    return (
        f"drift check failed: {len(drifted)} drifted feature(s) ({', '.join(drifted)}), "
        f"limit {report.limits.max_drifted_features} (psi > {report.limits.psi_limit} or KS beyond "
        f"its limits; see {path})"
    )


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
    counts = series.value_counts(dropna=True)
    total = int(counts.sum())
    if total == 0:
        return {}
    key = boolean_key if boolean else category_key
    merged: dict[str, int] = {}
    for value, count in counts.items():
        name = key(value)
        merged[name] = merged.get(name, 0) + int(count)
    return {name: merged[name] / total for name in sorted(merged)}


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


def _missing(kinds: dict[str, str], current: pd.DataFrame, profile: dict[str, Any]) -> list[str]:
    """Return the features one side lacks (not compared)."""
    profiled = {*profile["numeric"], *profile["categorical"]}
    return [name for name in kinds if name not in current.columns or name not in profiled]

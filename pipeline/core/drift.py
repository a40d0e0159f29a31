"""Drift statistics: a table against a reference table or a model's stored data profile.

PSI uses the reference's quantile bins for numeric features, value frequencies for categorical
and boolean ones, and for numeric features with at most ``drift.bins`` distinct values (0/1
flags, counts) the values themselves as bins, so a shifted flag is seen. An empty bin counts
as a small epsilon. The two-sample KS test runs on numeric features when the raw reference
rows are available, not against a model's stored profile (PSI only). A feature drifts when
PSI > drift.psi_limit, when the KS statistic > drift.ks_statistic_limit with p <
drift.ks_pvalue_limit, or when categories the reference never had make up more than
drift.max_unseen_share of its rows. The check fails when more than drift.max_drifted_features
drift, and is an *error* when any feature could not be compared (absent from the table or the
reference): it never passes having compared less than the schema lists. Nulls are left out
(validate checks null fractions). Features are the schema's columns minus target and ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from model.inputs import category_key
from model.records import ModelMetadata, Status
from pipeline.config import ColumnSchema, Config, DriftConfig
from pipeline.core.values import boolean_key, numeric_values
from pipeline.errors import ModelError
from pipeline.records import Drift, DriftLimits, FeatureDrift

EPSILON = 1e-4  # stands in for an empty bin's fraction so PSI stays finite


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
    columns = drift_columns(config, current, reference)
    kinds = column_kinds(columns, reference)
    profile = data_profile(reference, columns, config.drift.bins)
    features = compare(current, profile, kinds, config.drift, reference)
    missing = _missing(kinds, current, profile)
    return drift_report(features, config.drift, name, "csv", missing, run, data_sha256)


def against_profile(
    current: pd.DataFrame,
    metadata: ModelMetadata,
    name: str,
    config: Config,
    *,
    run: str = "",
    data_sha256: str = "",
) -> Drift:
    """Return the drift report of ``current`` against the data profile stored in a model's metadata."""
    profile = metadata.profile
    if not {"numeric", "categorical"} <= set(profile):
        raise ModelError(f"{name}: model metadata has no data profile (expected 'profile' from train)")
    kinds: dict[str, str] = {f.name: f.type for f in metadata.features}
    features = compare(current, profile, kinds, config.drift)
    missing = _missing(kinds, current, profile)
    return drift_report(features, config.drift, name, "profile", missing, run, data_sha256)


def drift_columns(config: Config, current: pd.DataFrame, reference: pd.DataFrame) -> list[ColumnSchema | str]:
    """Return the features to compare: schema features, else the columns of the reference (minus target, ids)."""
    if config.feature_columns:
        return [c for c in config.schema.columns if c.name in set(config.feature_columns)]
    skip = {config.data.target, *config.data.id_columns}
    return [str(c) for c in reference.columns if c not in skip]


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
    """Return the drift profile of ``frame``: bins per numeric column, frequencies otherwise.

    ``{"numeric": {col: {"edges": [...], "fractions": [...]}}, "categorical": {col: {value: fraction}}}``;
    a numeric column with at most ``bins`` distinct values is profiled by value
    (``{"values": [...], "fractions": [...]}``); columns absent from ``frame`` are left out.
    """
    numeric: dict[str, dict[str, list[float]]] = {}
    categorical: dict[str, dict[str, float]] = {}
    for name, kind in column_kinds(columns, frame).items():
        if name not in frame.columns:
            continue
        if kind == "numeric":
            values = numeric_values(frame[name])
            distinct, counts = np.unique(values, return_counts=True)
            if 0 < distinct.size <= bins:
                numeric[name] = {"values": distinct.tolist(), "fractions": (counts / values.size).tolist()}
            else:
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

    KS runs on (binned, not value-profiled) numeric features only when the raw ``reference`` rows are given.
    """
    results = []
    for name, kind in kinds.items():
        if name not in current.columns:
            continue
        ks_stat: float | None = None
        ks_p: float | None = None
        value: float | None = None
        unseen: dict[str, float] = {}
        entry = profile["numeric" if kind == "numeric" else "categorical"].get(name)
        if entry is None:
            continue
        if kind == "numeric" and "values" in entry:
            values = numeric_values(current[name])
            expected = {category_key(v): f for v, f in zip(entry["values"], entry["fractions"], strict=True)}
            actual = category_fractions(pd.Series(values))
            value, unseen = category_psi(expected, actual), unseen_shares(expected, actual)
        elif kind == "numeric":
            values = numeric_values(current[name])
            edges = np.asarray(entry["edges"], dtype=float)
            fractions = np.asarray(entry["fractions"], dtype=float)
            value = psi(fractions, bin_fractions(values, edges)) if edges.size else None
            if reference is not None and name in reference.columns:
                ks_stat, ks_p = ks_test(numeric_values(reference[name]), values)
        else:
            actual = category_fractions(current[name], boolean=kind == "boolean")
            value = category_psi(entry, actual) if entry else None
            unseen = unseen_shares(entry, actual)
        drifted = is_drifted(value, ks_stat, ks_p, limits) or sum(unseen.values()) > limits.max_unseen_share
        results.append(FeatureDrift(name, kind, value, ks_stat, ks_p, unseen, drifted))
    return results


def unseen_shares(expected: dict[str, float], actual: dict[str, float]) -> dict[str, float]:
    """Return ``{category: share}`` of the current categories the reference never had."""
    return {key: share for key, share in actual.items() if key not in expected}


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
    features: Sequence[FeatureDrift],
    limits: DriftConfig,
    reference: str,
    source: str,
    missing: list[str],
    run: str,
    data_sha256: str,
) -> Drift:
    """Return the ``drift.json`` record: an error when anything was not compared, else passed or failed."""
    drifted = tuple(f.feature for f in features if f.drifted)
    if missing:
        status = Status.ERROR
    else:
        status = Status.PASSED if len(drifted) <= limits.max_drifted_features else Status.FAILED
    return Drift(
        run=run,
        data_sha256=data_sha256,
        reference=reference,
        source="csv" if source == "csv" else "profile",
        status=status,
        features=tuple(features),
        drifted=drifted,
        missing=tuple(missing),
        passed=status is Status.PASSED,
        limits=DriftLimits(
            psi_limit=limits.psi_limit,
            ks_statistic_limit=limits.ks_statistic_limit,
            ks_pvalue_limit=limits.ks_pvalue_limit,
            max_drifted_features=limits.max_drifted_features,
            max_unseen_share=limits.max_unseen_share,
            bins=limits.bins,
        ),
    )


def failure_summary(report: Drift, path: str) -> str:
    """Return the one-line reason the drift check did not pass."""
    if report.status is Status.ERROR:
        compared = len(report.features)
        return (
            f"drift check could not compare {len(report.missing)} of {compared + len(report.missing)} features "
            f"({', '.join(report.missing)}): absent from the table or from the reference {report.reference}"
        )
    drifted = report.drifted
    return (
        f"drift check failed: {len(drifted)} drifted feature(s) ({', '.join(drifted)}), "
        f"limit {report.limits.max_drifted_features} (psi > {report.limits.psi_limit}, KS beyond its limits "
        f"or unseen categories over {report.limits.max_unseen_share:.0%}; see {path})"
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

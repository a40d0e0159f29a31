"""Compare a table with a reference (a CSV, or a model's data profile): PSI per feature, KS for numerics.

    python -m pipeline drift --config configs/pipeline.toml --reference data/churn_reference.csv --out out

PSI uses the reference's quantile bins for numeric features and value frequencies for
categorical and boolean ones (an empty bin counts as a small epsilon). The two-sample KS
test runs on numeric features when the raw reference rows are available (``--reference``),
not against a model's stored profile (``--model DIR``, PSI only). A feature drifts when
PSI > drift.psi_limit, or when the KS statistic > drift.ks_statistic_limit with
p < drift.ks_pvalue_limit; the check fails when more than drift.max_drifted_features
drift. Nulls are left out of both measures (validate checks null fractions). Features are
the schema's columns minus target and ids. Writes ``OUT/drift.json``; exit 1 on failure.
Without --reference or --model, drift.reference from the config is used.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.files import write_json_atomic
from pipeline.config import ColumnSchema, Config, DriftConfig, load_config
from pipeline.errors import CheckFailed, DataError, ModelError
from pipeline.tables import read_table

DRIFT_FILE = "drift.json"
EPSILON = 1e-4  # stands in for an empty bin's fraction so PSI stays finite
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})


@dataclass(frozen=True)
class FeatureDrift:
    """Drift measures of one feature."""

    feature: str
    kind: str
    psi: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    drifted: bool


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``drift`` options."""
    parser.add_argument("--data", type=Path, help="table to check (default: data.path from the config)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--reference", type=Path, help="reference table (CSV or Parquet); enables KS")
    source.add_argument("--model", type=Path, help="model artefact dir: compare with its stored profile")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default out)")


def run(args: argparse.Namespace) -> int:
    """Measure drift, write ``OUT/drift.json``; exit 1 when too many features drifted."""
    config = load_config(args.config)
    data_path = Path(args.data) if args.data else Path(config.data.path)
    current = read_table(data_path, None if args.data else config.data.format)
    if args.model is not None:
        report = drift_from_model(current, Path(args.model), config)
    else:
        reference = args.reference or config.drift.reference
        if reference is None:
            raise DataError("no reference: pass --reference CSV or --model DIR, or set drift.reference")
        report = drift_from_reference(current, Path(reference), config)
    out = Path(args.out) / DRIFT_FILE
    write_json_atomic(out, report)
    print(format_report(report))
    if not report["passed"]:
        raise CheckFailed(failure_summary(report, out))
    print(f"drift within limits; wrote {out}")
    return 0


def drift_from_reference(current: pd.DataFrame, path: Path, config: Config) -> dict[str, Any]:
    """Return the drift report of ``current`` against the reference table at ``path``."""
    reference = read_table(path)
    columns = drift_columns(config, current, reference)
    kinds = column_kinds(columns, reference)
    profile = data_profile(reference, columns, config.drift.bins)
    features = compare(current, profile, kinds, config.drift, reference)
    return drift_report(features, config.drift, str(path), "csv", _missing(kinds, current, profile))


def drift_from_model(current: pd.DataFrame, directory: Path, config: Config) -> dict[str, Any]:
    """Return the drift report of ``current`` against the profile stored in a model artefact."""
    from model.artifact import read_metadata  # imports joblib and sklearn: only for --model

    metadata = read_metadata(directory)
    profile = metadata.get("profile")
    if not isinstance(profile, dict) or not {"numeric", "categorical"} <= set(profile):
        raise ModelError(f"{directory}: model metadata has no data profile (expected 'profile' from train)")
    types = {str(f.get("name")): f.get("type") for f in metadata.get("features") or [] if isinstance(f, dict)}
    kinds: dict[str, str] = {}
    for name in profile["numeric"]:
        kinds[name] = "numeric"
    for name in profile["categorical"]:
        kinds[name] = "boolean" if types.get(name) == "boolean" else "categorical"
    features = compare(current, profile, kinds, config.drift)
    return drift_report(features, config.drift, str(directory), "profile", _missing(kinds, current, profile))


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
) -> dict[str, Any]:
    """Return the ``drift.json`` payload."""
    drifted = [f.feature for f in features if f.drifted]
    return {
        "reference": reference,
        "source": source,
        "features": [asdict(f) for f in features],
        "drifted": drifted,
        "missing": missing,
        "passed": len(drifted) <= limits.max_drifted_features,
        "limits": {
            "psi_limit": limits.psi_limit,
            "ks_statistic_limit": limits.ks_statistic_limit,
            "ks_pvalue_limit": limits.ks_pvalue_limit,
            "max_drifted_features": limits.max_drifted_features,
            "bins": limits.bins,
        },
    }


def format_report(report: dict[str, Any]) -> str:
    """Return the drift table printed on stdout."""
    lines = [f"drift against {report['reference']} ({report['source']})"]
    lines.append(f"{'feature':<24} {'kind':<12} {'PSI':>8} {'KS stat':>8} {'KS p':>10}  drifted")
    for f in report["features"]:
        lines.append(
            f"{f['feature']:<24} {f['kind']:<12} {_num(f['psi'], '8.4f')} {_num(f['ks_statistic'], '8.4f')} "
            f"{_num(f['ks_pvalue'], '10.2e')}  {'YES' if f['drifted'] else 'no'}"
        )
    if report["missing"]:
        lines.append(f"missing from the table or the reference, not compared: {', '.join(report['missing'])}")
    return "\n".join(lines)


def failure_summary(report: dict[str, Any], path: Path) -> str:
    """Return the one-line reason the drift check failed."""
    drifted = report["drifted"]
    limit = report["limits"]["max_drifted_features"]
    return (
        f"drift check failed: {len(drifted)} drifted feature(s) ({', '.join(drifted)}), "
        f"limit {limit} (psi > {report['limits']['psi_limit']} or KS beyond its limits; see {path})"
    )


def numeric_values(series: pd.Series) -> np.ndarray:
    """Return the finite values of a column as floats (nulls, infinities and text left out)."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return values[np.isfinite(values)]


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


def category_key(value: Any) -> str:
    """Return the text a category is compared by: ``1.0`` and ``1`` agree, booleans are true/false."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def boolean_key(value: Any) -> str:
    """Return ``true``/``false`` for a value spelled as a boolean (yes/no, 1/0, ...), else its category key."""
    key = category_key(value).strip().lower()
    if key in TRUE_WORDS:
        return "true"
    if key in FALSE_WORDS:
        return "false"
    return category_key(value)


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


def _num(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0])
    return f"{value:{spec}}" if value is not None else f"{'-':>{width}}"

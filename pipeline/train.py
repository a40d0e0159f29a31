"""Fit the configured model on a seeded sample and write the artefact directory and held-out rows.

    python -m pipeline train --config configs/pipeline.toml --out out

Reads the table (``data.path``, or ``--data``), drops rows whose target is null and
the id columns, samples ``training.sample_rows`` rows (stratified for classification
when ``training.stratify``; ``--full`` or 0 uses every row), holds out
``training.test_fraction`` of them and fits the ``[model]`` pipeline on the rest.
Writes ``OUT/model/`` (model.joblib + metadata.json, with a data profile for drift
checks) and ``OUT/holdout.parquet`` (the held-out rows with ids and target). Same
inputs give the same model file (sha256).

Features are the schema's columns minus the target and the id columns. A table
column the schema does not list is an error, unless ``schema.allow_unexpected_columns``
is true, in which case it is ignored with a note (the same rule ``validate`` applies).
Everything is checked and fitted before anything is written; a failing train leaves
``OUT`` as it was.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from model.artifact import save_artifact
from model.estimator import build_pipeline, estimator_class
from model.files import write_bytes_atomic
from pipeline.config import ColumnSchema, Config, load_config
from pipeline.drift import data_profile
from pipeline.errors import ConfigError, DataError
from pipeline.tables import file_hash, read_table

MODEL_DIR = "model"
HOLDOUT_FILE = "holdout.parquet"
# Config sections that shape the artefact (the drift section sets the profile's bins).
CONFIG_SECTIONS = ("data", "schema", "model", "training", "drift")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


@dataclass(frozen=True)
class Prepared:
    """A table ready to fit: usable rows, feature list and labels."""

    frame: pd.DataFrame
    features: tuple[tuple[str, str], ...]
    labels: tuple[Any, ...] | None
    positive_label: Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options."""
    parser.add_argument("--data", type=Path, help="table to train on (default: data.path from the config)")
    parser.add_argument(
        "--full", action="store_true", help="train on every row, ignoring training.sample_rows"
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="artefact directory (default out)")


def run(args: argparse.Namespace) -> int:
    """Train, then write ``OUT/model`` and ``OUT/holdout.parquet``."""
    config = load_config(args.config)
    data_path = Path(args.data) if args.data else Path(config.data.path)
    started = time.perf_counter()
    table = read_table(data_path, config.data.format if args.data is None else None)
    note(f"read {len(table)} rows x {table.shape[1]} columns from {data_path}")
    prepared = prepare(table, config)
    sample_rows = 0 if args.full else config.training.sample_rows
    sample = sample_frame(prepared.frame, config, sample_rows)
    train, holdout = split_frame(sample, config)
    note(
        f"split: {len(train)} train rows, {len(holdout)} held-out rows (test_fraction {config.training.test_fraction})"
    )
    fitted, seconds = fit(train, prepared.features, config)
    note(f"fitted {config.model.kind} in {seconds:.2f} s")
    names = [name for name, _ in prepared.features]
    metadata = {
        "task": config.data.task,
        "target": config.data.target,
        "labels": list(prepared.labels) if prepared.labels is not None else None,
        "positive_label": prepared.positive_label,
        "features": feature_metadata(prepared.features, config),
        "id_columns": list(config.data.id_columns),
        "kind": config.model.kind,
        "params": dict(config.model.params),
        "data_sha256": file_hash(data_path),
        "config_sha256": config.section_hash(*CONFIG_SECTIONS),
        "git_commit": git_commit(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "seed": config.training.seed,
        "profile": data_profile(train[names], schema_columns(names, config), config.drift.bins),
    }
    if prepared.labels is not None and list(map(_plain, fitted.classes_)) != list(prepared.labels):
        raise DataError(
            f"estimator classes {list(fitted.classes_)} differ from the target labels {prepared.labels}"
        )
    saved = write_outputs(Path(args.out), fitted, metadata, holdout)
    note(
        f"wrote {Path(args.out) / MODEL_DIR} (model sha256 {saved['model_sha256'][:12]}) and "
        f"{Path(args.out) / HOLDOUT_FILE} in {time.perf_counter() - started:.2f} s total"
    )
    return 0


def prepare(table: pd.DataFrame, config: Config) -> Prepared:
    """Check the target and features; return usable rows with typed feature columns."""
    target = config.data.target
    task = config.data.task
    if target not in table.columns:
        raise DataError(
            f"target column '{target}' not found; table columns: {', '.join(map(str, table.columns))}"
        )
    nulls = int(table[target].isna().sum())
    if nulls == len(table):
        raise DataError(f"target column '{target}' is null in all {len(table)} rows")
    frame = table
    if nulls:
        note(f"dropped {nulls} rows with a null target '{target}'")
        frame = table.loc[table[target].notna()]
    frame = frame.reset_index(drop=True)
    features = feature_list(frame, config)
    frame = frame.copy()
    frame[target] = clean_target(frame[target], task, target)
    for name, kind in features:
        frame[name] = coerce_column(frame[name], name, kind)
    labels: tuple[Any, ...] | None = None
    positive: Any = None
    if task == "classification":
        try:
            labels = tuple(_plain(v) for v in np.unique(frame[target].to_numpy()))
        except TypeError:
            raise DataError(
                f"target '{target}' mixes value types (e.g. numbers and text); use one type"
            ) from None
        if len(labels) < 2:
            raise DataError(
                f"target '{target}' has a single class {labels[0]!r}; classification needs at least two"
            )
        positive = resolve_positive(labels, config.data.positive_label, target)
    return Prepared(frame=frame, features=features, labels=labels, positive_label=positive)


def feature_list(frame: pd.DataFrame, config: Config) -> tuple[tuple[str, str], ...]:
    """Return ``(name, type)`` of the features: schema columns minus target and ids."""
    names = config.feature_columns
    if not names:
        raise ConfigError(
            "the schema lists no feature columns besides the target and ids; "
            "add [schema.columns.*] (python -m pipeline schema infer DATA --target COL prints them)"
        )
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise DataError(f"feature column(s) in the schema but not in the table: {', '.join(missing)}")
    known = {*names, config.data.target, *config.data.id_columns}
    extra = [str(c) for c in frame.columns if c not in known]
    if extra and not config.schema.allow_unexpected_columns:
        raise DataError(
            f"column(s) not in the schema: {', '.join(extra)}; add them to [schema.columns] "
            "or set schema.allow_unexpected_columns = true to ignore them"
        )
    if extra:
        note(f"ignoring column(s) not in the schema: {', '.join(extra)}")
    result = []
    for name in names:
        column = config.schema.column(name)
        assert column is not None  # feature_columns come from the schema
        result.append((name, column.type))
    return tuple(result)


def clean_target(values: pd.Series, task: str, name: str) -> pd.Series:
    """Return the target as numbers for regression; integral floats as ints for classification."""
    if task == "regression":
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values[numbers.isna()]
        if len(bad):
            raise DataError(f"regression target '{name}' has non-numeric value {bad.iloc[0]!r}")
        return numbers.astype(float)
    if pd.api.types.is_float_dtype(values):
        if not np.all(np.mod(values.to_numpy(), 1) == 0):
            raise DataError(
                f"classification target '{name}' has non-integer numbers (e.g. {values.iloc[0]!r}); "
                "set data.task = 'regression' for a numeric target"
            )
        return values.astype("int64")
    return values


def coerce_column(values: pd.Series, name: str, kind: str) -> pd.Series:
    """Return a feature column in the dtype its schema type needs, or raise naming a bad value."""
    if kind == "numeric":
        if pd.api.types.is_bool_dtype(values):
            return values.astype(float)
        if pd.api.types.is_numeric_dtype(values):
            return values
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values[numbers.isna() & values.notna()]
        if len(bad):
            raise DataError(f"numeric column '{name}' has non-numeric value {bad.iloc[0]!r}")
        return numbers
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            return values
        return values.map(lambda v: _to_bool(v, name)).astype(float)
    return values


def _to_bool(value: Any, name: str) -> float:
    if value is None or pd.isna(value):
        return float("nan")
    if isinstance(value, bool | np.bool_):
        return float(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    raise DataError(f"boolean column '{name}' has value {value!r}, expected true/false, yes/no or 1/0")


def resolve_positive(labels: Sequence[Any], configured: Any, target: str) -> Any:
    """Return the positive label for a binary target (as spelled in ``labels``), None otherwise."""
    if len(labels) != 2:
        return None
    if configured is None:
        return labels[-1]
    for label in labels:
        if label == configured:
            return label
    raise DataError(
        f"data.positive_label {configured!r} is not a value of target '{target}' "
        f"(labels: {', '.join(repr(v) for v in labels)})"
    )


def sample_frame(frame: pd.DataFrame, config: Config, rows: int) -> pd.DataFrame:
    """Return ``rows`` rows drawn with the seed (stratified when configured); all rows when 0 or more."""
    if rows == 0 or rows >= len(frame):
        note(f"using all {len(frame)} rows")
        return frame
    stratify = _stratify(frame, config)
    try:
        sample, _ = train_test_split(
            frame, train_size=rows, random_state=config.training.seed, stratify=stratify, shuffle=True
        )
    except ValueError as exc:
        raise DataError(f"cannot sample {rows} of {len(frame)} rows: {_first_line(exc)}") from None
    note(f"sampled {rows} of {len(frame)} rows" + (" (stratified)" if stratify is not None else ""))
    return sample.reset_index(drop=True)


def split_frame(frame: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(train, holdout)`` split with the configured fraction, seed and stratification."""
    try:
        train, holdout = train_test_split(
            frame,
            test_size=config.training.test_fraction,
            random_state=config.training.seed,
            stratify=_stratify(frame, config),
            shuffle=True,
        )
    except ValueError as exc:
        raise DataError(
            f"cannot hold out {config.training.test_fraction} of {len(frame)} rows: {_first_line(exc)}"
        ) from None
    if config.data.task == "classification" and train[config.data.target].nunique() < 2:
        raise DataError(f"the training split of {len(train)} rows has a single class; use more rows")
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def _stratify(frame: pd.DataFrame, config: Config) -> pd.Series | None:
    if config.data.task == "classification" and config.training.stratify:
        return frame[config.data.target]
    return None


def fit(train: pd.DataFrame, features: Sequence[tuple[str, str]], config: Config) -> tuple[Pipeline, float]:
    """Build the configured pipeline and fit it; bad kinds and params are :class:`ConfigError`."""
    kind, task, params = config.model.kind, config.data.task, dict(config.model.params)
    try:
        cls = estimator_class(kind, task)
    except ValueError as exc:
        raise ConfigError(f"model.kind: {exc}") from None
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(
            f"model.params: unknown parameter(s) {', '.join(unknown)} for {cls.__name__} "
            f"(valid: {', '.join(sorted(valid))})"
        )
    try:
        pipeline = build_pipeline(features, kind, task, params, random_state=config.training.seed)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model.params: {_first_line(exc)}") from None
    names = [name for name, _ in features]
    started = time.perf_counter()
    try:
        pipeline.fit(train[names], train[config.data.target])
    except (ValueError, TypeError) as exc:
        # sklearn's InvalidParameterError (a ValueError) names the parameter; it lives in a private module.
        if type(exc).__name__ == "InvalidParameterError":
            raise ConfigError(f"model.params: {_first_line(exc)}") from None
        raise ConfigError(f"fitting {kind} failed ({_first_line(exc)}); check model.params") from None
    return pipeline, time.perf_counter() - started


def schema_columns(names: Sequence[str], config: Config) -> list[ColumnSchema]:
    """Return the schema entries of ``names`` (all features come from the schema)."""
    columns = [config.schema.column(name) for name in names]
    return [column for column in columns if column is not None]


def feature_metadata(features: Sequence[tuple[str, str]], config: Config) -> list[dict[str, Any]]:
    """Return the feature schema stored in the artefact (serving validates requests with it)."""
    result = []
    for name, kind in features:
        column = config.schema.column(name)
        assert column is not None
        result.append(
            {
                "name": name,
                "type": kind,
                "allowed": list(column.allowed) if column.allowed is not None else None,
                "min": column.min,
                "max": column.max,
                "nullable": column.nullable,
            }
        )
    return result


def write_outputs(
    out: Path, fitted: Pipeline, metadata: dict[str, Any], holdout: pd.DataFrame
) -> dict[str, Any]:
    """Write the artefact, then the held-out rows; return the saved metadata.

    The two files must never form a mismatched pair, so a stale ``holdout.parquet`` is
    removed first, the model directory is swapped in atomically, and the new held-out
    rows are renamed into place last. A crash in between leaves a model without
    held-out rows (evaluate then fails naming the missing file), never a model
    next to another run's rows.
    """
    buffer = io.BytesIO()
    holdout.to_parquet(buffer, index=False)
    stale = out / HOLDOUT_FILE
    stale.unlink(missing_ok=True)
    saved = save_artifact(out / MODEL_DIR, fitted, metadata)
    write_bytes_atomic(out / HOLDOUT_FILE, buffer.getvalue())
    return saved


def git_commit() -> str | None:
    """Return ``$GIT_COMMIT``, else ``git rev-parse HEAD`` inside a work tree, else None."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def note(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"train: {message}", file=sys.stderr)


def _plain(value: Any) -> Any:
    """Return numpy scalars as Python scalars (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

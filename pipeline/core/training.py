"""Fitting the configured model: estimator kind and params checked, the pipeline fitted, the
feature schema that the artefact records (and serving validates requests with)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from model.estimator import build_pipeline, estimator_class, kind_names
from model.records import Feature
from pipeline.config import Config
from pipeline.core import factory
from pipeline.core.metrics import DEFAULT_METRIC, lookup
from pipeline.errors import ConfigError, first_line


def estimator_for(config: Config, root: Path) -> type:
    """Return the configured estimator class after checking ``model.kind`` and the names in ``model.params``.

    With ``model.factory`` the team's function is called (``root``: the project's root) and its
    estimator checked: a classifier must give class probabilities (``predict_proba``).
    """
    model, task = config.model, config.data.task
    if model.factory is not None:
        built = factory.build_estimator(model.factory, root, config_features(config), task, model.params)
        if task == "classification" and not factory.has_proba(built):
            scored = proba_metrics(config)
            why = f"{', '.join(scored)} score(s) probabilities and " if scored else ""
            raise ConfigError(
                f"model.factory: {model.factory} returned {type(built).__name__}, which has no predict_proba; "
                f"{why}the server answers with class probabilities: return a classifier that has it"
            )
        return type(built)
    known = kind_names(task)  # another kind's table is checked by its estimator when it is chosen
    for other in model.kinds:
        if other not in known:
            raise ConfigError(
                f"model.kinds.{other}: unknown model kind {other!r} for {task}, expected one of: {', '.join(known)}"
            )
    try:
        cls = estimator_class(model.kind, task)
    except ValueError as exc:
        raise ConfigError(f"model.kind: {exc}") from None
    valid = cls().get_params()
    unknown = sorted(set(model.chosen_params) - set(valid))
    if unknown:
        raise ConfigError(
            f"{model.params_key}: unknown parameter(s) {', '.join(unknown)} for {cls.__name__} "
            f"(valid: {', '.join(sorted(valid))})"
        )
    return cls


def proba_metrics(config: Config) -> list[str]:
    """Return the metrics the gates score that need class probabilities (the champion's by default)."""
    gates, task = config.gates, config.data.task
    names = [gate.metric for gate in gates.metric]
    names += [gates.champion.metric or DEFAULT_METRIC[task], gates.slices.metric or ""]
    return sorted({name for name in names if name and lookup(name, task).needs_proba})


def config_features(config: Config) -> list[tuple[str, str]]:
    """Return the feature columns and their schema types, in schema order."""
    return [(name, column.type) for name in config.feature_columns if (column := config.schema.column(name))]


def fit(
    train: pd.DataFrame, features: Sequence[tuple[str, str]], config: Config, root: Path
) -> tuple[Any, float]:
    """Build the configured pipeline (or the team's, from ``model.factory`` under ``root``) and fit it;
    return it and the seconds it took.

    Bad kinds and params are :class:`ConfigError` naming them.
    """
    kind, task = config.model.name, config.data.task
    if config.model.factory is not None:
        pipeline = factory.build_estimator(config.model.factory, root, features, task, config.model.params)
    else:
        estimator_for(config, root)
        try:
            pipeline = build_pipeline(
                features, kind, task, config.model.chosen_params, random_state=config.training.seed
            )
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{config.model.params_key}: {first_line(exc)}") from None
    names = [name for name, _ in features]
    started = time.perf_counter()
    try:
        pipeline.fit(train[names], train[config.data.target])
    except (ValueError, TypeError) as exc:
        # sklearn's InvalidParameterError (a ValueError) names the parameter; it lives in a private module.
        if type(exc).__name__ == "InvalidParameterError":
            raise ConfigError(f"{config.model.params_key}: {first_line(exc)}") from None
        raise ConfigError(
            f"fitting {kind} failed ({first_line(exc)}); check {config.model.params_key}"
        ) from None
    except Exception as exc:
        if config.model.factory is None:
            raise
        # the team's estimator: whatever its code raised is one line naming the factory
        raise ConfigError(
            f"model.factory: fitting the estimator of {config.model.factory} failed "
            f"({type(exc).__name__}: {first_line(exc)})"
        ) from None
    return pipeline, time.perf_counter() - started


def feature_schema(features: Sequence[tuple[str, str]], config: Config) -> tuple[Feature, ...]:
    """Return the feature schema stored in the artefact, from the config's column expectations."""
    result = []
    for name, _ in features:
        column = config.schema.column(name)
        if column is None:
            raise ConfigError(f"feature '{name}' has no [schema.columns.{name}] entry")
        result.append(Feature(name, column.type, column.allowed, column.min, column.max, column.nullable))
    return tuple(result)

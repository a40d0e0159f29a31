"""Fitting the configured model: estimator kind and params checked, the pipeline fitted, the
feature schema that the artefact records (and serving validates requests with)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from model.estimator import build_pipeline, estimator_class, kind_names
from model.records import Feature
from pipeline.config import Config
from pipeline.errors import ConfigError, first_line


def estimator_for(config: Config) -> type:
    """Return the configured estimator class after checking ``model.kind`` and the names in ``model.params``."""
    model, task = config.model, config.data.task
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


def fit(train: pd.DataFrame, features: Sequence[tuple[str, str]], config: Config) -> tuple[Any, float]:
    """Build the configured pipeline and fit it; return it and the seconds it took.

    Bad kinds and params are :class:`ConfigError` naming them.
    """
    kind, task = config.model.kind, config.data.task
    estimator_for(config)
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

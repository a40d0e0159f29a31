"""Estimator factory: the preprocessing + estimator ``Pipeline`` for a kind named in config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ESTIMATORS: dict[str, dict[str, type]] = {
    "classification": {
        "logistic_regression": LogisticRegression,
        "random_forest": RandomForestClassifier,
        "hist_gradient_boosting": HistGradientBoostingClassifier,
        "dummy": DummyClassifier,
    },
    "regression": {
        "linear_regression": LinearRegression,
        "ridge": Ridge,
        "random_forest": RandomForestRegressor,
        "hist_gradient_boosting": HistGradientBoostingRegressor,
        "dummy": DummyRegressor,
    },
}

NUMERIC_TYPES = frozenset({"numeric", "boolean"})


def estimator_class(kind: str, task: str) -> type:
    """Return the estimator class for ``kind`` and ``task``, or raise ``ValueError`` naming both."""
    kinds = ESTIMATORS.get(task)
    if kinds is None:
        raise ValueError(f"unknown task {task!r}, expected one of: {', '.join(ESTIMATORS)}")
    if kind not in kinds:
        raise ValueError(f"unknown model kind {kind!r} for {task}, expected one of: {', '.join(kinds)}")
    return kinds[kind]


def build_pipeline(
    features: Sequence[tuple[str, str]],
    kind: str,
    task: str,
    params: Mapping[str, Any] | None = None,
    random_state: int = 0,
) -> Pipeline:
    """Return an unfitted pipeline: impute, scale numerics, one-hot categoricals, then the estimator.

    ``features`` is a sequence of ``(column, type)`` with type numeric, boolean or
    categorical; booleans are treated as 0/1 numbers. Unknown categories at predict
    time are ignored. ``params`` go to the estimator; scikit-learn validates them in
    ``fit`` (``set_params`` rejects unknown names here).
    """
    cls = estimator_class(kind, task)
    estimator = cls()
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=random_state)
    if params:
        estimator.set_params(**dict(params))
    numeric = [name for name, kind_ in features if kind_ in NUMERIC_TYPES]
    categorical = [name for name, kind_ in features if kind_ not in NUMERIC_TYPES]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)
        )
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(
            ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"), encoder), categorical)
        )
    return Pipeline([("preprocess", ColumnTransformer(transformers)), ("estimator", estimator)])

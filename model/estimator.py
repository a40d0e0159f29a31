"""Estimator factory: the preprocessing + estimator ``Pipeline`` for a kind named in config.

The pipeline is shaped so that skl2onnx converts it (``pipeline/core/compile.py``) and ONNX
Runtime reproduces it: categorical values become their category text first (``CategoryText``,
``model/inputs.py``), so the imputer sees missing values as ``""`` (skl2onnx's string imputer
needs a string marker) and the encoder compares text, as the ONNX graph does. Numbers are
standardised for the linear models only: tree thresholds can sit exactly on a scaled value, and
ONNX scales in float32 where scikit-learn scales in float64, so a scaler before a tree would flip
branches (and it does nothing for a tree's quality). HistGradientBoosting does not convert with
skl2onnx 1.20.0 and protobuf 7 (``Field onnx.AttributeProto.ints: Expected an int, got a
boolean``); it is served by scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
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

from model.boosted import BOOST_EXTRA, BOOSTED, BOOSTED_DEFAULTS
from model.inputs import MISSING_CATEGORY, category_text

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
SCALED_KINDS = frozenset({"logistic_regression", "linear_regression", "ridge"})  # scale-sensitive


class CategoryText(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Categorical columns as model input text: each value's category key, ``""`` for a missing one.

    Its ONNX form is the identity: the server feeds ONNX that text already (``model/inputs.py``).
    """

    def fit(self, X: Any, y: Any = None) -> CategoryText:
        """Learn nothing (the mapping is fixed); return self."""
        self.n_features_in_ = np.shape(X)[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return an object array of text, one column per input column."""
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        out = np.empty(frame.shape, dtype=object)
        for j in range(frame.shape[1]):
            codes, uniques = pd.factorize(frame.iloc[:, j], use_na_sentinel=True)
            texts = np.array([category_text(u) for u in uniques] + [MISSING_CATEGORY], dtype=object)
            out[:, j] = texts[codes]  # code -1 (missing) takes the last entry
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Return the input column names: one output column per input column."""
        return np.asarray(input_features, dtype=object)


def kind_names(task: str) -> tuple[str, ...]:
    """Return the kinds ``task`` offers, the optional ones included (nothing is imported)."""
    return (*ESTIMATORS.get(task, {}), *BOOSTED)


def estimator_class(kind: str, task: str) -> type:
    """Return the estimator class for ``kind`` and ``task``, or raise ``ValueError`` naming both."""
    kinds = ESTIMATORS.get(task)
    if kinds is None:
        raise ValueError(f"unknown task {task!r}, expected one of: {', '.join(ESTIMATORS)}")
    if kind in BOOSTED:
        from model.boosted import estimator

        try:
            return estimator(kind, task)
        except ImportError as exc:
            raise ValueError(
                f"model kind {kind!r} needs the {exc.name or kind} package, an optional extra: "
                f"pip install '{BOOST_EXTRA}'"
            ) from None
    if kind not in kinds:
        known = ", ".join(kind_names(task))
        raise ValueError(f"unknown model kind {kind!r} for {task}, expected one of: {known}")
    return kinds[kind]


def build_pipeline(
    features: Sequence[tuple[str, str]],
    kind: str,
    task: str,
    params: Mapping[str, Any] | None = None,
    random_state: int = 0,
) -> Pipeline:
    """Return an unfitted pipeline: impute (and for linear models scale) numerics, one-hot categoricals.

    ``features`` is a sequence of ``(column, type)`` with type numeric, boolean or
    categorical; booleans are treated as 0/1 numbers. Unknown categories at predict
    time are ignored. ``params`` go to the estimator; scikit-learn validates them in
    ``fit`` (``set_params`` rejects unknown names here).
    """
    cls = estimator_class(kind, task)
    estimator = cls(**BOOSTED_DEFAULTS.get(kind, {}))
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=random_state)
    if params:
        estimator.set_params(**dict(params))
    numeric = [name for name, kind_ in features if kind_ in NUMERIC_TYPES]
    categorical = [name for name, kind_ in features if kind_ not in NUMERIC_TYPES]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[Any] = [SimpleImputer(strategy="median")]
        if kind in SCALED_KINDS:
            steps.append(StandardScaler())
        transformers.append(("numeric", make_pipeline(*steps), numeric))
    if categorical:
        imputer = SimpleImputer(strategy="most_frequent", missing_values=MISSING_CATEGORY)
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(("categorical", make_pipeline(CategoryText(), imputer, encoder), categorical))
    return Pipeline([("preprocess", ColumnTransformer(transformers)), ("estimator", estimator)])

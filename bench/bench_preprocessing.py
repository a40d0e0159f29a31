"""Model quality before and after the preprocessing was shaped for ONNX (model/estimator.py).

    .venv/bin/python bench/bench_preprocessing.py

Before: categorical values imputed as they come (``SimpleImputer(most_frequent)`` on raw values,
which skl2onnx refuses) and every model's numbers standardised. After: the shipped pipeline
(category text with ``""`` for missing, imputed as a string; no scaler before trees). Both fit
the same rows of each table and are scored on the same held-out rows (a seeded 25% split): the
bundled churn table and scikit-learn's breast_cancer, wine and diabetes shaped as users have
them (``tests/conftest.py``). Prints one line per table and model kind with both scores.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from model.estimator import build_pipeline, estimator_class  # noqa: E402
from pipeline.core.synth import churn_frame  # noqa: E402
from tests.conftest import diabetes_table, realistic_cancer, wine_table  # noqa: E402

TABLES = {
    "churn": (lambda: churn_frame(4000, 0).drop(columns=["customer_id"]), "churned", "classification"),
    "breast_cancer": (lambda: realistic_cancer().drop(columns=["patient_id"]), "diagnosis", "classification"),
    "wine": (wine_table, "cultivar", "classification"),
    "diabetes": (diabetes_table, "target", "regression"),
}
KINDS = {"classification": ("logistic_regression", "random_forest"), "regression": ("ridge", "random_forest")}
PARAMS = {"logistic_regression": {"max_iter": 3000}, "random_forest": {"n_estimators": 100}, "ridge": {}}


def before(features: list[tuple[str, str]], kind: str, task: str) -> Pipeline:
    """The earlier shape: raw categoricals imputed by most frequent value, every model scaled."""
    numeric = [n for n, t in features if t != "categorical"]
    categorical = [n for n, t in features if t == "categorical"]
    steps: list[tuple[str, Any, list[str]]] = [
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)
    ]
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        steps.append(
            ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"), encoder), categorical)
        )
    estimator = estimator_class(kind, task)(**PARAMS[kind])
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=0)
    return Pipeline([("preprocess", ColumnTransformer(steps)), ("estimator", estimator)])


def score(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, task: str) -> tuple[str, float]:
    if task == "regression":
        return "r2", float(r2_score(y, pipeline.predict(X)))
    if y.nunique() == 2:
        positive = sorted(y.unique())[-1]
        return "roc_auc", float(roc_auc_score(y == positive, pipeline.predict_proba(X)[:, -1]))
    return "accuracy", float(accuracy_score(y, pipeline.predict(X)))


def main() -> int:
    for table, (make, target, task) in TABLES.items():
        frame = make()
        y = frame.pop(target)
        features = [
            (c, "numeric" if pd.api.types.is_numeric_dtype(frame[c]) else "categorical")
            for c in frame.columns
        ]
        X_train, X_test, y_train, y_test = train_test_split(frame, y, test_size=0.25, random_state=0)
        for kind in KINDS[task]:
            old = before(features, kind, task).fit(X_train, y_train)
            new = build_pipeline(features, kind, task, PARAMS[kind], random_state=0).fit(X_train, y_train)
            metric, was = score(old, X_test, y_test, task)
            _, now = score(new, X_test, y_test, task)
            print(
                f"{table:14} {kind:20} {metric:9} before {was:.4f}  after {now:.4f}  change {now - was:+.4f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

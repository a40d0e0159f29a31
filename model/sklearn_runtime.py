"""The scikit-learn way of serving: the pickled pipeline fed a DataFrame of the records.

For models without an ONNX form (HistGradientBoosting, a failed parity check) and in the
scikit-learn image flavour. The records become a DataFrame with the training column order and
the dtypes pandas gives the same values read from a table (integers stay integers, nulls become
NaN), so the served predictions equal the offline model's on the same batch of rows.

Threads: every prediction runs with at most ``threads`` threads (``MODEL_THREADS``, default 1, in
``model/settings.py``) in the native thread pools the process has loaded, set by threadpoolctl:
OpenMP (HistGradientBoosting's trees; XGBoost's and LightGBM's too, whose libraries bring their
own OpenMP runtime, loaded when such a model is unpickled) and BLAS (linear models). OpenMP's
limit belongs to the calling thread, so it is set around each call, in the thread that makes it
(the server predicts in a thread pool); a model whose params fix its own thread count
(``n_jobs``, ``nthread``, ``num_threads``) keeps that number.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.artifact import load_artifact
from model.codec import plain
from model.errors import ArtifactError
from model.records import Feature, ModelMetadata
from model.settings import DEFAULT_THREADS

Predict = Callable[[Sequence[dict[str, Any]]], tuple[np.ndarray, np.ndarray | None]]


def load_sklearn(model_dir: Path, threads: int = DEFAULT_THREADS) -> tuple[Predict, ModelMetadata]:
    """Load and verify the pickled pipeline; return its predict function over records and the metadata.

    The function predicts with at most ``threads`` threads (see the module docstring).
    """
    estimator, metadata = load_artifact(model_dir)
    classifier = metadata.task == "classification"
    if classifier:
        classes = [plain(c) for c in getattr(estimator, "classes_", [])]
        if classes != metadata.label_list:
            raise ArtifactError(
                f"{model_dir}: model classes {classes} differ from the metadata labels {metadata.label_list}"
            )
        if not hasattr(estimator, "predict_proba"):
            raise ArtifactError(f"{model_dir}: classifier {type(estimator).__name__} has no predict_proba")
    features = metadata.features

    def predict(records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        return score(estimator, records_frame(records, features), with_proba=classifier)

    return capped(predict, threads), metadata


def capped(predict: Predict, threads: int) -> Predict:
    """Return ``predict`` run with at most ``threads`` threads in the native thread pools loaded now.

    The pools are found once, here (after the model is unpickled, so its libraries are loaded):
    a limit set per call through that controller costs microseconds, finding them milliseconds.
    """
    from threadpoolctl import ThreadpoolController

    pools = ThreadpoolController()

    def limited(records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        with pools.limit(limits=threads):
            return predict(records)

    return limited


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Run the block with at most ``threads`` threads in every native thread pool (in this thread).

    For a whole step of scoring in one thread (the gate); a served model has :func:`capped`.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield


def score(estimator: Any, frame: pd.DataFrame, with_proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``estimator.predict(frame)`` and, if asked, ``predict_proba(frame)``.

    For a scikit-learn ``Pipeline`` the preprocessing runs once and both calls use its
    output, exactly as ``Pipeline.predict`` and ``Pipeline.predict_proba`` would each
    compute it (the same steps on the same input), at half the cost.
    """
    final, X = estimator, frame
    steps = getattr(estimator, "steps", None)
    if steps is not None:
        for _, step in steps[:-1]:
            if step is not None and not isinstance(step, str):  # None or "passthrough" skip a step
                X = step.transform(X)
        final = steps[-1][1]
    predictions = np.asarray(final.predict(X))
    proba = np.asarray(final.predict_proba(X), dtype=float) if with_proba else None
    return predictions, proba


def records_frame(records: Sequence[dict[str, Any]], features: Sequence[Feature]) -> pd.DataFrame:
    """Return records as a DataFrame in training column order, typed as a table read would type them.

    Integers stay int64, floats float64, strings pandas' string dtype; a null becomes NaN
    (numeric and boolean columns with a null become float64, as in training).
    """
    columns: dict[str, pd.Series] = {}
    for feature in features:
        values = [record[feature.name] for record in records]
        has_null = any(v is None for v in values)
        if has_null and feature.type in {"numeric", "boolean"}:
            columns[feature.name] = pd.Series(values, dtype="float64")
        elif has_null:
            columns[feature.name] = pd.Series([np.nan if v is None else v for v in values])
        else:
            columns[feature.name] = pd.Series(values)
    return pd.DataFrame(columns, columns=[f.name for f in features])

"""XGBoost's classifier on a table's own labels: XGBoost accepts only the codes 0..n-1.

:class:`XGBLabelled` learns on codes and answers with the table's labels: ``classes_`` are the
sorted labels (the ONNX converter writes them into the graph), ``predict`` returns labels and
``predict_proba``'s columns follow ``classes_``, as every scikit-learn classifier's do. A pickled
model names this class, so a model of it loads wherever ``model/`` and xgboost are installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xgboost import XGBClassifier


class XGBLabelled(XGBClassifier):
    """XGBoost's classifier on a table's own labels (text or numbers), coded 0..n-1 only inside."""

    def fit(self, X: Any, y: Any, **kwargs: Any) -> XGBLabelled:
        """Fit on the labels' codes; remember the labels."""
        labels, codes = np.unique(np.asarray(y), return_inverse=True)
        self.__dict__.pop("labels_", None)  # while XGBoost fits, its classes are the codes
        super().fit(X, codes, **kwargs)
        self.labels_ = labels
        return self

    @property
    def classes_(self) -> np.ndarray:
        """The table's labels, sorted: the order of ``predict_proba``'s columns (the codes while fitting)."""
        labels = self.__dict__.get("labels_")
        return np.arange(self.n_classes_) if labels is None else np.asarray(labels)

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Return the label of each row (the table's, not a code)."""
        codes = np.asarray(super().predict(X, **kwargs), dtype=np.int64)
        return np.asarray(self.classes_)[codes]

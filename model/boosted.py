"""Gradient-boosted trees from XGBoost and LightGBM as ``model.kind`` (an optional extra: ``ml-cicd[boost]``).

Both sit inside the standard preprocessing (``model/estimator.py``) as the final step. LightGBM
takes a table's own labels (text included) and keeps them in ``classes_``; XGBoost's classifier
is wrapped to do the same (``model/xgb_labels.py``). The libraries are imported only when one of
these kinds is trained or a model of one is loaded: a plain install and the lean image carry
neither.
"""

from __future__ import annotations

from typing import Any

BOOSTED: tuple[str, ...] = ("xgboost", "lightgbm")
BOOST_EXTRA = "ml-cicd[boost]"  # the optional extra that installs them (requirements-boost.txt pins it)
# What a boosted kind is given unless model.params says otherwise: LightGBM logs every fit to stdout.
BOOSTED_DEFAULTS: dict[str, dict[str, Any]] = {"xgboost": {}, "lightgbm": {"verbose": -1}}


def estimator(kind: str, task: str) -> type:
    """Return the estimator class of a boosted ``kind`` for ``task``; ImportError when its library is missing."""
    if kind == "xgboost":
        if task == "classification":
            from model.xgb_labels import XGBLabelled

            return XGBLabelled
        from xgboost import XGBRegressor

        return XGBRegressor
    from lightgbm import LGBMClassifier, LGBMRegressor

    return LGBMClassifier if task == "classification" else LGBMRegressor

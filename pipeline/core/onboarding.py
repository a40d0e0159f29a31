"""A complete first config for a new table: the inferred schema plus defaults that suit its task.

``init`` writes what this returns. The choices aim at "passes on a reasonable table with no
hand edits, and on next week's data from the same source" and say why in comments: a random
forest (non-linear, needs no scaling), metric floors above the dummy baseline (a model that
ignores the features, scored on the same rows) rather than fixed ones, a champion tolerance as a
share of the champion's value, slices over a couple of low-cardinality categoricals, class-collapse
and class-balance limits below the rarest class the table has (each one loosened is named by
:func:`loosened_limits`), and drift limits measured on split halves of real tables
(``bench/bench_defaults.py``). Pure: ``pipeline/commands/init.py`` reads the table and writes the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from model.inputs import category_key
from pipeline.config import DriftConfig
from pipeline.core.power import foreseen
from pipeline.core.schema import Inferred

MAX_SLICES = 2
MAX_SLICE_VALUES = 10
SAMPLE_ROWS = 3000
TEST_FRACTION = 0.25
DEFAULT_COLLAPSE_FRACTION = 0.01  # gates.collapse.min_class_fraction unless the rarest class is rarer
# Metric floors above the dummy baseline (pipeline/core/floors.py), in the metric's units: ROC AUC and
# balanced accuracy 0.05 above the dummy's (0.5 and chance), R² 0.01 above the dummy's (about 0), so a
# model that learned nothing fails and one of a hard target that learned a little passes.
AUC_MARGIN = 0.05
R2_MARGIN = 0.01
RELATIVE_TOLERANCE = 0.01  # gates.champion.relative_tolerance: 1% of the champion's value is a tie
# A regression forest's leaves average this many rows. On a noisy count target (tests/commands/test_floors.py:
# the best possible R² is 0.07) from 3,000 sampled rows, leaves of 2 scored R² -0.028 (worse than the mean),
# of 10 +0.017, of 20 +0.026; on scikit-learn's diabetes table 20 scored 0.45 against 2's 0.42.
REGRESSION_LEAF = 20
LEAF_WHY = "leaves of a few rows chase a noisy target's noise, below the mean's R²."
FLOORS = (
    "Floors above the dummy baseline: the model must beat a model that ignores every feature (the training\n"
    "rows' class shares or mean, scored on the same held-out rows) by above_baseline, in the metric's units\n"
    "(R² 0.01: explain 1% more of the variance; ROC AUC 0.05: 0.55 against the dummy's 0.5). A fixed floor\n"
    "(R² 0.1, ROC AUC 0.6) fails every honest model of a hard target and says nothing of an easy one;\n"
    "`threshold = X` sets an absolute floor instead."
)
# [drift] as written: the config's defaults (measured on split halves of real tables: pipeline/config.py).
DRIFT_KEYS = (
    "method",
    "alpha",
    "wasserstein_limit",
    "jensen_shannon_limit",
    "label_jensen_shannon_limit",
    "max_unseen_share",
)


@dataclass(frozen=True)
class Section:
    """One TOML table of the config: its name, a comment saying why, and its keys."""

    keys: tuple[str, ...]  # ("gates", "champion"); () for the top-level keys
    comment: str
    values: dict[str, Any]
    array: bool = False  # one entry of an array of tables ([[gates.metric]])


def kind_parameters(classifier: bool) -> dict[str, tuple[str, dict[str, Any]]]:
    """Return, per model kind ``init`` offers, a comment and the parameters it writes (the chosen kind first)."""
    linear = (
        ("logistic_regression", {"C": 1.0, "max_iter": 1000}) if classifier else ("ridge", {"alpha": 1.0})
    )
    leaf = 2 if classifier else REGRESSION_LEAF
    return {
        "random_forest": (
            "" if classifier else f"min_samples_leaf {REGRESSION_LEAF}: {LEAF_WHY}",
            {"n_estimators": 100, "min_samples_leaf": leaf},
        ),
        "hist_gradient_boosting": ("scikit-learn serves it (no ONNX converter for it)", {"max_iter": 200}),
        linear[0]: ("a linear baseline: numbers are standardised first", linear[1]),
        "xgboost": ("", {"n_estimators": 200, "max_depth": 4, "learning_rate": 0.1}),
        "lightgbm": ("", {"n_estimators": 200, "num_leaves": 15, "learning_rate": 0.05}),
    }


def detectable_note(rows: int, task: str, test_fraction: float = TEST_FRACTION) -> str | None:
    """Return the smallest ROC AUC difference the no-regression gate will resolve on this table (classification).

    Foreseen from the spread two similar forests showed (``pipeline/core/power.py``); the gate
    states the one it measures. None for regression: no spread is known before a model exists.
    """
    if task != "classification":
        return None
    held_out = max(1, round(rows * test_fraction))
    detectable, tolerance = foreseen(held_out), RELATIVE_TOLERANCE * 0.8
    note = (
        f"no_regression will compare on about {held_out:,} held-out rows: for two similar forests they resolve "
        f"ROC AUC differences of about {detectable:.3f} (smaller ones look like none); the tolerance is "
        f"{RELATIVE_TOLERANCE:.0%} of the champion's value, about {tolerance:.3f} at ROC AUC 0.8"
    )
    if detectable > tolerance:
        note += ", so a retrain as good as its champion may come out inconclusive: reported, never published"
    return note


def held_out_warning(rows: int, min_rows: int, test_fraction: float = TEST_FRACTION) -> str | None:
    """Return why a champion comparison on this table will be inconclusive, or None when it can decide.

    The held-out side is about ``test_fraction`` of the rows; the no-regression gate needs
    ``min_rows`` of them that the champion never trained on.
    """
    held_out = round(rows * test_fraction)
    if held_out >= min_rows:
        return None
    return (
        f"about {held_out} held-out rows ({test_fraction:g} of {rows}), fewer than the {min_rows} the "
        "no-regression gate needs (gates.champion.min_rows): once a champion exists it will say inconclusive; "
        "add rows, raise training.test_fraction, or lower gates.champion.min_rows knowingly"
    )


def config_sections(
    inferred: Inferred, frame: pd.DataFrame, reference: str, registry: str, description: str
) -> list[Section]:
    """Return every section of a config for the table ``inferred`` describes, in file order."""
    data, schema = inferred.data, inferred.schema
    target, task = str(data["target"]), str(data["task"])
    classifier = task == "classification"
    smallest = float(frame[target].value_counts(normalize=True).min()) if classifier else 1.0
    top: dict[str, Any] = {"description": description}
    sections = [
        Section((), "ml-cicd: the one knob file (written by `ml-cicd init`; edit freely).", top),
        Section(
            ("data",),
            "The table, its target and the columns that identify a row (dropped before training).",
            data,
        ),
    ]
    columns = schema["columns"]
    table = {k: v for k, v in schema.items() if k != "columns"}
    sections.append(
        Section(
            ("schema",), "Expectations inferred from the table; `validate` and `train` check them.", table
        )
    )
    for name, spec in columns.items():
        sections.append(Section(("schema", "columns", name), "", spec))
    kind = "random_forest"
    sections += [
        Section(
            ("model",),
            "A random forest: non-linear, no scaling needed, converts to ONNX. Each kind's parameters are a\n"
            "[model.kinds.KIND] table below, checked by the estimator when that kind is chosen: changing\n"
            "`kind` is one edit. xgboost and lightgbm need pip install 'ml-cicd[boost]'.",
            {"kind": kind},
        ),
        *(
            Section(("model", "kinds", name), comment, params)
            for name, (comment, params) in kind_parameters(classifier).items()
        ),
        Section(
            ("training",),
            "Quick CI training samples this many rows (`train --full`: every row); a salted hash of each "
            "row's key decides the held-out side.",
            {"sample_rows": SAMPLE_ROWS, "test_fraction": TEST_FRACTION, "seed": 42, "stratify": classifier},
        ),
    ]
    sections += gate_sections(task, smallest)
    sections += [
        Section(
            ("drift",),
            "Compared with a snapshot of this table; point `reference` at newer data to watch it move.",
            {"reference": reference, **{key: getattr(DriftConfig(), key) for key in DRIFT_KEYS}},
        ),
        Section(
            ("slices",),
            "Per-slice metrics over low-cardinality categoricals.",
            slice_columns(inferred, frame),
        ),
        Section(
            ("serving",),
            "Compiled to ONNX at train time, served by ONNX Runtime when it answers alike; "
            "out-of-range values are served and counted.",
            {"onnx": True, "parity_limit": 1e-5, "out_of_range": "count"},
        ),
        Section(("registry",), "The directory registry, next to this config.", {"path": registry}),
    ]
    return sections


def gate_sections(task: str, smallest: float) -> list[Section]:
    """Return the gates for ``task``: floors above the dummy baseline, no regression, latency, slices,
    collapse, drift."""
    if task == "classification":
        metrics = [
            {"metric": "roc_auc", "above_baseline": AUC_MARGIN},
            {"metric": "balanced_accuracy", "above_baseline": AUC_MARGIN, "required": False},
        ]
        champion, floor = "roc_auc", {"metric": "roc_auc", "min": 0.55, "required": False}
        collapse = {"min_class_fraction": collapse_limit(smallest)}
    else:
        metrics = [{"metric": "r2", "above_baseline": R2_MARGIN}]
        champion, floor = "rmse", {"metric": "r2", "min": 0.0, "required": False}
        collapse = {}
    sections = [
        Section(("gates", "metric"), FLOORS if i == 0 else "", m, array=True) for i, m in enumerate(metrics)
    ]
    return [
        *sections,
        Section(
            ("gates", "champion"),
            "No regression against the registry's production model, on rows it never trained on.\n"
            f"relative_tolerance: a drop of this share of the champion's {champion} is a tie (a tolerance in\n"
            "the metric's own units means nothing until you know its scale: 0.01 of an RMSE of 54).",
            {
                "metric": champion,
                "relative_tolerance": RELATIVE_TOLERANCE,
                "confidence": 0.95,
                "bootstrap": 1000,
            },
        ),
        Section(
            ("gates", "latency"),
            "Single-row p95: a ratio to the champion's (failing only a surely slower candidate), else "
            "absolute; `smoke --champion-url` compares the two servers under load.",
            {"required": False},
        ),
        Section(("gates", "slices"), "Advisory floor per slice.", floor),
        Section(("gates", "collapse"), "Every class keeps a share of the predictions.", collapse),
        Section(("gates", "drift"), "Drift beyond the [drift] limits fails the run.", {"required": True}),
        Section(("gates", "label_drift"), "The target's mix against the reference's.", {"required": True}),
        Section(
            ("gates", "prediction_drift"),
            "The candidate's predictions on the reference rows vs on its held-out rows (advisory).",
            {"required": False},
        ),
        Section(
            ("gates", "parity"), "The served ONNX model answers as scikit-learn does.", {"required": True}
        ),
    ]


def collapse_limit(smallest: float) -> float:
    """Return ``gates.collapse.min_class_fraction``: 0.01, or a fifth of the rarest class's share when lower."""
    return round(min(DEFAULT_COLLAPSE_FRACTION, smallest / 5), 4)


def loosened_limits(inferred: Inferred, frame: pd.DataFrame) -> list[str]:
    """Return a note for each limit of the config (beyond the schema's own) loosened to fit the table."""
    target = str(inferred.data["target"])
    if inferred.data["task"] != "classification":
        return []
    shares = frame[target].value_counts(normalize=True)
    limit = collapse_limit(float(shares.min()))
    if limit >= DEFAULT_COLLAPSE_FRACTION:
        return []
    return [
        f"loosened gates.collapse.min_class_fraction to {limit:g} (from {DEFAULT_COLLAPSE_FRACTION:g}): "
        f"the rarest class ({category_key(shares.index[-1])!r}) is {float(shares.min()):.1%} of the rows"
    ]


def slice_columns(inferred: Inferred, frame: pd.DataFrame) -> dict[str, Any]:
    """Return ``[slices]``: up to two categorical columns with at most ten values (fewest first)."""
    target = inferred.data["target"]
    ids = set(inferred.data.get("id_columns", []))
    candidates = []
    for name, spec in inferred.schema["columns"].items():
        if name == target or name in ids or spec["type"] != "categorical":
            continue
        distinct = int(frame[name].nunique(dropna=True))
        if 2 <= distinct <= MAX_SLICE_VALUES:
            candidates.append((distinct, name))
    chosen = [name for _, name in sorted(candidates)[:MAX_SLICES]]
    return {"columns": chosen, "min_rows": 30}

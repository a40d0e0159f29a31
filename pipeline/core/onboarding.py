"""A complete first config for a new table: the inferred schema plus defaults that suit its task.

``init`` writes what this returns. The choices aim at "passes on a reasonable table with no
hand edits" and say why in comments: a random forest (non-linear, needs no scaling), gates a
useful model clears (ROC AUC 0.6 / R² 0.1), a scale-free champion metric, slices over a couple
of low-cardinality categoricals, and class-collapse and class-balance limits below the rarest
class the table has. Pure: ``pipeline/commands/init.py`` reads the table and writes the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.core.schema import Inferred

MAX_SLICES = 2
MAX_SLICE_VALUES = 10
SAMPLE_ROWS = 3000
TEST_FRACTION = 0.25


@dataclass(frozen=True)
class Section:
    """One TOML table of the config: its name, a comment saying why, and its keys."""

    keys: tuple[str, ...]  # ("gates", "champion"); () for the top-level keys
    comment: str
    values: dict[str, Any]
    array: bool = False  # one entry of an array of tables ([[gates.metric]])


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
        Section((), "ml-cicd: the one knob file (written by `python -m pipeline init`; edit freely).", top),
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
    params = {"n_estimators": 100, "min_samples_leaf": 2}
    sections += [
        Section(
            ("model",), "A random forest: non-linear, no scaling needed, converts to ONNX.", {"kind": kind}
        ),
        Section(("model", "params"), "Passed to scikit-learn, which validates them.", params),
        Section(
            ("training",),
            "Quick CI training samples this many rows (`train --full`: every row); a salted hash of each "
            "row's key decides the held-out side.",
            {"sample_rows": SAMPLE_ROWS, "test_fraction": TEST_FRACTION, "seed": 42, "stratify": classifier},
        ),
    ]
    sections += gate_sections(task, len(schema.get("labels") or []), smallest)
    sections += [
        Section(
            ("drift",),
            "Compared with a snapshot of this table; point `reference` at newer data to watch it move.",
            {
                "reference": reference,
                "method": "auto",
                "alpha": 0.05,
                "wasserstein_limit": 0.1,
                "jensen_shannon_limit": 0.1,
            },
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


def gate_sections(task: str, classes: int, smallest: float) -> list[Section]:
    """Return the gates for ``task``: a quality floor, no regression, latency, slices, collapse, drift."""
    if task == "classification":
        chance = 1.0 / max(classes, 2)
        metrics = [
            {"metric": "roc_auc", "threshold": 0.6},
            {"metric": "balanced_accuracy", "threshold": round(chance + 0.05, 2), "required": False},
        ]
        champion, floor = "roc_auc", {"metric": "roc_auc", "min": 0.55, "required": False}
        collapse = {"min_class_fraction": round(min(0.01, smallest / 5), 4)}
    else:
        metrics = [{"metric": "r2", "threshold": 0.1}]
        champion, floor = "r2", {"metric": "r2", "min": 0.0, "required": False}
        collapse = {}
    sections = [
        Section(("gates", "metric"), "A floor a useful model clears.", m, array=True) for m in metrics
    ]
    return [
        *sections,
        Section(
            ("gates", "champion"),
            "No regression against the registry's production model, on rows it never trained on.",
            {"metric": champion, "tolerance": 0.01, "confidence": 0.95, "bootstrap": 1000},
        ),
        Section(
            ("gates", "latency"),
            "Single-row p95: as a ratio to the champion's, else absolute.",
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

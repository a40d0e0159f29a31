"""Compare a table with a reference (a table, or a model's data profile): features, label and predictions.

    python -m pipeline drift --config ml-cicd.toml --reference data/churn_reference.csv --out out
    python -m pipeline drift --config ml-cicd.toml --model out/model --data new.csv --out out

Each feature is compared by the statistic its type and sample size call for (small samples: KS
or chi-squared, p-values adjusted across the features; large ones: a normalised Wasserstein or
a Jensen-Shannon distance; ``[drift]`` and ``pipeline/core/drift.py`` say which and why), PSI
reported beside it. The label (the target) is compared when both sides have it; with
``--model`` so are the model's predictions on the table's rows it never trained on (those on the
held-out side of its split rule) against its predictions on its own held-out rows: like with
like, since a model answers its training rows with more confidence, so an overfit model would
"drift" on an identical copy of its training table otherwise. Writes ``OUT/drift.json``; exits 1 when more than ``drift.max_drifted_features``
features drifted, or the label (``gates.label_drift.required``) or the predictions
(``gates.prediction_drift.required``) did. Features are the schema's columns minus target and
ids; nulls are left out (validate checks null fractions). Without --reference or --model,
drift.reference from the config is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from model.artifact import load_artifact
from model.codec import write_record
from model.records import ModelMetadata
from pipeline.commands.options import add_data, add_out, read_data
from pipeline.config import Config, load_config
from pipeline.core.drift import against_profile, against_reference, compare_one, sampled
from pipeline.core.drift_verdict import describe, failure_summary
from pipeline.core.evaluation import feature_rows, model_outputs
from pipeline.core.split import held_out
from pipeline.errors import CheckFailed, DataError
from pipeline.io.run import run_id
from pipeline.io.tables import file_hash, read_table
from pipeline.records import Drift
from pipeline.render.console import drift_table


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``drift`` options."""
    add_data(parser, "check")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--reference", type=Path, help="reference table (CSV or Parquet); enables KS")
    source.add_argument("--model", type=Path, help="model artefact dir: compare with its stored profile")
    add_out(parser, "output directory (default out)")


def run(args: argparse.Namespace) -> int:
    """Measure drift, write ``OUT/drift.json``; exit 1 when too many features drifted."""
    config = load_config(args.config)
    data_path, current = read_data(args, config)
    run, data_sha256 = run_id(), file_hash(data_path)
    if args.model is not None:
        estimator, metadata = load_artifact(args.model)
        current = sampled(current)
        rows = feature_rows(current, metadata, data_path)
        report = against_profile(current, metadata, str(args.model), config, run=run, data_sha256=data_sha256)
        report, not_compared = with_predictions(report, current, rows, estimator, metadata, config, data_path)
    else:
        not_compared = ""
        reference = args.reference or config.drift.reference
        if reference is None:
            raise DataError("no reference: pass --reference CSV or --model DIR, or set drift.reference")
        report = against_reference(
            current, read_table(reference), str(reference), config, run=run, data_sha256=data_sha256
        )
    out = Path(args.out) / Drift.FILE
    write_record(out, report)
    print(drift_table(report))
    if not report.passed:
        raise CheckFailed(failure_summary(report, str(out)))
    gates = config.gates
    if not_compared and gates.prediction_drift.required:
        raise CheckFailed(f"prediction drift (required) not compared: {not_compared}; see {out}")
    for entry, required, what in (
        (report.label, gates.label_drift.required, "label"),
        (report.prediction, gates.prediction_drift.required, "prediction"),
    ):
        if entry is not None and required and entry.statistic is None:
            raise CheckFailed(
                f"{what} drift (required) not compared: '{entry.feature}' has no values; see {out}"
            )
        if entry is not None and entry.drifted and required:
            raise CheckFailed(f"{what} drift: '{entry.feature}' drifted ({describe(entry)}); see {out}")
    print(f"drift within limits; wrote {out}")
    return 0


def with_predictions(
    report: Drift,
    current: pd.DataFrame,
    rows: pd.DataFrame,
    estimator: Any,
    metadata: ModelMetadata,
    config: Config,
    source: Path,
) -> tuple[Drift, str]:
    """Return ``report`` with the model's predictions on the rows it never trained on compared with its profile's.

    Rows on the model's training side (by its split rule) are left out. Also returns why the
    predictions were not compared ("" when they were, or the profile has none): the split key is
    missing from the table, or no row falls on the model's held-out side.
    """
    entry = metadata.profile.get("predictions")
    if entry is None:
        return report, ""
    try:
        unseen = held_out(current, metadata.split)
    except DataError as exc:
        why = f"cannot tell which rows of {source} the model trained on: {exc}"
        note(f"predictions not compared: {why}")
        return report, why
    if not unseen.any():
        why = f"none of the {len(current):,} rows falls on the model's held-out side"
        note(f"predictions not compared: {why}")
        return report, why
    outputs, kind = model_outputs(estimator, rows.loc[unseen], metadata)
    prediction = compare_one("predictions", kind, pd.Series(outputs), entry, config.drift)
    note(
        f"predictions compared on the {int(unseen.sum()):,} rows on the model's held-out side (it trained "
        f"on none of them); {int((~unseen).sum()):,} on its training side left out"
    )
    return dataclasses.replace(report, prediction=prediction), ""


def note(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"drift: {message}", file=sys.stderr)

"""Fit the configured model on a seeded sample and write the artefact directory and held-out rows.

    python -m pipeline train --config ml-cicd.toml --out out

Reads the table (``data.path``, or ``--data``) and first runs every check ``validate`` runs,
with the same messages (exit 2 on any failure; ``--no-validate`` skips them and the artefact
says so). Drops rows whose target is null, then splits by a salted hash of each row's key
(the id columns, else the features): ``training.test_fraction`` of the rows are held out,
whatever the seed or the sample. ``training.sample_rows`` (``--full`` or 0: every row) caps
the training rows: their share of it is drawn from the train side with the seed (stratified for
classification when ``training.stratify``). The held-out rows are the table's whole held-out
side (beside a sample, at most 50,000 of them, by hash order), the same for every seed and
sample: no model of this split trained on any of them, so the champion and the candidate are
compared on all of them. Fits the ``[model]`` pipeline and writes ``OUT/model/`` (model.joblib
+ metadata.json, with the split rule, a data profile for drift checks and the dummy baseline
fitted on the same training rows: their class shares or target mean) and
``OUT/holdout.parquet`` (the held-out rows with ids and target). Same inputs give the same model file (sha256). The fitted pipeline
is converted to ONNX (``serving.onnx``): ``model.onnx`` joins the artefact only when ONNX
Runtime answers as scikit-learn does on the held-out rows (``pipeline/core/compile.py``); the
metadata's ``compiled`` entry and a stderr line say which, and why.

Features are the schema's columns minus the target and the id columns. A table
column the schema does not list is an error, unless ``schema.allow_unexpected_columns``
is true, in which case it is ignored with a note (the same rule ``validate`` applies).
Everything is checked and fitted before anything is written; a failing train leaves
``OUT`` as it was.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from model.artifact import save_artifact
from model.codec import plain
from model.compiled import ONNX_FILE
from model.records import ModelMetadata
from pipeline.commands.options import add_data, add_out, check_config, read_data
from pipeline.config import Config, load_config, project_root
from pipeline.core.compile import compile_model
from pipeline.core.evaluation import model_outputs
from pipeline.core.floors import fit_baseline
from pipeline.core.prepare import prepare
from pipeline.core.profile import data_profile, profile_entry
from pipeline.core.split import MAX_HOLDOUT_ROWS, split_frame, split_rule
from pipeline.core.training import feature_schema, fit
from pipeline.core.validation import failure_summary, validate_frame
from pipeline.errors import DataError
from pipeline.io import outdir
from pipeline.io.git import git_commit
from pipeline.io.run import run_id
from pipeline.io.tables import file_hash
from pipeline.steps.needs import model_needs

# Config sections that shape the artefact (the drift section sets the profile's bins).
CONFIG_SECTIONS = ("data", "schema", "model", "training", "drift", "serving")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options."""
    add_data(parser, "train on")
    parser.add_argument(
        "--full", action="store_true", help="train on every row, ignoring training.sample_rows"
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="skip the validation checks (recorded in the artefact)"
    )
    add_out(parser)


def run(args: argparse.Namespace) -> int:
    """Train, then write ``OUT/model`` and ``OUT/holdout.parquet``."""
    config = load_config(args.config)
    check_config(config, project_root(args.config), data=args.data)
    started = time.perf_counter()
    run = run_id()
    data_path, table = read_data(args, config)
    data_sha256 = file_hash(data_path)
    note(f"read {len(table)} rows x {table.shape[1]} columns from {data_path}")
    if args.no_validate:
        note("validation skipped (--no-validate); the artefact records validated = false")
    else:
        report = validate_frame(table, config, run=run, data_sha256=data_sha256)
        if not report.passed:
            raise DataError(failure_summary(report, None))
        note(f"validated: {len(report.checks)} checks passed")
    prepared = prepare(table, config)
    if prepared.dropped_null_target:
        note(f"dropped {prepared.dropped_null_target} rows with a null target '{config.data.target}'")
    if prepared.ignored_columns:
        note(f"ignoring column(s) not in the schema: {', '.join(prepared.ignored_columns)}")
    frame = prepared.frame
    sample_rows = 0 if args.full else config.training.sample_rows
    rule = split_rule(config)
    train, holdout = split_frame(frame, config, sample_rows)
    used = "all rows" if len(train) + len(holdout) == len(frame) else f"train rows sampled from {len(frame)}"
    side = "the first by hash order" if len(holdout) == MAX_HOLDOUT_ROWS else "the whole held-out side"
    note(
        f"split by a hash of {', '.join(rule.key[:3])}{', ...' if len(rule.key) > 3 else ''}: "
        f"{len(train)} train rows, {len(holdout)} held-out rows ({side}; {used}, test_fraction {rule.fraction})"
    )
    fitted, seconds = fit(train, prepared.features, config, project_root(args.config))
    note(f"fitted {config.model.name} in {seconds:.2f} s")
    features = feature_schema(prepared.features, config)
    compiled, onnx = compile_model(fitted, features, prepared.labels, holdout, config.serving)
    note(f"onnx: {compiled.status}: {compiled.message}")
    metadata = ModelMetadata(
        run=run,
        task=config.data.task,
        target=config.data.target,
        labels=prepared.labels,
        positive_label=prepared.positive_label,
        features=features,
        id_columns=config.data.id_columns,
        kind=config.model.name,
        params=config.model.chosen_params,
        data_sha256=data_sha256,
        config_sha256=config.section_hash(*CONFIG_SECTIONS),
        git_commit=git_commit(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        train_rows=len(train),
        holdout_rows=len(holdout),
        seed=config.training.seed,
        split=rule,
        validated=not args.no_validate,
        profile={},
        compiled=compiled,
        out_of_range=config.serving.out_of_range,
        baseline=fit_baseline(train[config.data.target], config.data.task, prepared.labels),
        needs=model_needs(fitted, project_root(args.config), config.model.factory),
    )
    metadata = dataclasses.replace(metadata, profile=drift_profile(fitted, train, holdout, metadata, config))
    classes = [plain(c) for c in getattr(fitted, "classes_", ())]
    if prepared.labels is not None and classes != list(prepared.labels):
        raise DataError(f"estimator classes {classes} differ from the target labels {prepared.labels}")
    extra = {ONNX_FILE: onnx} if onnx is not None else {}
    saved = write_outputs(Path(args.out), fitted, metadata, outdir.parquet_bytes(holdout), extra)
    note(
        f"wrote {Path(args.out) / outdir.MODEL} (model sha256 {saved.model_sha256[:12]}) and "
        f"{Path(args.out) / outdir.HOLDOUT} in {time.perf_counter() - started:.2f} s total"
    )
    return 0


def drift_profile(
    fitted: Any, train: pd.DataFrame, holdout: pd.DataFrame, metadata: ModelMetadata, config: Config
) -> dict[str, Any]:
    """Return the profile later data is compared with: the training rows' features and target, and the
    model's predictions on its held-out rows (``drift --model``)."""
    bins, names = config.drift.bins, metadata.feature_names
    profile = data_profile(train[names], [c for c in config.schema.columns if c.name in names], bins)
    kind = "categorical" if config.data.task == "classification" else "numeric"
    profile["target"] = profile_entry(train[config.data.target], kind, bins)
    if len(holdout):
        outputs, output_kind = model_outputs(fitted, holdout[names], metadata)
        profile["predictions"] = profile_entry(pd.Series(outputs), output_kind, bins)
    return profile


def write_outputs(
    out: Path, fitted: Any, metadata: ModelMetadata, holdout: bytes, extra: dict[str, bytes] | None = None
) -> ModelMetadata:
    """Write the artefact, then the held-out rows; return the saved metadata.

    The two files must never form a mismatched pair, so a stale ``holdout.parquet`` is
    removed first, the model directory is swapped in atomically, and the new held-out
    rows are renamed into place last. A crash in between leaves a model without
    held-out rows (evaluate then fails naming the missing file), never a model
    next to another run's rows.
    """
    (out / outdir.HOLDOUT).unlink(missing_ok=True)
    saved = save_artifact(out / outdir.MODEL, fitted, metadata, extra)
    outdir.write_holdout(out, holdout)
    return saved


def note(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"train: {message}", file=sys.stderr)

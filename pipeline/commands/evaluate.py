"""Score a model artefact on held-out rows: quality, per-slice metrics, the prediction mix.

    python -m pipeline evaluate --config ml-cicd.toml --out out

Loads ``OUT/model`` (hash verified) and ``OUT/holdout.parquet`` written by ``train``: the
table's whole held-out side, no row of which the model trained on (or ``--model`` and ``--data``) and writes ``OUT/metrics.json``: overall metrics,
per-class metrics and confusion matrix (classification), metrics per value of each
``slices.columns`` column (values with fewer than ``slices.min_rows`` rows are listed
as skipped), the distribution of predictions, and the dummy baseline (the class shares or the mean
of the model's training rows, recorded by ``train``) scored on the same rows by the same metrics.
Identical inputs give an identical file (single-row
latency is timed by ``gate``, beside the champion).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.artifact import load_artifact
from model.codec import write_record
from model.records import Metrics
from pipeline.commands.options import add_out, check_config
from pipeline.config import load_config, project_root
from pipeline.core.evaluation import evaluate
from pipeline.core.metrics import DEFAULT_METRIC
from pipeline.errors import ModelError
from pipeline.io import outdir
from pipeline.io.run import run_id
from pipeline.io.tables import read_table
from pipeline.render.tables import fmt


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``evaluate`` options."""
    parser.add_argument("--model", type=Path, help="model artefact directory (default OUT/model)")
    parser.add_argument(
        "--data", type=Path, help="rows to score, with the target (default OUT/holdout.parquet)"
    )
    add_out(parser)


def run(args: argparse.Namespace) -> int:
    """Evaluate and write ``OUT/metrics.json``."""
    config = load_config(args.config)
    check_config(config, project_root(args.config), model=False)
    out = Path(args.out)
    model_dir = Path(args.model) if args.model else out / outdir.MODEL
    data_path = Path(args.data) if args.data else out / outdir.HOLDOUT
    estimator, metadata = load_artifact(model_dir)
    frame = read_table(data_path)
    if args.data is None and len(frame) != metadata.holdout_rows:
        raise ModelError(
            f"{data_path} has {len(frame)} rows but {model_dir} was trained with "
            f"{metadata.holdout_rows} held-out rows; run train again"
        )
    nulls = int(frame[metadata.target].isna().sum()) if metadata.target in frame.columns else 0
    if nulls and nulls < len(frame):
        print(f"evaluate: dropped {nulls} rows with a null target '{metadata.target}'", file=sys.stderr)
    metrics = evaluate(estimator, metadata, frame, config, run_id())
    write_record(out / Metrics.FILE, metrics)
    headline = DEFAULT_METRIC[metrics.task]
    print(
        f"evaluate: {metrics.rows} rows, {headline} {fmt(metrics.overall.get(headline))}; wrote {out / Metrics.FILE}",
        file=sys.stderr,
    )
    return 0

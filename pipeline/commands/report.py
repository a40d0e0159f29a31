"""Write report.md (and a PNG plot) for a GitHub job summary or a PR comment.

    python -m pipeline report --config configs/pipeline.toml --out out
    cat out/report.md >> "$GITHUB_STEP_SUMMARY"

Reads whatever the earlier steps left in --out (gates.json, metrics.json,
validation.json, drift.json, model/, holdout.parquet) and says which inputs were not
produced; it also writes a report after a failed gate. The plot is
confusion_matrix.png for classification and residuals.png for regression.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model.artifact import load_artifact
from model.codec import read_optional
from model.errors import ArtifactError
from model.files import write_bytes_atomic, write_text_atomic
from model.records import Drift, Gates, Metrics, ModelMetadata, Validation
from pipeline.commands.options import add_out
from pipeline.config import load_config
from pipeline.core.evaluation import score_rows
from pipeline.errors import PipelineError
from pipeline.io import outdir
from pipeline.render.plots import confusion_png, residual_png
from pipeline.render.report import ReportInputs, build_report

# input file -> the step that writes it
INPUTS = {
    Gates.FILE: "gate",
    Metrics.FILE: "evaluate",
    Validation.FILE: "validate",
    Drift.FILE: "validate, with drift.reference set",
    f"{outdir.MODEL}/{ModelMetadata.FILE}": "train",
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` options."""
    add_out(parser, "artefact directory to read and write (default out)")


def run(args: argparse.Namespace) -> int:
    """Write ``report.md`` and the plot into --out; return 0 even when the gates failed."""
    config = load_config(args.config)
    out = Path(args.out)
    gates = read_optional(out / Gates.FILE, Gates)
    metrics = read_optional(out / Metrics.FILE, Metrics)
    validation = read_optional(out / Validation.FILE, Validation)
    drift = read_optional(out / Drift.FILE, Drift)
    metadata = read_optional(out / outdir.MODEL / ModelMetadata.FILE, ModelMetadata)
    found = dict(zip(INPUTS, (gates, metrics, validation, drift, metadata), strict=True))
    missing = tuple(f"`{name}` ({step})" for name, step in INPUTS.items() if found[name] is None)
    task = metadata.task if metadata else metrics.task if metrics else config.data.task
    inputs = ReportInputs(
        gates=gates,
        metrics=metrics,
        validation=validation,
        drift=drift,
        metadata=metadata,
        description=config.description,
        slice_gate=config.gates.slices,
        plot=plot(task, out, metrics, metadata),
        missing=missing,
    )
    write_text_atomic(out / outdir.REPORT, build_report(inputs, task))
    print(f"report: wrote {out / outdir.REPORT}")
    return 0


def plot(task: str, out: Path, metrics: Metrics | None, metadata: ModelMetadata | None) -> str:
    """Write the task's plot into ``out``; return the markdown that shows it (or why it is absent)."""
    try:
        if task == "regression":
            holdout = out / outdir.HOLDOUT
            if metadata is None or not holdout.is_file():
                return "No residual plot: needs `model/` and `holdout.parquet`."
            estimator, metadata = load_artifact(out / outdir.MODEL)
            y_true, predictions, _ = score_rows(estimator, metadata, outdir.read_holdout(holdout))
            predicted = predictions.y_pred.astype(float)
            png = residual_png(predicted, y_true.astype(float) - predicted)
            write_bytes_atomic(out / outdir.RESIDUALS_PNG, png)
            return f"![residuals]({outdir.RESIDUALS_PNG})"
        if metrics is None or metrics.confusion_matrix is None:
            return "No confusion matrix: `metrics.json` has none."
        write_bytes_atomic(out / outdir.CONFUSION_PNG, confusion_png(metrics.confusion_matrix))
        return f"![confusion matrix]({outdir.CONFUSION_PNG})"
    except (PipelineError, ArtifactError) as exc:
        return f"No plot: {exc}."

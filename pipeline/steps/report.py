"""The report step: assemble ``report.md`` and its plot from whatever the earlier steps left in --out.

``run_report`` is the whole step (``pipeline/commands/report.py`` parses ``--step`` and prints
where the report went). ``load_inputs`` reads the step files, setting aside those of another model
or run and naming those no step produced; ``plot`` writes the task's PNG unless an up-to-date one is
there. The markdown itself is rendered by ``pipeline/render/report.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from model.artifact import load_artifact
from model.codec import encode, read_optional, write_record
from model.errors import ArtifactError
from model.files import sha256_file, write_bytes_atomic, write_text_atomic
from model.records import Metrics, ModelMetadata
from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.io import outdir
from pipeline.records import Drift, Gates, Image, Run, Smoke, StepOutcome, Validation
from pipeline.render.report import ReportInputs, build_report

T = TypeVar("T")
INPUTS_MODEL = f"{outdir.MODEL}/{ModelMetadata.FILE}"
# input file -> the step that writes it
INPUTS = {
    Gates.FILE: "gate",
    Metrics.FILE: "evaluate",
    Validation.FILE: "validate",
    Drift.FILE: "validate, with drift.reference set",
    INPUTS_MODEL: "train",
}


def run_report(config: Config, out: Path, current: str, given: tuple[StepOutcome, ...] | None = None) -> Path:
    """Write ``report.md`` and the task's plot into ``out``; return the report's path.

    ``current``: the id of the run reported on; ``given``: how each step ended, from a caller that
    ran the steps itself (see ``load_inputs``). A report is written whatever the gates said.
    """
    inputs = load_inputs(out, config, current, given)
    task = (
        inputs.metadata.task
        if inputs.metadata
        else inputs.metrics.task
        if inputs.metrics
        else config.data.task
    )
    inputs = replace(inputs, plot=plot(task, out, inputs.metrics, inputs.metadata))
    write_text_atomic(out / outdir.REPORT, build_report(inputs, task))
    return out / outdir.REPORT


def load_inputs(
    out: Path, config: Config, current: str, given: tuple[StepOutcome, ...] | None = None
) -> ReportInputs:
    """Read what the steps left in ``out``, keeping only results of the model and run reported on.

    Results that name another model (``model_sha256``) are set aside as stale. When ``run.json``
    belongs to this run (the host runner's report step), validation and drift must come from it
    too (or from a step it restored from the cache); otherwise each section shows its own run.
    ``given``: how each step ended, from a caller that assembled ``out`` from this run's steps alone
    (the Dagger module); they make the run reported on, and no file is older than it.
    """
    metadata = read_optional(out / outdir.MODEL / ModelMetadata.FILE, ModelMetadata)
    run = read_optional(out / Run.FILE, Run)
    run = run if run is not None and run.run == current else None
    shown = run
    if given is not None:
        shown = Run(current, datetime.now(UTC).isoformat(timespec="seconds"), given)
        write_record(out / Run.FILE, shown)
        run = None  # nothing in out/ belongs to another run: the caller placed each file
    stale: list[str] = []

    def for_model(record: T | None, name: str) -> T | None:
        sha = getattr(record, "model_sha256", None)
        if record is None or metadata is None or sha == metadata.model_sha256:
            return record
        stale.append(
            f"`{name}` of model {str(sha)[:12]}, not of the model reported on ({metadata.model_sha256[:12]})"
        )
        return None

    def for_run(record: T | None, name: str, step: str) -> T | None:
        outcome = run.step(step) if run is not None else None
        if record is None or run is None or getattr(record, "run", None) == run.run:
            return record
        if outcome is not None and outcome.status == "cached":
            return record
        stale.append(f"`{name}` of run {getattr(record, 'run', '?')}, not of this run ({run.run})")
        return None

    gates = for_model(read_optional(out / Gates.FILE, Gates), Gates.FILE)
    metrics = for_model(read_optional(out / Metrics.FILE, Metrics), Metrics.FILE)
    validation = for_run(read_optional(out / Validation.FILE, Validation), Validation.FILE, "validate")
    drift = for_run(read_optional(out / Drift.FILE, Drift), Drift.FILE, "validate")
    found = dict(zip(INPUTS, (gates, metrics, validation, drift, metadata), strict=True))
    missing = tuple(f"`{name}` ({step})" for name, step in INPUTS.items() if found[name] is None)
    return ReportInputs(
        gates=gates,
        metrics=metrics,
        validation=validation,
        drift=drift,
        metadata=metadata,
        run=shown,
        image=for_model(read_optional(out / Image.FILE, Image), Image.FILE),
        smoke=for_model(read_optional(out / Smoke.FILE, Smoke), Smoke.FILE),
        description=config.description,
        slice_gate=config.gates.slices,
        missing=missing,
        stale=tuple(stale),
    )


def plot(task: str, out: Path, metrics: Metrics | None, metadata: ModelMetadata | None) -> str:
    """Write the task's plot into ``out`` unless an up-to-date one is there; return the markdown that shows it."""
    from pipeline.render import plots

    keep = outdir.RESIDUALS_PNG if task == "regression" else outdir.CONFUSION_PNG
    for stale in {outdir.RESIDUALS_PNG, outdir.CONFUSION_PNG} - {keep}:
        (out / stale).unlink(missing_ok=True)
    try:
        if task == "regression":
            holdout = out / outdir.HOLDOUT
            if metadata is None or not holdout.is_file():
                (out / outdir.RESIDUALS_PNG).unlink(missing_ok=True)
                return "No residual plot: needs `model/` and `holdout.parquet`."
            target = out / outdir.RESIDUALS_PNG
            digest = hashlib.sha256(f"{metadata.model_sha256}:{sha256_file(holdout)}".encode()).hexdigest()
            if not (target.is_file() and plots.shows(target.read_bytes(), digest)):
                from pipeline.core.evaluation import score_rows

                estimator, metadata = load_artifact(out / outdir.MODEL)
                y_true, predictions, _ = score_rows(estimator, metadata, outdir.read_holdout(holdout))
                predicted = predictions.y_pred.astype(float)
                write_bytes_atomic(
                    target, plots.residual_png(predicted, y_true.astype(float) - predicted, digest)
                )
            return f"![residuals]({outdir.RESIDUALS_PNG})"
        if metrics is None or metrics.confusion_matrix is None:
            (out / outdir.CONFUSION_PNG).unlink(missing_ok=True)
            return "No confusion matrix: `metrics.json` has none."
        target = out / outdir.CONFUSION_PNG
        digest = hashlib.sha256(json.dumps(encode(metrics)["confusion_matrix"]).encode()).hexdigest()
        if not (target.is_file() and plots.shows(target.read_bytes(), digest)):
            write_bytes_atomic(target, plots.confusion_png(metrics.confusion_matrix, digest))
        return f"![confusion matrix]({outdir.CONFUSION_PNG})"
    except (PipelineError, ArtifactError) as exc:
        return f"No plot: {exc}."

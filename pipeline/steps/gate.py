"""The gate step: load the candidate and the champion from --out, evaluate every gate, write ``gates.json``.

``run_gate`` is the whole step (``pipeline/commands/gate.py`` parses its options and prints the
table); ``evaluate_gates`` returns the record without writing it, one line per gate. The rules
themselves are pure, in ``pipeline/core/gates.py``; here the files and models they judge are loaded,
the champion is found (``--champion`` or the registry's ``production`` alias), both models are
scored on the held-out rows the champion never trained on, parity is checked on the served ONNX
form, and single-record latency of each model as served is timed. All of it runs with the model
runtimes' native thread pools capped at ``serving.threads``, as the server caps them: timings
judge the model as it will be served, and a gate on a busy runner does not oversubscribe it.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.artifact import check_signature, load_artifact, read_compiled, verify_artifact
from model.codec import read_optional, read_record, write_record
from model.compiled import load_compiled
from model.errors import ArtifactError
from model.records import Metrics, ModelMetadata, Result, Status
from model.runtime import load_model
from model.signing import SignatureError
from model.sklearn_runtime import thread_limit
from pipeline.config import Config
from pipeline.config_gates import ChampionGate
from pipeline.core import gates as rules
from pipeline.core.bootstrap import Predictions, compare
from pipeline.core.calibration import curves
from pipeline.core.compile import PARITY_ROWS, measure_parity
from pipeline.core.drift import prediction_drift
from pipeline.core.evaluation import feature_rows, model_outputs, score_rows, time_single_rows, usable_rows
from pipeline.core.latency import paired_ratio
from pipeline.core.power import detectable_from
from pipeline.core.served import ServedForm
from pipeline.core.split import held_out
from pipeline.core.values import json_records
from pipeline.errors import DataError, ModelError, PipelineError, first_line
from pipeline.io import outdir
from pipeline.io.registry import production_model_dir, version_of
from pipeline.io.tables import read_table
from pipeline.records import (
    Calibration,
    Champion,
    Comparison,
    Drift,
    FeatureDrift,
    Gates,
    Latency,
)


def run_gate(config: Config, out: Path, champion_arg: str | None, run: str) -> Gates:
    """Evaluate every gate on the candidate in ``out``, write ``out/gates.json`` and return the record.

    ``champion_arg``: the champion's artefact directory (a missing or empty one means no champion),
    or None for the registry's ``production`` alias. The config is taken as checked
    (``check_config`` in ``pipeline/commands/options.py``).
    """
    record = evaluate_gates(config, out, champion_arg, run)
    write_record(out / Gates.FILE, record)
    return record


def evaluate_gates(config: Config, out: Path, champion_arg: str | None, run: str) -> Gates:
    """Load everything the gates need from ``out`` and return the ``gates.json`` record.

    Every model call in it (scoring, parity, timing) uses at most ``serving.threads`` threads.
    """
    with thread_limit(config.serving.threads):
        return _evaluate_gates(config, out, champion_arg, run)


def _evaluate_gates(config: Config, out: Path, champion_arg: str | None, run: str) -> Gates:
    metrics = read_record(out / Metrics.FILE, Metrics, "metrics.json (from `evaluate`)")
    model_dir = out / outdir.MODEL
    if not (model_dir / ModelMetadata.FILE).is_file():
        raise ModelError(f"{model_dir}: candidate model artefact not found (run `python -m pipeline train`)")
    estimator, metadata = load_artifact(model_dir)
    if metrics.model_sha256 != metadata.model_sha256:
        raise DataError(
            f"{out / Metrics.FILE} is of model {metrics.model_sha256[:12]}, not of {model_dir} "
            f"({metadata.model_sha256[:12]}); run `python -m pipeline evaluate` again"
        )
    holdout = outdir.read_holdout(out / outdir.HOLDOUT)
    results = [rules.metric_gate(gate, metrics.overall, metrics.baseline) for gate in config.gates.metric]

    champion_dir, why = resolve_champion(champion_arg, config)
    section: Champion | None = None
    drawn: Calibration | None = None
    champion: tuple[Any, ModelMetadata, str] | None = None
    gate = config.gates.champion
    if champion_dir is None:
        results.append(rules.champion_gate(gate, None, why))
        results.append(calibration_skipped(config, metadata, why))
    else:
        champion = load_champion(champion_dir, config.serving.threads)
    if champion is not None and champion_dir is not None:
        champion_estimator, champion_meta, how = champion
        check_compatible(metadata, champion_meta, champion_dir)
        comparison, result, calibration, drawn = champion_comparison(
            config, estimator, metadata, champion_estimator, champion_meta, holdout
        )
        if how:
            result = replace(result, message=f"{result.message}; the champion {how}")
        if comparison is not None:
            low, high = comparison.ci_low, comparison.ci_high
            section = Champion(
                **asdict(comparison),
                path=str(champion_dir),
                version=version_of(champion_dir),
                model_sha256=champion_meta.model_sha256,
                tolerance=rules.tolerance_of(gate, comparison.champion.get(comparison.metric)),
                excluded=len(holdout) - comparison.rows,
                relative_tolerance=gate.relative_tolerance,
                detectable=detectable_from(low, high) if low is not None and high is not None else None,
            )
        results += [result, calibration]
    results.append(parity_result(config, estimator, metadata, model_dir, holdout))
    try:
        latency, why_not = measure_latency(config, model_dir, champion_dir, metadata, holdout), ""
    except ArtifactError as exc:  # the model as served cannot be loaded: the parity gate says why
        latency, why_not = None, f"the model as served cannot be loaded ({first_line(exc)})"
    results.append(rules.latency_gate(config.gates.latency, latency, why_not))
    results.append(rules.slice_gate(config.gates.slices, metrics.slices))
    distribution = metrics.prediction_distribution
    results.append(
        rules.collapse_gate(config.gates.collapse, metadata.task, metadata.label_list, distribution)
    )
    results.append(drift_result(config, out))
    results.append(rules.label_drift_gate(config.gates.label_drift, read_optional(out / Drift.FILE, Drift)))
    predicted, why_not, excluded = predictions_against_reference(config, estimator, metadata, holdout)
    results.append(
        rules.prediction_drift_gate(
            config.gates.prediction_drift, predicted, why_not, excluded, config.drift.reference is not None
        )
    )
    passed = not rules.check_blockers(results, gate.inconclusive)
    publishable = not rules.publish_blockers(results)
    verdicts = tuple(results)
    return Gates(
        run, metadata.model_sha256, passed, verdicts, section, latency, publishable, gate.inconclusive, drawn
    )


def load_champion(champion_dir: Path, threads: int) -> tuple[Any, ModelMetadata, str]:
    """Return the champion's estimator, metadata, and how it is scored when not by its own pickle.

    Its pickle is loaded only when its signature checks with the key held here. A champion changed
    under this key's signature is refused (exit 2). One this key cannot speak for (signed by another
    key, e.g. CI's, or not at all) is scored through its ONNX form, which runs no code from the
    artefact; with no ONNX form it is refused too (exit 2, naming the key).
    """
    metadata = verify_artifact(champion_dir, "champion")
    try:
        check_signature(champion_dir, metadata, "champion")
    except SignatureError as exc:
        if exc.tampered:
            raise  # changed under this key's signature: refused outright (exit 2)
        onnx = read_compiled(champion_dir, metadata)
        if onnx is None:
            raise ModelError(
                f"{first_line(exc)}, and it has no ONNX form to score safely: gate with the key that signed "
                "it (ML_CICD_SIGNING_KEY)"
            ) from None
        try:
            served = ServedForm(onnx, metadata, threads)
        except ValueError as bad:
            raise ArtifactError(f"{champion_dir}: {bad}") from None
        reason = first_line(exc).split(": ", 1)[-1].removesuffix("; refusing to load it")
        return served, metadata, f"was scored from its ONNX form, not its pickle ({reason})"
    estimator, metadata = load_artifact(champion_dir, "champion")
    return estimator, metadata, ""


def champion_comparison(
    config: Config,
    estimator: Any,
    metadata: ModelMetadata,
    champion: Any,
    champion_meta: ModelMetadata,
    holdout: pd.DataFrame,
) -> tuple[Comparison | None, Result, Result, Calibration | None]:
    """Score both models on the held-out rows the champion never trained on; return the comparison, the
    ``no_regression`` verdict, the ``calibration`` verdict and both reliability curves (the same rows,
    the same predictions; no curves for a regressor)."""
    gate = config.gates.champion
    try:
        unseen = held_out(holdout, champion_meta.split)
    except DataError as exc:
        message = f"cannot tell which held-out rows the champion trained on: {exc}"
        threshold = None if gate.relative_tolerance is not None else -gate.tolerance
        error = Result("no_regression", Status.ERROR, gate.required, None, threshold, message)
        return (
            None,
            error,
            replace(error, name="calibration", required=config.gates.calibration.required),
            None,
        )
    rows = holdout.loc[unseen].reset_index(drop=True)
    excluded = len(holdout) - len(rows)
    if len(rows) == 0:
        empty = Comparison(gate.metric or "", {}, {}, None, None, None, gate.bootstrap, gate.confidence, 0)
        calibrated = (
            rules.champion_gate(config.gates.calibration, empty, excluded=excluded, name="calibration")
            if metadata.task == "classification"
            else calibration_skipped(config, metadata, "")
        )
        return empty, rules.champion_gate(gate, empty, excluded=excluded), calibrated, None
    y_true, cand_pred = _scored(estimator, metadata, rows, "candidate")
    y_champ, champ_pred = _scored(champion, champion_meta, rows, "champion")
    if len(y_champ) != len(y_true):
        raise ModelError(f"the champion scored {len(y_champ)} rows, the candidate {len(y_true)}")

    def judged(name: str, each: ChampionGate) -> tuple[Comparison, Result]:
        comparison = compare(
            each.metric,
            metadata.task,
            y_true,
            cand_pred,
            champ_pred,
            metadata.label_list,
            metadata.positive_label,
            each.bootstrap,
            each.confidence,
        )
        return comparison, rules.champion_gate(each, comparison, excluded=excluded, name=name)

    comparison, verdict = judged("no_regression", gate)
    if metadata.task != "classification":
        return comparison, verdict, calibration_skipped(config, metadata, ""), None
    labels, positive = metadata.label_list, metadata.positive_label
    drawn = curves(y_true, cand_pred.proba, champ_pred.proba, labels, positive)
    return comparison, verdict, judged("calibration", config.gates.calibration)[1], drawn


def calibration_skipped(config: Config, metadata: ModelMetadata, why: str) -> Result:
    """Return the calibration gate's result when nothing is compared: no champion, or a regressor."""
    gate = config.gates.calibration
    if metadata.task != "classification":
        why = "a regressor gives no probabilities to calibrate"
    return Result("calibration", Status.SKIPPED, gate.required, None, -gate.tolerance, why or "no champion")


def measure_latency(
    config: Config, model_dir: Path, champion_dir: Path | None, metadata: ModelMetadata, holdout: pd.DataFrame
) -> Latency:
    """Time single-record predicts of each model as served (alternately with the champion, when there is one).

    Each model is loaded as the server loads it (ONNX Runtime when it ships an ONNX form) and fed
    the same JSON records, which carry the features of both; each reads its own.
    """
    threads = config.serving.threads
    served = [load_model(path, threads=threads) for path in (model_dir, champion_dir) if path is not None]
    features = {f.name: f for model in served for f in model.features}
    rows = usable_rows(holdout, metadata)
    for model in served[1:]:
        rows = rows.join(
            usable_rows(holdout, model.metadata).drop(columns=list(rows.columns), errors="ignore")
        )
    booleans = {name for name, f in features.items() if f.type == "boolean"}
    records = json_records(rows[list(features)], booleans)
    samples = config.gates.latency.samples
    timings = time_single_rows([model.predict for model in served], records, samples)
    cand_p50, cand_p95 = (float(v) for v in np.percentile(timings[0], [50, 95]))
    champ_p50 = champ_p95 = None
    champion_runtime = None
    ratio = None
    if len(served) > 1:
        champ_p50, champ_p95 = (float(v) for v in np.percentile(timings[1], [50, 95]))
        ratio = paired_ratio(timings[0], timings[1])  # the pairs: timed one after the other
        champion_runtime = served[1].runtime
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    return Latency(
        served[0].runtime,
        champion_runtime,
        cand_p50,
        cand_p95,
        champ_p50,
        champ_p95,
        ratio.value if ratio is not None else None,
        samples,
        measured_at,
        ratio.low if ratio is not None else None,
        ratio.high if ratio is not None else None,
    )


def parity_result(
    config: Config, estimator: Any, metadata: ModelMetadata, model_dir: Path, holdout: pd.DataFrame
) -> Result:
    """Check the served ONNX model against the scikit-learn model on the held-out rows, in this run."""
    compiled = metadata.compiled
    if compiled is None or compiled.file is None:
        return rules.parity_gate(config.gates.parity, compiled, None)
    try:
        onnx = read_compiled(model_dir, metadata)
        assert onnx is not None
        session = load_compiled(onnx, metadata.features, metadata.labels, config.serving.threads)
    except (ArtifactError, ValueError) as exc:
        return rules.parity_gate(config.gates.parity, compiled, None, first_line(exc))
    rows = usable_rows(holdout, metadata).iloc[:PARITY_ROWS]
    classifier = metadata.task == "classification"
    parity = measure_parity(estimator, session, rows, classifier, config.serving.parity_limit)
    return rules.parity_gate(config.gates.parity, compiled, parity)


def predictions_against_reference(
    config: Config, estimator: Any, metadata: ModelMetadata, holdout: pd.DataFrame
) -> tuple[FeatureDrift | None, str, int]:
    """Compare the candidate's predictions on the reference rows it never trained on with those on its held-out rows.

    Like with like: both sides are rows the candidate never saw. Reference rows on its training
    side (by its split rule) are left out, since a model answers its own training rows with more
    confidence (an overfit forest "drifts" on an unchanged table otherwise); returns how many.
    """
    if config.drift.reference is None:
        return None, "drift.reference is not configured", 0
    reference = read_table(config.drift.reference)
    try:
        rows = feature_rows(reference, metadata, config.drift.reference)
        unseen = held_out(reference, metadata.split)
    except DataError as exc:
        return None, f"cannot tell which reference rows the candidate trained on: {exc}", 0
    if not unseen.any():
        why = f"none of the {len(reference):,} reference rows falls on the candidate's held-out side"
        return None, why, len(reference)
    on_reference, kind = model_outputs(estimator, rows.loc[unseen], metadata)
    on_holdout, _ = model_outputs(estimator, usable_rows(holdout, metadata)[metadata.feature_names], metadata)
    excluded = int((~unseen).sum())
    return prediction_drift(on_reference, on_holdout, kind, config.drift), "", excluded


def drift_result(config: Config, out: Path) -> Result:
    """Return the drift gate from ``drift.json`` (an error when a configured reference produced none)."""
    drift = read_optional(out / Drift.FILE, Drift)
    configured = config.drift.reference is not None
    why = (
        f"no drift.json in {out}: validate writes it when drift.reference is set"
        if configured
        else "no drift.json: drift.reference is not configured"
    )
    return rules.drift_gate(config.gates.drift, drift, why, configured)


def _scored(
    estimator: Any, metadata: ModelMetadata, holdout: pd.DataFrame, who: str
) -> tuple[np.ndarray, Predictions]:
    """Score one model on the held-out rows; an error names which model it was."""
    try:
        y_true, predictions, _ = score_rows(estimator, metadata, holdout)
    except PipelineError as exc:
        raise type(exc)(f"{who}: {exc}") from None
    return y_true, predictions


def resolve_champion(argument: str | None, config: Config) -> tuple[Path | None, str]:
    """Return the champion directory (or None) and, when None, why there is none."""
    if argument is not None:
        path = Path(argument)
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            why = f"first model, or no production alias in registry {config.registry.path}"
            return None, f"no champion at {path}: nothing to compare ({why})"
        return path, ""
    registry = Path(config.registry.path)
    found = production_model_dir(registry)
    if found is None:
        return (
            None,
            f"no champion: first model, nothing to compare (registry {registry} has no production alias)",
        )
    return found, ""


def check_compatible(candidate: ModelMetadata, champion: ModelMetadata, where: Path) -> None:
    """Refuse a champion of another task, target or label set (they cannot be compared)."""
    for key in ("task", "target"):
        if getattr(candidate, key) != getattr(champion, key):
            raise ModelError(
                f"champion {where}: {key} {getattr(champion, key)!r} differs from the candidate's "
                f"{getattr(candidate, key)!r}; cannot compare"
            )
    if candidate.task == "classification" and candidate.labels != champion.labels:
        raise ModelError(
            f"champion {where}: labels {list(champion.label_list)!r} differ from the candidate's "
            f"{list(candidate.label_list)!r}; cannot compare"
        )

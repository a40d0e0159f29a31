"""Apply the quality gates to an evaluated candidate; exit 1 when a required gate fails.

    python -m pipeline gate --config configs/pipeline.toml --out out --champion out/champion

Reads ``metrics.json``, ``model/``, ``holdout.parquet`` and (when present) ``drift.json``
from --out and writes ``gates.json``. Every gate is evaluated and reported: metric
thresholds, no regression against the champion (re-scored on the same held-out rows,
judged with a paired bootstrap), latency p95, slice floors, class collapse and data
drift. Without --champion the champion is the registry's ``production`` alias.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.artifact import load_artifact
from model.codec import read_optional, read_record, write_record
from model.records import Champion, Drift, Gates, Metrics, ModelMetadata, Result
from pipeline.commands.options import add_out
from pipeline.config import Config, load_config
from pipeline.core import gates as rules
from pipeline.core.bootstrap import Predictions, compare
from pipeline.core.evaluation import score_rows
from pipeline.errors import CheckFailed, ModelError, PipelineError
from pipeline.io import outdir
from pipeline.io.registry import production_model_dir, version_of
from pipeline.render.console import gate_table


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``gate`` options."""
    add_out(parser, "artefact directory to read and write (default out)")
    parser.add_argument(
        "--champion",
        default=None,
        help="champion artefact directory (default: the registry's production alias); "
        "a missing directory means no champion",
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate every gate, write ``gates.json``, print the table; raise CheckFailed on a required failure."""
    config = load_config(args.config)
    out = Path(args.out)
    started = time.perf_counter()
    results, champion = evaluate_gates(config, out, args.champion)
    passed = not any(r.blocking for r in results)
    write_record(out / Gates.FILE, Gates(passed=passed, gates=tuple(results), champion=champion))
    print(gate_table(results))
    if not passed:
        raise CheckFailed(rules.summary(results))
    print(f"gates: {rules.summary(results)} ({time.perf_counter() - started:.2f} s)")
    return 0


def evaluate_gates(
    config: Config, out: Path, champion_arg: str | None
) -> tuple[list[Result], Champion | None]:
    """Load everything the gates need from ``out`` and return the results and the champion comparison."""
    metrics = read_record(out / Metrics.FILE, Metrics, "metrics.json (from `evaluate`)")
    model_dir = out / outdir.MODEL
    if not (model_dir / ModelMetadata.FILE).is_file():
        raise ModelError(f"{model_dir}: candidate model artefact not found (run `python -m pipeline train`)")
    estimator, metadata = load_artifact(model_dir)
    results = [rules.metric_gate(gate, metrics.overall) for gate in config.gates.metric]

    champion_dir, why = resolve_champion(champion_arg, config)
    section: Champion | None = None
    comparison = None
    if champion_dir is not None:
        champ_estimator, champ_meta = load_artifact(champion_dir)
        check_compatible(metadata, champ_meta, champion_dir)
        holdout_path = out / outdir.HOLDOUT
        holdout = outdir.read_holdout(holdout_path)
        y_true, cand_pred = _scored(estimator, metadata, holdout, f"candidate on {holdout_path}")
        y_champ, champ_pred = _scored(champ_estimator, champ_meta, holdout, f"champion {champion_dir}")
        if len(y_champ) != len(y_true):
            raise ModelError(
                f"champion {champion_dir} scored {len(y_champ)} rows, the candidate {len(y_true)}"
            )
        gate = config.gates.champion
        comparison = compare(
            gate.metric,
            metadata.task,
            y_true,
            cand_pred,
            champ_pred,
            metadata.label_list,
            metadata.positive_label,
            gate.bootstrap,
            gate.confidence,
        )
        section = Champion(
            path=str(champion_dir),
            version=version_of(champion_dir),
            model_sha256=champ_meta.model_sha256,
            tolerance=gate.tolerance,
            **asdict(comparison),
        )
    results.append(rules.champion_gate(config.gates.champion, comparison, why))
    results.append(rules.latency_gate(config.gates.latency, metrics.latency))
    results.append(rules.slice_gate(config.gates.slices, metrics.slices))
    results.append(
        rules.collapse_gate(
            config.gates.collapse, metadata.task, metadata.label_list, metrics.prediction_distribution
        )
    )
    drift = read_optional(out / Drift.FILE, Drift)
    if drift is not None:
        results.append(rules.drift_gate(config.gates.drift, drift))
    else:
        reason = (
            "no drift.json: drift.reference is not configured"
            if config.drift.reference is None
            else f"no drift.json in {out} (validate writes it when drift.reference is set)"
        )
        results.append(rules.drift_gate(config.gates.drift, None, reason))
    return results, section


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
            return None, f"no champion at {path}"
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

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
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.artifact import load_artifact
from model.files import write_json_atomic
from pipeline.config import (
    ChampionGate,
    CollapseGate,
    Config,
    DriftGate,
    LatencyGate,
    MetricGate,
    SliceGate,
    load_config,
)
from pipeline.errors import CheckFailed, DataError, ModelError, PipelineError
from pipeline.evaluate import predict as predict_rows
from pipeline.evaluate import usable_rows
from pipeline.metrics import DEFAULT_METRIC, DIRECTION, metric_names, score

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
BOOTSTRAP_SEED = 0  # fixed: the same inputs always give the same interval
CHUNK_CELLS = 2_000_000  # resamples x rows held in memory at once
COLLAPSE_STD = 1e-9  # regression predictions with a smaller std (relative to |mean|) are constant


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate, as reported in ``gates.json`` and the tables."""

    name: str
    status: str  # passed | failed | skipped
    required: bool
    observed: Any
    threshold: Any
    message: str

    @property
    def blocking(self) -> bool:
        """Return True when this gate failed and is required."""
        return self.status == FAILED and self.required


@dataclass(frozen=True)
class Predictions:
    """One model's predictions on the held-out rows (``proba`` columns follow ``labels``)."""

    y_pred: np.ndarray
    proba: np.ndarray | None


@dataclass(frozen=True)
class Comparison:
    """Candidate versus champion on the same held-out rows."""

    metric: str
    candidate: dict[str, float | None]
    champion: dict[str, float | None]
    delta: float | None  # positive: the candidate is better
    ci_low: float | None
    ci_high: float | None
    resamples: int
    confidence: float
    rows: int


# ---------------------------------------------------------------------------------------------
# Pure gate logic: plain data in, GateResult out.


def metric_gate(gate: MetricGate, metrics: dict[str, Any]) -> GateResult:
    """Compare one evaluated metric with its threshold in the configured direction."""
    name = f"metric:{gate.metric}"
    sign = ">=" if gate.direction == "higher" else "<="
    value = metrics.get(gate.metric)
    if gate.metric not in metrics:
        known = ", ".join(sorted(metrics)) or "none"
        return GateResult(
            name,
            FAILED,
            gate.required,
            None,
            gate.threshold,
            f"metric {gate.metric!r} not evaluated (have: {known})",
        )
    if value is None:
        return GateResult(
            name,
            FAILED,
            gate.required,
            None,
            gate.threshold,
            f"{gate.metric} is undefined on the held-out rows",
        )
    ok = value >= gate.threshold if gate.direction == "higher" else value <= gate.threshold
    verdict = "meets" if ok else "misses"
    return GateResult(
        name,
        PASSED if ok else FAILED,
        gate.required,
        value,
        gate.threshold,
        f"{gate.metric} {value:.4f} {verdict} {sign} {gate.threshold:g}",
    )


def champion_gate(gate: ChampionGate, comparison: Comparison | None, why_skipped: str = "") -> GateResult:
    """Judge the paired comparison with the champion.

    ``delta`` is the candidate's metric minus the champion's, sign-flipped for metrics where
    lower is better, so a positive delta always means the candidate is better. The gate fails
    only when both hold:

    * the point delta is worse than ``-tolerance`` (a drop big enough to matter), and
    * the bootstrap interval of the delta lies wholly below zero (``ci_high < 0``), i.e.
      the drop is real and not resampling noise.

    A tie (same model, or a drop within the tolerance) therefore passes, and so does a
    large but noisy drop whose interval still reaches zero; a clear regression fails.
    """
    name = "no_regression"
    threshold = -gate.tolerance
    if comparison is None:
        return GateResult(name, SKIPPED, gate.required, None, threshold, why_skipped or "no champion")
    delta, low, high = comparison.delta, comparison.ci_low, comparison.ci_high
    metric = comparison.metric
    if delta is None or low is None or high is None:
        return GateResult(
            name,
            FAILED,
            gate.required,
            None,
            threshold,
            f"{metric} is undefined on the held-out rows; cannot compare",
        )
    cand, champ = comparison.candidate[metric], comparison.champion[metric]
    pct = f"{comparison.confidence:.0%}"
    detail = (
        f"{metric} candidate {cand:.4f} vs champion {champ:.4f}, delta {delta:+.4f} "
        f"({pct} CI {low:+.4f} .. {high:+.4f}, tolerance {gate.tolerance:g})"
    )
    if delta < threshold and high < 0:
        return GateResult(name, FAILED, gate.required, delta, threshold, f"regression: {detail}")
    if delta < threshold:
        return GateResult(name, PASSED, gate.required, delta, threshold, f"drop not significant: {detail}")
    verdict = "better" if low > 0 else "no worse"
    return GateResult(name, PASSED, gate.required, delta, threshold, f"{verdict}: {detail}")


def latency_gate(gate: LatencyGate, latency: dict[str, Any] | None) -> GateResult:
    """Compare single-row p95 prediction latency with the limit."""
    name = "latency_p95"
    observed = (latency or {}).get("single_p95_ms")
    if observed is None:
        return GateResult(
            name, SKIPPED, gate.required, None, gate.p95_ms, "metrics.json has no latency.single_p95_ms"
        )
    ok = observed <= gate.p95_ms
    sign = "<=" if ok else ">"
    return GateResult(
        name,
        PASSED if ok else FAILED,
        gate.required,
        observed,
        gate.p95_ms,
        f"single-row p95 {observed:.2f} ms {sign} {gate.p95_ms:g} ms",
    )


def slice_gate(gate: SliceGate, slices: dict[str, Any] | None) -> GateResult:
    """Require every evaluated slice to reach the floor on the configured metric."""
    name = "slice_floor"
    if gate.metric is None or gate.min is None:
        return GateResult(
            name, SKIPPED, gate.required, None, None, "no slice floor configured (gates.slices)"
        )
    values = slice_values(slices or {}, gate.metric)
    measured = {key: value for key, value in values.items() if value is not None}
    if not measured:
        return GateResult(
            name, SKIPPED, gate.required, None, gate.min, f"no slice has {gate.metric} evaluated"
        )
    below = sorted((value, key) for key, value in measured.items() if value < gate.min)
    worst_value, worst_key = min((value, key) for key, value in measured.items())
    if below:
        listed = ", ".join(f"{key} {value:.4f}" for value, key in below[:5])
        more = f" and {len(below) - 5} more" if len(below) > 5 else ""
        message = f"{len(below)} of {len(measured)} slices below {gate.metric} {gate.min:g}: {listed}{more}"
        return GateResult(name, FAILED, gate.required, worst_value, gate.min, message)
    message = (
        f"all {len(measured)} slices reach {gate.metric} {gate.min:g} (worst {worst_key} {worst_value:.4f})"
    )
    return GateResult(name, PASSED, gate.required, worst_value, gate.min, message)


def slice_values(slices: dict[str, Any], metric: str) -> dict[str, float | None]:
    """Return ``{"column=value": metric}`` from the ``slices`` section of ``metrics.json``."""
    found: dict[str, float | None] = {}
    for column, groups in slices.items():
        if not isinstance(groups, dict):
            continue
        for value, entry in groups.items():
            if not isinstance(entry, dict):
                continue
            if metric in entry:  # slices below slices.min_rows carry "skipped" instead
                found[f"{column}={value}"] = entry[metric]
    return found


def collapse_gate(
    gate: CollapseGate, task: str, labels: Sequence[Any], distribution: dict[str, Any] | None
) -> GateResult:
    """Fail when a class (almost) never gets predicted, or regression predictions are constant."""
    name = "class_collapse"
    if not distribution:
        return GateResult(
            name, SKIPPED, gate.required, None, None, "metrics.json has no prediction_distribution"
        )
    if task == "regression":
        std = distribution.get("std")
        if std is None:
            return GateResult(name, SKIPPED, gate.required, None, None, "prediction_distribution has no std")
        floor = COLLAPSE_STD * max(1.0, abs(float(distribution.get("mean") or 0.0)))
        ok = std > floor
        message = f"prediction std {std:.4g}" + ("" if ok else ": the model predicts a constant")
        return GateResult(name, PASSED if ok else FAILED, gate.required, std, floor, message)
    fractions = class_fractions(distribution)
    shares = {str(label): float(fractions.get(str(label), 0.0)) for label in labels}
    if not shares:
        return GateResult(name, SKIPPED, gate.required, None, None, "model metadata lists no labels")
    low_label = min(shares, key=lambda label: shares[label])
    low = shares[low_label]
    rare = [label for label, share in shares.items() if share < gate.min_class_fraction]
    if rare:
        listed = ", ".join(f"{label} {shares[label]:.1%}" for label in rare)
        message = f"classes below {gate.min_class_fraction:.1%} of predictions: {listed}"
        return GateResult(name, FAILED, gate.required, low, gate.min_class_fraction, message)
    message = (
        f"every class keeps >= {gate.min_class_fraction:.1%} of predictions (lowest {low_label} {low:.1%})"
    )
    return GateResult(name, PASSED, gate.required, low, gate.min_class_fraction, message)


def class_fractions(distribution: dict[str, Any]) -> dict[str, float]:
    """Return ``{label: share of predictions}`` from ``metrics.json``'s ``prediction_distribution``."""
    return {
        str(k): float(v)
        for k, v in distribution.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def drift_gate(gate: DriftGate, drift: dict[str, Any] | None, why_skipped: str = "") -> GateResult:
    """Fail when the drift check (``drift.json``) did not pass."""
    name = "drift"
    if drift is None:
        return GateResult(name, SKIPPED, gate.required, None, None, why_skipped or "no drift.json")
    drifted = drifted_features(drift)
    limit = (drift.get("limits") or {}).get("max_drifted_features")
    if drift.get("passed") is False:
        listed = ", ".join(drifted[:8]) or "see drift.json"
        message = f"{len(drifted)} drifted feature(s) beyond the limits: {listed}"
        return GateResult(name, FAILED, gate.required, len(drifted), limit, message)
    message = f"{len(drifted)} drifted feature(s), within the limits"
    return GateResult(name, PASSED, gate.required, len(drifted), limit, message)


def drifted_features(drift: dict[str, Any]) -> list[str]:
    """Return the names of drifted features listed in ``drift.json`` (see pipeline/drift.py)."""
    return [str(name) for name in drift.get("drifted") or []]


# ---------------------------------------------------------------------------------------------
# Paired bootstrap: every metric as a function of per-row weights (resample counts), vectorised.


def paired_bootstrap(
    metric: str,
    task: str,
    y_true: np.ndarray,
    candidate: Predictions,
    champion: Predictions,
    labels: Sequence[Any] = (),
    positive_label: Any = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float | None, float | None]:
    """Return the ``confidence`` interval of the improvement delta over paired resamples.

    Row indices are drawn with replacement; each resample scores both models on the same
    rows. The delta is positive when the candidate is better (see ``DIRECTION``).
    Resamples where the metric is undefined (e.g. a single class) are left out.
    """
    y_true = np.asarray(y_true)
    rows = len(y_true)
    if rows == 0:
        return None, None
    cand_fn = weighted_metric(metric, task, y_true, candidate, labels, positive_label)
    champ_fn = weighted_metric(metric, task, y_true, champion, labels, positive_label)
    sign = 1.0 if DIRECTION[metric] == "higher" else -1.0
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_CELLS // rows)
    deltas: list[np.ndarray] = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = rng.integers(0, rows, size=(size, rows))
        offsets = (np.arange(size) * rows)[:, None]
        weights = np.bincount((draws + offsets).ravel(), minlength=size * rows).reshape(size, rows)
        weights = weights.astype(float)
        deltas.append(sign * (cand_fn(weights) - champ_fn(weights)))
    values = np.concatenate(deltas)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def weighted_metric(
    metric: str,
    task: str,
    y_true: np.ndarray,
    predictions: Predictions,
    labels: Sequence[Any] = (),
    positive_label: Any = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """Return ``f(weights) -> values``: ``metric`` for each row of a (resamples, rows) weight matrix.

    With all weights 1 this equals :func:`pipeline.metrics.score` (tests hold the two equal).
    Per-row quantities are computed once, so each resample costs a few matrix products.
    """
    y = np.asarray(y_true)
    rows = len(y)
    if task == "regression":
        return _regression_metric(metric, y.astype(float), np.asarray(predictions.y_pred, dtype=float))
    labels = list(labels)
    pred = np.asarray(predictions.y_pred)
    proba = predictions.proba
    binary = len(labels) == 2
    pos = positive_label if positive_label is not None else (labels[-1] if labels else None)
    if metric == "accuracy":
        correct = (y == pred).astype(float)
        return lambda w: w @ correct / rows
    if metric in {"precision", "recall", "f1", "balanced_accuracy"}:
        classes = [pos] if binary and metric != "balanced_accuracy" else labels
        truth = np.stack([(y == c) for c in classes], axis=1).astype(float)
        said = np.stack([(pred == c) for c in classes], axis=1).astype(float)
        hits = truth * said
        return lambda w: _count_metric(metric, w @ hits, w @ said, w @ truth)
    if proba is None:
        return lambda w: np.full(w.shape[0], np.nan)
    if metric == "log_loss":
        index = {label: i for i, label in enumerate(labels)}
        column = np.array([index.get(v, -1) for v in y.tolist()])
        if (column < 0).any():
            return lambda w: np.full(w.shape[0], np.nan)
        p = proba / proba.sum(axis=1, keepdims=True)
        eps = np.finfo(p.dtype).eps
        loss = -np.log(np.clip(p[np.arange(rows), column], eps, 1 - eps))
        return lambda w: w @ loss / rows
    if metric == "roc_auc":
        if binary:
            auc = _weighted_auc(y == pos, proba[:, labels.index(pos)])
            return auc
        per_class = [_weighted_auc(y == c, proba[:, i]) for i, c in enumerate(labels)]
        return lambda w: np.mean(np.stack([f(w) for f in per_class]), axis=0)
    raise ValueError(f"no bootstrap for metric {metric!r}")


def _count_metric(metric: str, tp: np.ndarray, said: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Return precision/recall/F1 (macro over columns) or balanced accuracy from weighted counts."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "balanced_accuracy":
            recall = np.where(truth > 0, tp / truth, np.nan)
            return np.nanmean(recall, axis=1)
        if metric == "precision":
            value = np.where(said > 0, tp / said, 0.0)
        elif metric == "recall":
            value = np.where(truth > 0, tp / truth, 0.0)
        else:
            denominator = said + truth
            value = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    return np.asarray(value.mean(axis=1))


def _weighted_auc(positive: np.ndarray, scores: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Return ``f(weights)``: ROC AUC per weight row, ties counted half (rank formula)."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    pos = positive[order].astype(float)
    neg = 1.0 - pos

    def auc(weights: np.ndarray) -> np.ndarray:
        w = weights[:, order]
        pos_groups = np.add.reduceat(w * pos, starts, axis=1)
        neg_groups = np.add.reduceat(w * neg, starts, axis=1)
        neg_below = np.cumsum(neg_groups, axis=1) - neg_groups
        wins = (pos_groups * (neg_below + 0.5 * neg_groups)).sum(axis=1)
        pairs = pos_groups.sum(axis=1) * neg_groups.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(pairs > 0, wins / pairs, np.nan)

    return auc


def _regression_metric(metric: str, y: np.ndarray, pred: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    rows = len(y)
    err = pred - y
    if metric == "mae":
        absolute = np.abs(err)
        return lambda w: w @ absolute / rows
    if metric == "rmse":
        squared = err**2
        return lambda w: np.sqrt(w @ squared / rows)
    if metric == "r2":
        squared, y2 = err**2, y**2

        def r2(w: np.ndarray) -> np.ndarray:
            total = w @ y2 - (w @ y) ** 2 / rows
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(total > 0, 1 - (w @ squared) / total, np.nan)

        return r2
    raise ValueError(f"no bootstrap for metric {metric!r}")


# ---------------------------------------------------------------------------------------------
# I/O: load the candidate, the champion and the held-out rows.


def score_holdout(
    estimator: Any, metadata: dict[str, Any], holdout: Any, who: str
) -> tuple[np.ndarray, Predictions]:
    """Return the target and a model's predictions on the held-out rows, prepared exactly as ``evaluate`` does."""
    try:
        rows = usable_rows(holdout, metadata)
        names = [str(f["name"]) for f in metadata["features"]]
        labels = list(metadata.get("labels") or [])
        y_pred, proba = predict_rows(estimator, rows[names], str(metadata["task"]), labels)
    except PipelineError as exc:
        raise type(exc)(f"{who}: {exc}") from None
    return rows[str(metadata["target"])].to_numpy(), Predictions(y_pred=y_pred, proba=proba)


def compare(
    gate: ChampionGate,
    task: str,
    y_true: np.ndarray,
    candidate: Predictions,
    champion: Predictions,
    labels: Sequence[Any],
    positive_label: Any,
) -> Comparison:
    """Score both models on the same rows and bootstrap the delta of the gate's metric."""
    metric = gate.metric or DEFAULT_METRIC[task]
    if metric not in metric_names(task):
        raise ModelError(
            f"gates.champion.metric {metric!r} is not a {task} metric: {', '.join(metric_names(task))}"
        )
    cand = score(task, y_true, candidate.y_pred, candidate.proba, labels, positive_label)
    champ = score(task, y_true, champion.y_pred, champion.proba, labels, positive_label)
    delta = None
    if cand[metric] is not None and champ[metric] is not None:
        diff = float(cand[metric]) - float(champ[metric])  # type: ignore[arg-type]
        delta = diff if DIRECTION[metric] == "higher" else -diff
    low, high = paired_bootstrap(
        metric, task, y_true, candidate, champion, labels, positive_label, gate.bootstrap, gate.confidence
    )
    return Comparison(metric, cand, champ, delta, low, high, gate.bootstrap, gate.confidence, len(y_true))


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: {what} must be a JSON object")
    return data


def overall_metrics(metrics_json: dict[str, Any]) -> dict[str, Any]:
    """Return the overall metric values of ``metrics.json`` (its ``overall`` object)."""
    overall = metrics_json.get("overall")
    if not isinstance(overall, dict):
        raise DataError("metrics.json has no 'overall' object; run `python -m pipeline evaluate` again")
    return overall


def resolve_champion(argument: str | None, config: Config) -> tuple[Path | None, str]:
    """Return the champion directory (or None) and, when None, why there is none."""
    if argument is not None:
        path = Path(argument)
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            return None, f"no champion at {path}"
        return path, ""
    from pipeline.registry import production_model_dir

    registry = Path(config.registry.path)
    found = production_model_dir(registry)
    if found is None:
        return (
            None,
            f"no champion: first model, nothing to compare (registry {registry} has no production alias)",
        )
    return found, ""


def evaluate_gates(
    config: Config, out: Path, champion_arg: str | None
) -> tuple[list[GateResult], dict[str, Any] | None]:
    """Load everything the gates need from ``out`` and return the results and the champion section."""
    import pandas as pd

    metrics_json = _read_json(out / "metrics.json", "metrics.json (from `evaluate`)")
    overall = overall_metrics(metrics_json)
    model_dir = out / "model"
    if not (model_dir / "metadata.json").is_file():
        raise ModelError(f"{model_dir}: candidate model artefact not found (run `python -m pipeline train`)")
    estimator, metadata = load_artifact(model_dir)
    task = str(metadata.get("task", config.data.task))
    labels = list(metadata.get("labels") or [])
    positive = metadata.get("positive_label", config.data.positive_label)

    results = [metric_gate(gate, overall) for gate in config.gates.metric]

    champion_dir, why = resolve_champion(champion_arg, config)
    section: dict[str, Any] | None = None
    comparison: Comparison | None = None
    if champion_dir is not None:
        champ_estimator, champ_meta = load_artifact(champion_dir)
        _check_compatible(metadata, champ_meta, champion_dir)
        holdout_path = out / "holdout.parquet"
        if not holdout_path.is_file():
            raise DataError(
                f"{holdout_path}: held-out rows not found (written by `python -m pipeline train`)"
            )
        try:
            holdout = pd.read_parquet(holdout_path)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DataError(f"{holdout_path}: unreadable Parquet file ({exc})") from None
        y_true, cand_pred = score_holdout(estimator, metadata, holdout, f"candidate on {holdout_path}")
        y_champ, champ_pred = score_holdout(champ_estimator, champ_meta, holdout, f"champion {champion_dir}")
        if len(y_champ) != len(y_true):
            raise ModelError(
                f"champion {champion_dir} scored {len(y_champ)} rows, the candidate {len(y_true)}"
            )
        comparison = compare(config.gates.champion, task, y_true, cand_pred, champ_pred, labels, positive)
        section = {
            "path": str(champion_dir),
            "version": champion_version(champion_dir, champ_meta),
            "model_sha256": champ_meta.get("model_sha256"),
            **asdict(comparison),
            "tolerance": config.gates.champion.tolerance,
        }
    results.append(champion_gate(config.gates.champion, comparison, why))
    results.append(latency_gate(config.gates.latency, metrics_json.get("latency")))
    results.append(slice_gate(config.gates.slices, metrics_json.get("slices")))
    results.append(
        collapse_gate(config.gates.collapse, task, labels, metrics_json.get("prediction_distribution"))
    )
    drift_path = out / "drift.json"
    if drift_path.is_file():
        results.append(drift_gate(config.gates.drift, _read_json(drift_path, "drift.json")))
    else:
        reason = (
            "no drift.json: drift.reference is not configured"
            if config.drift.reference is None
            else f"no drift.json in {out} (validate writes it when drift.reference is set)"
        )
        results.append(drift_gate(config.gates.drift, None, reason))
    return results, section


def champion_version(directory: Path, metadata: dict[str, Any]) -> int | None:
    """Return the champion's registry version: metadata ``registry_version``, else its lineage file."""
    if metadata.get("registry_version") is not None:
        return int(metadata["registry_version"])
    from pipeline.registry import version_of

    return version_of(directory)


def _check_compatible(candidate: dict[str, Any], champion: dict[str, Any], where: Path) -> None:
    for key in ("task", "target"):
        if candidate.get(key) != champion.get(key):
            raise ModelError(
                f"champion {where}: {key} {champion.get(key)!r} differs from the candidate's "
                f"{candidate.get(key)!r}; cannot compare"
            )
    if candidate.get("task") == "classification" and candidate.get("labels") != champion.get("labels"):
        raise ModelError(
            f"champion {where}: labels {champion.get('labels')!r} differ from the candidate's "
            f"{candidate.get('labels')!r}; cannot compare"
        )


def format_table(results: Sequence[GateResult]) -> str:
    """Return the gate results as an aligned plain-text table."""
    rows = [("gate", "status", "required", "observed", "threshold", "message")]
    rows += [
        (r.name, r.status, "yes" if r.required else "no", fmt(r.observed), fmt(r.threshold), r.message)
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5] for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def fmt(value: Any) -> str:
    """Return a short human form of an observed value or threshold."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def summary(results: Sequence[GateResult]) -> str:
    """Return a one-line verdict naming the failed gates."""
    blocking = [r for r in results if r.blocking]
    advisory = [r for r in results if r.status == FAILED and not r.required]
    if blocking:
        named = "; ".join(f"{r.name} ({r.message})" for r in blocking)
        return f"{len(blocking)} required gate(s) failed: {named}"
    note = f" ({len(advisory)} advisory failed: {', '.join(r.name for r in advisory)})" if advisory else ""
    return f"all required gates passed{note}"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``gate`` options."""
    parser.add_argument("--out", default="out", help="artefact directory to read and write (default out)")
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
    payload = {"passed": passed, "gates": [asdict(r) for r in results], "champion": champion}
    write_json_atomic(out / "gates.json", _finite(payload))
    print(format_table(results))
    if not passed:
        raise CheckFailed(summary(results))
    print(f"gates: {summary(results)} ({time.perf_counter() - started:.2f} s)")
    return 0


def _finite(value: Any) -> Any:
    """Return ``value`` with NaN/inf floats replaced by None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value

"""The quality gates as pure rules: plain data in, one :class:`Result` per gate out.

Each gate is data in ``[gates]`` (metric, threshold, requirement); a metric's direction comes
from the metric table (``pipeline/core/metrics.py``). A gate that could not measure what it
checks says ``error``; one whose evidence cannot decide says ``inconclusive``; neither is a
pass. A required gate that does not pass decides the run (``gate`` exits 1); an advisory one is
reported only. Every message names what was compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from model.records import Compiled, Parity, Result, Status
from pipeline.config import (
    ChampionGate,
    CollapseGate,
    DriftGate,
    LabelDriftGate,
    LatencyGate,
    MetricGate,
    ParityGate,
    PredictionDriftGate,
    SliceGate,
)
from pipeline.core.drift import describe
from pipeline.core.metrics import lookup
from pipeline.records import Comparison, Drift, FeatureDrift, Latency

COLLAPSE_STD = 1e-9  # regression predictions with a smaller std (relative to |mean|) are constant


def judged(name: str, ok: bool, required: bool, observed: Any, threshold: Any, message: str) -> Result:
    """Return a passed (``ok``) or failed result."""
    return Result(name, Status.PASSED if ok else Status.FAILED, required, observed, threshold, message)


def metric_gate(gate: MetricGate, metrics: dict[str, Any]) -> Result:
    """Compare one evaluated metric with its threshold in the metric's direction."""
    name = f"metric:{gate.metric}"
    direction = gate.direction or lookup(gate.metric).direction
    sign = ">=" if direction == "higher" else "<="
    value = metrics.get(gate.metric)
    if _nan(value):  # compares false either way: not a measurement
        value = None
    if value is None:
        known = ", ".join(sorted(metrics)) or "none"
        why = (
            f"metric {gate.metric!r} not evaluated (have: {known})"
            if gate.metric not in metrics
            else f"{gate.metric} is undefined on the held-out rows"
        )
        return Result(name, Status.ERROR, gate.required, None, gate.threshold, why)
    ok = value >= gate.threshold if direction == "higher" else value <= gate.threshold
    verdict = "meets" if ok else "misses"
    message = f"{gate.metric} {value:.4f} {verdict} {sign} {gate.threshold:g} on the held-out rows"
    return judged(name, ok, gate.required, value, gate.threshold, message)


def champion_gate(
    gate: ChampionGate, comparison: Comparison | None, why_skipped: str = "", excluded: int = 0
) -> Result:
    """Judge the paired comparison with the champion (a non-inferiority test at ``tolerance``).

    ``delta`` is the candidate's metric minus the champion's, signed so that positive means the
    candidate is better; [low, high] is its bootstrap interval. With ``-tolerance`` as the margin:

    * ``low >= -tolerance``: passed, the candidate is at worst a tie, with confidence;
    * ``high < -tolerance``: failed, the candidate is worse by more than the tolerance;
    * otherwise the interval is too wide to decide: inconclusive, with an estimate of the rows
      that would decide. Fewer than ``min_rows`` rows the champion never trained on is
      inconclusive too; a metric undefined on these rows is an error.
    """
    name = "no_regression"
    threshold = -gate.tolerance
    if comparison is None:
        return Result(name, Status.SKIPPED, gate.required, None, threshold, why_skipped or "no champion")
    rows = f"{comparison.rows} held-out rows the champion never trained on"
    rows += f" ({excluded} it trained on left out)" if excluded else ""
    if comparison.rows < gate.min_rows:
        message = f"only {rows}; at least {gate.min_rows} are needed to compare (gates.champion.min_rows)"
        return Result(name, Status.INCONCLUSIVE, gate.required, None, threshold, message)
    delta, low, high = comparison.delta, comparison.ci_low, comparison.ci_high
    metric = comparison.metric
    if delta is None or low is None or high is None:
        message = f"{metric} is undefined on the {rows}; cannot compare"
        return Result(name, Status.ERROR, gate.required, None, threshold, message)
    cand, champ = comparison.candidate[metric], comparison.champion[metric]
    detail = (
        f"{metric} candidate {cand:.4f} vs champion {champ:.4f}, delta {delta:+.4f} "
        f"({comparison.confidence:.0%} CI {low:+.4f} .. {high:+.4f}, tolerance {gate.tolerance:g}) on {rows}"
    )
    if low >= threshold:
        verdict = "better" if low > 0 else "no worse"
        return Result(name, Status.PASSED, gate.required, delta, threshold, f"{verdict}: {detail}")
    if high < threshold:
        return Result(name, Status.FAILED, gate.required, delta, threshold, f"regression: {detail}")
    needed = rows_to_decide(comparison.rows, delta, low, high, threshold)
    message = f"cannot decide: the interval spans the tolerance; {detail}; {needed}"
    return Result(name, Status.INCONCLUSIVE, gate.required, delta, threshold, message)


def rows_to_decide(rows: int, delta: float, low: float, high: float, threshold: float) -> str:
    """Estimate the held-out rows that would shrink the interval (width ~ 1/sqrt(rows)) clear of the margin."""
    half = (high - low) / 2
    margin = abs(delta - threshold)
    if margin < 1e-12:
        return "the point estimate sits on the tolerance: no number of rows would decide it"
    return f"about {math.ceil(rows * (half / margin) ** 2)} held-out rows would decide"


def latency_gate(gate: LatencyGate, latency: Latency | None, why_not: str = "") -> Result:
    """Limit the candidate's single-row p95: as a ratio to the champion's when one was timed, else absolutely."""
    name = "latency_p95"
    if latency is None:
        message = "single-record latency was not measured" + (f": {why_not}" if why_not else "")
        return Result(name, Status.ERROR, gate.required, None, gate.p95_ms, message)
    timed = f"{latency.samples} single-record predicts each, timed in this run at {latency.measured_at}"
    if latency.ratio is not None and latency.champion_p95_ms is not None:
        ok = latency.ratio <= gate.max_ratio
        message = (
            f"candidate p95 {latency.candidate_p95_ms:.3f} ms ({latency.candidate_runtime}) vs champion "
            f"{latency.champion_p95_ms:.3f} ms ({latency.champion_runtime}): ratio {latency.ratio:.2f} "
            f"{'<=' if ok else '>'} {gate.max_ratio:g} (alternately, {timed})"
        )
        return judged(name, ok, gate.required, latency.ratio, gate.max_ratio, message)
    ok = latency.candidate_p95_ms <= gate.p95_ms
    sign = "<=" if ok else ">"
    message = (
        f"single-record p95 {latency.candidate_p95_ms:.3f} ms ({latency.candidate_runtime}) {sign} "
        f"{gate.p95_ms:g} ms (no champion; {timed})"
    )
    return judged(name, ok, gate.required, latency.candidate_p95_ms, gate.p95_ms, message)


def parity_gate(
    gate: ParityGate, compiled: Compiled | None, parity: Parity | None, error: str = ""
) -> Result:
    """The served ONNX model must answer as scikit-learn does on the held-out rows (skipped when sklearn serves).

    ``parity`` is measured in this run; ``error`` says why it could not be (a missing or corrupt file).
    """
    name = "serving_parity"
    if compiled is None or compiled.file is None:
        why = compiled.message if compiled is not None else "the artefact records no ONNX form"
        return Result(name, Status.SKIPPED, gate.required, None, None, f"no ONNX model is served: {why}")
    if error:
        return Result(
            name, Status.ERROR, gate.required, None, None, f"the served ONNX model cannot be checked: {error}"
        )
    if parity is None or parity.rows == 0:
        return Result(
            name, Status.ERROR, gate.required, None, None, "no held-out rows to compare the runtimes on"
        )
    flips = f"{parity.label_flips} label flips, " if parity.label_flips is not None else ""
    ok = parity.holds
    message = (
        f"ONNX Runtime vs scikit-learn on {parity.rows} held-out rows: {flips}max |Δ {parity.what}| "
        f"{parity.max_abs_diff:.2g} {'<=' if ok else '>'} {parity.limit:.2g}"
    )
    return judged(name, ok, gate.required, parity.max_abs_diff, parity.limit, message)


def slice_gate(gate: SliceGate, slices: dict[str, Any] | None) -> Result:
    """Require every evaluated slice to reach the floor on the configured metric."""
    name = "slice_floor"
    if gate.metric is None or gate.min is None:
        return Result(
            name, Status.SKIPPED, gate.required, None, None, "no slice floor configured (gates.slices)"
        )
    if not slices:
        return Result(name, Status.SKIPPED, gate.required, None, gate.min, "no slices.columns to slice by")
    values = slice_values(slices, gate.metric)
    measured = {key: value for key, value in values.items() if value is not None and not _nan(value)}
    if not measured:
        message = f"no slice has enough rows to measure {gate.metric} (slices.min_rows)"
        return Result(name, Status.INCONCLUSIVE, gate.required, None, gate.min, message)
    below = sorted((value, key) for key, value in measured.items() if value < gate.min)
    worst_value, worst_key = min((value, key) for key, value in measured.items())
    if below:
        listed = ", ".join(f"{key} {value:.4f}" for value, key in below[:5])
        more = f" and {len(below) - 5} more" if len(below) > 5 else ""
        message = f"{len(below)} of {len(measured)} slices below {gate.metric} {gate.min:g}: {listed}{more}"
        return Result(name, Status.FAILED, gate.required, worst_value, gate.min, message)
    message = (
        f"all {len(measured)} slices reach {gate.metric} {gate.min:g} (worst {worst_key} {worst_value:.4f})"
    )
    return Result(name, Status.PASSED, gate.required, worst_value, gate.min, message)


def slice_values(slices: dict[str, Any], metric: str) -> dict[str, float | None]:
    """Return ``{"column=value": metric}`` from the ``slices`` section of ``metrics.json``."""
    found: dict[str, float | None] = {}
    for column, groups in slices.items():
        for value, entry in groups.items():
            if metric in entry:  # slices below slices.min_rows carry "skipped" instead
                found[f"{column}={value}"] = entry[metric]
    return found


def collapse_gate(
    gate: CollapseGate, task: str, labels: Sequence[Any], distribution: dict[str, Any] | None
) -> Result:
    """Fail when a class (almost) never gets predicted, or regression predictions are constant."""
    name = "class_collapse"
    if not distribution:
        return Result(
            name, Status.ERROR, gate.required, None, None, "metrics.json has no prediction_distribution"
        )
    if task == "regression":
        std = distribution.get("std")
        if std is None:
            return Result(name, Status.ERROR, gate.required, None, None, "prediction_distribution has no std")
        floor = COLLAPSE_STD * max(1.0, abs(float(distribution.get("mean") or 0.0)))
        ok = std > floor
        message = f"prediction std {std:.4g} on the held-out rows" + (
            "" if ok else ": the model predicts a constant"
        )
        return judged(name, ok, gate.required, std, floor, message)
    shares = {str(label): float(class_fractions(distribution).get(str(label), 0.0)) for label in labels}
    if not shares:
        return Result(name, Status.ERROR, gate.required, None, None, "model metadata lists no labels")
    low_label = min(shares, key=lambda label: shares[label])
    low = shares[low_label]
    rare = [label for label, share in shares.items() if share < gate.min_class_fraction]
    if rare:
        listed = ", ".join(f"{label} {shares[label]:.1%}" for label in rare)
        message = f"classes below {gate.min_class_fraction:.1%} of predictions: {listed}"
        return Result(name, Status.FAILED, gate.required, low, gate.min_class_fraction, message)
    message = (
        f"every class keeps >= {gate.min_class_fraction:.1%} of predictions (lowest {low_label} {low:.1%})"
    )
    return Result(name, Status.PASSED, gate.required, low, gate.min_class_fraction, message)


def class_fractions(distribution: dict[str, Any]) -> dict[str, float]:
    """Return ``{label: share of predictions}`` from ``metrics.json``'s ``prediction_distribution``."""
    return {
        str(k): float(v)
        for k, v in distribution.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def drift_gate(gate: DriftGate, drift: Drift | None, why_not: str = "", configured: bool = False) -> Result:
    """Pass only when the drift check (``drift.json``) compared every feature and found them within limits.

    Without a drift.json the gate is skipped when no reference is configured, an error otherwise.
    """
    name = "drift"
    if drift is None:
        status = Status.ERROR if configured else Status.SKIPPED
        return Result(name, status, gate.required, None, None, why_not or "no drift.json")
    compared = len(drift.features)
    if drift.status is Status.ERROR:
        message = f"{len(drift.missing)} feature(s) not compared: {', '.join(drift.missing)} (against {drift.reference})"
        return Result(name, Status.ERROR, gate.required, compared, None, message)
    drifted = list(drift.drifted)
    limit = drift.limits.max_drifted_features
    if not drift.passed:
        listed = ", ".join(drifted[:8]) or "see drift.json"
        message = f"{len(drifted)} of {compared} features drifted beyond the limits: {listed}"
        return Result(name, Status.FAILED, gate.required, len(drifted), limit, message)
    message = f"{len(drifted)} of {compared} features drifted against {drift.reference}, within the limits"
    return Result(name, Status.PASSED, gate.required, len(drifted), limit, message)


def label_drift_gate(gate: LabelDriftGate, drift: Drift | None, why_not: str = "") -> Result:
    """The target's distribution against the reference's, from ``drift.json`` (skipped when not compared)."""
    name = "label_drift"
    if drift is None or drift.label is None:
        why = why_not or "the data or the reference has no target column"
        return Result(name, Status.SKIPPED, gate.required, None, None, f"label not compared: {why}")
    return _drift_result(
        name, gate.required, drift.label, f"label '{drift.label.feature}' against {drift.reference}"
    )


def prediction_drift_gate(gate: PredictionDriftGate, comparison: FeatureDrift | None, why_not: str) -> Result:
    """The candidate's predictions on the reference rows against its predictions on its held-out rows."""
    name = "prediction_drift"
    if comparison is None:
        return Result(name, Status.SKIPPED, gate.required, None, None, f"predictions not compared: {why_not}")
    what = (
        f"the candidate's predictions on the reference rows ({comparison.current_rows}) vs its held-out rows"
    )
    return _drift_result(name, gate.required, comparison, what)


def _drift_result(name: str, required: bool, entry: FeatureDrift, what: str) -> Result:
    if entry.statistic is None:
        return Result(name, Status.ERROR, required, None, entry.limit, f"{what}: no values to compare")
    measured = describe(entry)
    observed = entry.p_adjusted if entry.method in ("ks", "chi2") else entry.statistic
    if entry.drifted:
        return Result(name, Status.FAILED, required, observed, entry.limit, f"{what} drifted: {measured}")
    return Result(name, Status.PASSED, required, observed, entry.limit, f"{what}: stable, {measured}")


def _nan(value: Any) -> bool:
    """Return True for NaN, which is below no floor: a slice measured as NaN would pass any."""
    return isinstance(value, float) and math.isnan(value)


def summary(results: Sequence[Result]) -> str:
    """Return a one-line verdict naming the gates that decided it."""
    blocking = [r for r in results if r.blocking]
    advisory = [r for r in results if r.status.decides_against and not r.required]
    if blocking:
        named = "; ".join(f"{r.name} {r.status} ({r.message})" for r in blocking)
        return f"{len(blocking)} required gate(s) did not pass: {named}"
    note = f" ({len(advisory)} advisory did not: {', '.join(r.name for r in advisory)})" if advisory else ""
    return f"all required gates passed{note}"

"""The quality gates as pure rules: plain data in, one :class:`Result` per gate out.

Each gate is data in ``[gates]`` (metric, threshold, requirement); a metric's direction comes
from the metric table (``pipeline/core/metrics.py``). A required gate that fails decides the
run (``gate`` exits 1); an advisory one is reported only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from model.records import Comparison, Drift, Latency, Result, Status
from pipeline.config import ChampionGate, CollapseGate, DriftGate, LatencyGate, MetricGate, SliceGate
from pipeline.core.metrics import lookup

COLLAPSE_STD = 1e-9  # regression predictions with a smaller std (relative to |mean|) are constant


def judged(name: str, ok: bool, required: bool, observed: Any, threshold: Any, message: str) -> Result:
    """Return a passed (``ok``) or failed result."""
    return Result(name, Status.PASSED if ok else Status.FAILED, required, observed, threshold, message)


def metric_gate(gate: MetricGate, metrics: dict[str, Any]) -> Result:
    """Compare one evaluated metric with its threshold in the configured direction."""
    name = f"metric:{gate.metric}"
    direction = gate.direction or lookup(gate.metric).direction
    sign = ">=" if direction == "higher" else "<="
    value = metrics.get(gate.metric)
    if value is None:
        known = ", ".join(sorted(metrics)) or "none"
        why = (
            f"metric {gate.metric!r} not evaluated (have: {known})"
            if gate.metric not in metrics
            else f"{gate.metric} is undefined on the held-out rows"
        )
        return Result(name, Status.FAILED, gate.required, None, gate.threshold, why)
    ok = value >= gate.threshold if direction == "higher" else value <= gate.threshold
    verdict = "meets" if ok else "misses"
    return judged(
        name,
        ok,
        gate.required,
        value,
        gate.threshold,
        f"{gate.metric} {value:.4f} {verdict} {sign} {gate.threshold:g}",
    )


def champion_gate(gate: ChampionGate, comparison: Comparison | None, why_skipped: str = "") -> Result:
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
        return Result(name, Status.SKIPPED, gate.required, None, threshold, why_skipped or "no champion")
    delta, low, high = comparison.delta, comparison.ci_low, comparison.ci_high
    metric = comparison.metric
    if delta is None or low is None or high is None:
        return Result(
            name,
            Status.FAILED,
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
        return Result(name, Status.FAILED, gate.required, delta, threshold, f"regression: {detail}")
    if delta < threshold:
        return Result(name, Status.PASSED, gate.required, delta, threshold, f"drop not significant: {detail}")
    verdict = "better" if low > 0 else "no worse"
    return Result(name, Status.PASSED, gate.required, delta, threshold, f"{verdict}: {detail}")


def latency_gate(gate: LatencyGate, latency: Latency | None) -> Result:
    """Compare single-row p95 prediction latency with the limit."""
    name = "latency_p95"
    observed = latency.single_p95_ms if latency is not None else None
    if observed is None:
        return Result(
            name,
            Status.SKIPPED,
            gate.required,
            None,
            gate.p95_ms,
            "metrics.json has no latency.single_p95_ms",
        )
    ok = observed <= gate.p95_ms
    sign = "<=" if ok else ">"
    return judged(
        name,
        ok,
        gate.required,
        observed,
        gate.p95_ms,
        f"single-row p95 {observed:.2f} ms {sign} {gate.p95_ms:g} ms",
    )


def slice_gate(gate: SliceGate, slices: dict[str, Any] | None) -> Result:
    """Require every evaluated slice to reach the floor on the configured metric."""
    name = "slice_floor"
    if gate.metric is None or gate.min is None:
        return Result(
            name, Status.SKIPPED, gate.required, None, None, "no slice floor configured (gates.slices)"
        )
    values = slice_values(slices or {}, gate.metric)
    measured = {key: value for key, value in values.items() if value is not None}
    if not measured:
        return Result(
            name, Status.SKIPPED, gate.required, None, gate.min, f"no slice has {gate.metric} evaluated"
        )
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
) -> Result:
    """Fail when a class (almost) never gets predicted, or regression predictions are constant."""
    name = "class_collapse"
    if not distribution:
        return Result(
            name, Status.SKIPPED, gate.required, None, None, "metrics.json has no prediction_distribution"
        )
    if task == "regression":
        std = distribution.get("std")
        if std is None:
            return Result(
                name, Status.SKIPPED, gate.required, None, None, "prediction_distribution has no std"
            )
        floor = COLLAPSE_STD * max(1.0, abs(float(distribution.get("mean") or 0.0)))
        ok = std > floor
        message = f"prediction std {std:.4g}" + ("" if ok else ": the model predicts a constant")
        return judged(name, ok, gate.required, std, floor, message)
    fractions = class_fractions(distribution)
    shares = {str(label): float(fractions.get(str(label), 0.0)) for label in labels}
    if not shares:
        return Result(name, Status.SKIPPED, gate.required, None, None, "model metadata lists no labels")
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


def drift_gate(gate: DriftGate, drift: Drift | None, why_skipped: str = "") -> Result:
    """Fail when the drift check (``drift.json``) did not pass."""
    name = "drift"
    if drift is None:
        return Result(name, Status.SKIPPED, gate.required, None, None, why_skipped or "no drift.json")
    drifted = list(drift.drifted)
    limit = drift.limits.max_drifted_features
    if not drift.passed:
        listed = ", ".join(drifted[:8]) or "see drift.json"
        message = f"{len(drifted)} drifted feature(s) beyond the limits: {listed}"
        return Result(name, Status.FAILED, gate.required, len(drifted), limit, message)
    message = f"{len(drifted)} drifted feature(s), within the limits"
    return Result(name, Status.PASSED, gate.required, len(drifted), limit, message)


def summary(results: Sequence[Result]) -> str:
    """Return a one-line verdict naming the failed gates."""
    blocking = [r for r in results if r.blocking]
    advisory = [r for r in results if r.status is Status.FAILED and not r.required]
    if blocking:
        named = "; ".join(f"{r.name} ({r.message})" for r in blocking)
        return f"{len(blocking)} required gate(s) failed: {named}"
    note = f" ({len(advisory)} advisory failed: {', '.join(r.name for r in advisory)})" if advisory else ""
    return f"all required gates passed{note}"

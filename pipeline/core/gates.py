"""The quality gates as pure rules: plain data in, one :class:`Result` per gate out.

Each gate is data in ``[gates]`` (metric, threshold, requirement); a metric's direction comes
from the metric table (``pipeline/core/metrics.py``); the metric floors, absolute or above the
dummy baseline, are ``pipeline/core/floors.py``'s (re-exported here). A gate that could not
measure what it checks says ``error``; one whose evidence cannot decide says ``inconclusive``;
neither is a pass. A required gate that does not pass decides the run (``gate`` exits 1); an advisory one is
reported only. Every message names what was compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from model.records import Compiled, Parity, Result, Status
from pipeline.config_gates import (
    ChampionGate,
    CollapseGate,
    DriftGate,
    LabelDriftGate,
    LatencyGate,
    ParityGate,
    PredictionDriftGate,
    SliceGate,
)
from pipeline.core.drift_verdict import describe
from pipeline.core.floors import metric_gate as metric_gate  # the floors' rule, with the baseline
from pipeline.core.latency import Ratio, reason, slower
from pipeline.core.power import detectable_from, rows_to_decide, rows_to_resolve
from pipeline.records import Comparison, Drift, FeatureDrift, Latency

COLLAPSE_STD = 1e-9  # regression predictions with a smaller std (relative to |mean|) are constant


def judged(name: str, ok: bool, required: bool, observed: Any, threshold: Any, message: str) -> Result:
    """Return a passed (``ok``) or failed result."""
    return Result(name, Status.PASSED if ok else Status.FAILED, required, observed, threshold, message)


def champion_gate(
    gate: ChampionGate,
    comparison: Comparison | None,
    why_skipped: str = "",
    excluded: int = 0,
    name: str = "no_regression",
) -> Result:
    """Judge the paired comparison with the champion (a non-inferiority test at the tolerance).

    ``delta`` is the candidate's metric minus the champion's, signed so that positive means the
    candidate is better; [low, high] is its bootstrap interval. With ``-tolerance`` as the margin
    (``tolerance``, or ``relative_tolerance`` of the champion's value: :func:`tolerance_of`):

    * ``low >= -tolerance``: passed, the candidate is at worst a tie, with confidence;
    * ``high < -tolerance``: failed, the candidate is worse by more than the tolerance;
    * otherwise the interval is too wide to decide: inconclusive, with an estimate of the rows
      that would decide. Fewer than ``min_rows`` rows the champion never trained on is
      inconclusive too; a metric undefined on these rows is an error.

    Every verdict states the tolerance in the metric's units and as a share of the champion's
    value, and the smallest difference the rows resolve (half the interval's width). ``name``: the
    result's (``calibration`` judges the calibration error the same way).
    """
    if comparison is None:
        threshold = None if gate.relative_tolerance is not None else -gate.tolerance
        return Result(name, Status.SKIPPED, gate.required, None, threshold, why_skipped or "no champion")
    metric = comparison.metric
    champ = comparison.champion.get(metric)
    tolerance = tolerance_of(gate, champ)
    threshold = -tolerance if tolerance is not None else None
    rows = f"{comparison.rows:,} held-out rows the champion never trained on"
    rows += f" ({excluded:,} it trained on left out)" if excluded else ""
    if comparison.rows == 0:
        message = f"none of the held-out rows is one the champion never trained on ({excluded:,} it trained on): nothing compared"
        return Result(name, Status.ERROR, gate.required, None, threshold, message)
    if comparison.rows < gate.min_rows:
        key = "gates.champion" if name == "no_regression" else f"gates.{name}"
        message = f"only {rows}; at least {gate.min_rows} are needed to compare ({key}.min_rows)"
        return Result(name, Status.INCONCLUSIVE, gate.required, None, threshold, message)
    delta, low, high = comparison.delta, comparison.ci_low, comparison.ci_high
    cand = comparison.candidate.get(metric)
    if delta is None or low is None or high is None or cand is None or champ is None or tolerance is None:
        message = f"{metric} is undefined on the {rows}; cannot compare"
        return Result(name, Status.ERROR, gate.required, None, threshold, message)
    detail = (
        f"{metric} candidate {cand:.4f} vs champion {champ:.4f}, delta {delta:+.4f} "
        f"({comparison.confidence:.0%} CI {low:+.4f} .. {high:+.4f}, {tolerance_words(gate.relative_tolerance, tolerance, champ)}) "
        f"on {rows}"
    )
    detectable = detectable_from(low, high)
    power = f"these rows resolve differences of about {detectable:.4f} {metric} (half the interval's width)"
    if low >= -tolerance:
        verdict = "better" if low > 0 else "no worse"
        return Result(name, Status.PASSED, gate.required, delta, threshold, f"{verdict}: {detail}; {power}")
    if high < -tolerance:
        return Result(name, Status.FAILED, gate.required, delta, threshold, f"regression: {detail}; {power}")
    if detectable >= tolerance:
        tie = rows_to_resolve(comparison.rows, detectable, tolerance)
        power += (
            ", more than the tolerance, so even a candidate exactly as good as its champion cannot pass"
            + (f" (that needs about {tie:,} rows)" if tie is not None else "")
        )
    needed = rows_to_decide(comparison.rows, delta, low, high, -tolerance)
    message = f"cannot decide: the interval spans the tolerance; {detail}; {power}; {needed}"
    return Result(name, Status.INCONCLUSIVE, gate.required, delta, threshold, message)


def tolerance_of(gate: ChampionGate, champion_value: float | None) -> float | None:
    """Return the tolerance in the metric's units: ``relative_tolerance`` of the champion's value, else ``tolerance``.

    None when the tolerance is relative and the champion's value is unknown.
    """
    if gate.relative_tolerance is None:
        return gate.tolerance
    return None if champion_value is None else gate.relative_tolerance * abs(champion_value)


def tolerance_words(relative: float | None, tolerance: float, champion_value: float | None) -> str:
    """Return the tolerance in both forms, the configured one named: ``tolerance 0.01 = 1.3% of the champion's 0.7984``.

    ``relative``: ``relative_tolerance`` when the config states the tolerance so (None: in the metric's units).
    """
    if relative is not None and champion_value is not None:
        return f"tolerance {tolerance:.4g} = {relative:.2%} of the champion's {champion_value:.4g} (relative)"
    if not champion_value:
        return f"tolerance {tolerance:.4g} (the champion's value is {champion_value})"
    return f"tolerance {tolerance:.4g} = {tolerance / abs(champion_value):.2%} of the champion's {champion_value:.4g}"


def latency_gate(gate: LatencyGate, latency: Latency | None, why_not: str = "") -> Result:
    """Limit the candidate's single-row p95: as a ratio to the champion's when one was timed, else absolutely.

    Against a champion the candidate fails only when surely slower (``pipeline/core/latency.py``):
    the ratio's interval lies above ``max_ratio`` and the p95s differ by more than ``min_difference_ms``.
    """
    name = "latency_p95"
    if latency is None:
        message = "single-record latency was not measured" + (f": {why_not}" if why_not else "")
        return Result(name, Status.ERROR, gate.required, None, gate.p95_ms, message)
    timed = f"{latency.samples} single-record predicts each, timed in this run at {latency.measured_at}"
    if latency.ratio is not None and latency.champion_p95_ms is not None:
        low = latency.ratio if latency.ratio_low is None else latency.ratio_low
        high = latency.ratio if latency.ratio_high is None else latency.ratio_high
        ratio = Ratio(latency.ratio, low, high)
        difference = latency.candidate_p95_ms - latency.champion_p95_ms
        failed = slower(ratio, difference, gate)
        message = (
            f"candidate p95 {latency.candidate_p95_ms:.3f} ms ({latency.candidate_runtime}) vs champion "
            f"{latency.champion_p95_ms:.3f} ms ({latency.champion_runtime}): ratio {ratio.shown()}; "
            f"{'slower than the champion: ' if failed else ''}{reason(ratio, difference, gate, failed)} "
            f"(limit {gate.max_ratio:g}, floor "
            f"{gate.min_difference_ms:g} ms; alternately, {timed})"
        )
        return judged(name, not failed, gate.required, latency.ratio, gate.max_ratio, message)
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


def prediction_drift_gate(
    gate: PredictionDriftGate,
    comparison: FeatureDrift | None,
    why_not: str,
    excluded: int = 0,
    configured: bool = False,
) -> Result:
    """The candidate's predictions on the reference rows it never trained on against those on its held-out rows.

    ``excluded``: reference rows on the candidate's training side, left out (an overfit model
    answers its training rows differently, which is no drift). Not compared: skipped when no
    reference is configured, an error when one is (``configured``) but could not be used.
    """
    name = "prediction_drift"
    if comparison is None:
        status = Status.ERROR if configured else Status.SKIPPED
        return Result(name, status, gate.required, None, None, f"predictions not compared: {why_not}")
    left_out = f"; {excluded:,} on its training side left out" if excluded else ""
    what = (
        f"the candidate's predictions on the reference rows it never trained on "
        f"({comparison.current_rows:,}{left_out}) vs its held-out rows"
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


def publish_blockers(results: Sequence[Result]) -> list[Result]:
    """Return the required gates that did not pass (failed, inconclusive, error): any one stops a publish."""
    return [r for r in results if r.blocking]


def warned(results: Sequence[Result], inconclusive: str) -> list[Result]:
    """Return the required gates the check lets pass with a warning: an inconclusive no-regression under "warn"."""
    if inconclusive != "warn":
        return []
    return [
        r for r in publish_blockers(results) if r.name == "no_regression" and r.status is Status.INCONCLUSIVE
    ]


def check_blockers(results: Sequence[Result], inconclusive: str) -> list[Result]:
    """Return the required gates that fail the check (``gate`` exits 1): the publish blockers less the warned."""
    warnings = warned(results, inconclusive)
    return [r for r in publish_blockers(results) if r not in warnings]


def publish_refusal(results: Sequence[Result]) -> str:
    """Return why a candidate with these gates may not be published, in one line ("" when it may)."""
    blockers = publish_blockers(results)
    if not blockers:
        return ""
    named = ", ".join(f"{r.name} {r.status}" for r in blockers)
    why = (
        " (a pull-request check passes an inconclusive no_regression with a warning; publishing never does)"
        if any(r.status is Status.INCONCLUSIVE for r in blockers)
        else ""
    )
    return f"required gate(s) did not pass: {named}; publishing needs every required gate passed{why}"


def summary(results: Sequence[Result], inconclusive: str = "fail") -> str:
    """Return a one-line verdict naming the gates that decided it, and any the check passed with a warning."""
    blocking = check_blockers(results, inconclusive)
    advisory = [r for r in results if r.status.decides_against and not r.required]
    if blocking:
        named = "; ".join(f"{r.name} {r.status} ({r.message})" for r in blocking)
        return f"{len(blocking)} required gate(s) did not pass: {named}"
    note = f" ({len(advisory)} advisory did not: {', '.join(r.name for r in advisory)})" if advisory else ""
    warnings = warned(results, inconclusive)
    if warnings:
        named = "; ".join(f"{r.name} {r.status} ({r.message})" for r in warnings)
        note += (
            f'; WARNING: {named}. The check passes (gates.champion.inconclusive = "warn"), '
            "but this candidate will not be published until the comparison passes"
        )
    return f"all required gates passed{note}"

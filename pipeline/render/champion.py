"""The report's comparison with the champion: both models' metrics side by side, the interval of the difference, and the smallest difference the rows resolve."""

from __future__ import annotations

from model.records import Metrics
from pipeline.core.gates import tolerance_words
from pipeline.core.metrics import METRICS, metric_names
from pipeline.core.power import rows_to_resolve
from pipeline.records import Champion, Gates
from pipeline.render.model_card import baseline_line
from pipeline.render.tables import fmt, markdown_table, signed


def champion_section(task: str, gates: Gates | None, metrics: Metrics | None) -> str:
    """Return the candidate's metrics, beside the champion's when one was compared."""
    lines = ["## Metrics vs champion", ""]
    champion = gates.champion if gates is not None else None
    if champion is None:
        gate = gates.result("no_regression") if gates is not None else None
        reason = gate.message if gate is not None else "no champion (the gate step did not run)"
        if not reason.startswith("no champion"):
            reason = f"no champion compared: {reason}"
        lines += [reason[0].upper() + reason[1:].rstrip(".") + ".", ""]
        if metrics is not None:
            lines += ["Candidate on the held-out rows:", ""]
            names = _ordered(task, metrics.overall)
            table = markdown_table(("metric", "candidate"), [(m, fmt(metrics.overall.get(m))) for m in names])
            lines += [*table, "", baseline_line(metrics)]
        return "\n".join(lines)
    who = f"version {champion.version}" if champion.version is not None else f"`{champion.path}`"
    lines += [
        f"Champion {who} (model sha256 {champion.model_sha256[:12]}) and candidate scored on the "
        f"{champion.rows} held-out rows the champion never trained on"
        + (f" ({champion.excluded} it trained on were left out)." if champion.excluded else "."),
        "",
    ]
    rows = []
    for name in _ordered(task, champion.candidate):
        a, b = champion.candidate.get(name), champion.champion.get(name)
        delta = a - b if a is not None and b is not None else None
        verdict = "-" if delta is None else _verdict(name, delta)
        label = name + (" (gate)" if name == champion.metric else "")
        rows.append((label, fmt(a), fmt(b), signed(delta), verdict))
    lines += markdown_table(("metric", "candidate", "champion", "delta", ""), rows)
    if champion.ci_low is not None:
        lines += [
            "",
            f"{champion.metric} improvement {signed(champion.delta)}, {champion.confidence:.0%} paired-bootstrap CI "
            f"{signed(champion.ci_low)} .. {signed(champion.ci_high)} "
            f"({champion.resamples} resamples; positive = candidate better).",
        ]
    if champion.detectable is not None:
        lines += ["", power_line(champion)]
    return "\n".join(lines + (["", baseline_line(metrics)] if metrics is not None else []))


def power_line(champion: Champion) -> str:
    """Return, in words, the smallest difference the comparison resolves and the tolerance it was judged by."""
    metric, rows, detectable = champion.metric, champion.rows, champion.detectable
    value = champion.champion.get(metric)
    line = (
        f"Smallest difference these {rows:,} rows resolve: about {fmt(detectable)} {metric} (half the "
        "interval's width); a smaller true difference looks the same as none."
    )
    if champion.tolerance is None:
        return line
    line += (
        f" {tolerance_words(champion.relative_tolerance, champion.tolerance, value).capitalize()} {metric}."
    )
    if detectable is not None and detectable >= champion.tolerance:
        needed = rows_to_resolve(rows, detectable, champion.tolerance)
        more = f" about {needed:,} rows would let it" if needed is not None else ""
        line += f" That is more than the tolerance: even a candidate exactly as good as the champion cannot pass;{more}."
    return line


def _ordered(task: str, values: dict[str, float | None]) -> list[str]:
    known = [m for m in metric_names(task) if m in values]
    return known + sorted(m for m in values if m not in known)


def _verdict(name: str, delta: float) -> str:
    if delta == 0:
        return "same"
    metric = METRICS.get(name)
    if metric is None:
        return ""
    return "better" if metric.better(delta, 0.0) else "worse"

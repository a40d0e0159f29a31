"""What the commands print on a terminal: validation, drift and gate tables (plain text)."""

from __future__ import annotations

from collections.abc import Sequence

from model.records import Result
from pipeline.records import Drift, Failure, FeatureDrift, Validation
from pipeline.render.tables import fmt, text_table


def validation_table(report: Validation) -> str:
    """Return the check table: one row per failure, one per passing check."""
    by_check: dict[str, list[Failure]] = {}
    for failure in report.failures:
        by_check.setdefault(failure.check, []).append(failure)
    rows: list[tuple[str, str, str, str]] = []
    for check in report.checks:
        for failure in by_check.get(check.check, []):
            rows.append((check.check, failure.column or "-", "FAIL", failure.message))
        if check.check not in by_check:
            scope = check.columns
            detail = "whole table" if scope is None else f"{scope} column{'s' if scope != 1 else ''}"
            rows.append((check.check, "-", "ok", detail))
    return text_table(("check", "column", "status", "detail"), rows)


def drift_row(f: FeatureDrift) -> tuple[str, ...]:
    """Return one comparison as table cells (the label and predictions are named as such)."""
    return (
        f.feature,
        f.kind,
        f.method,
        fmt(f.statistic),
        fmt(f.p_adjusted),
        fmt(f.limit),
        fmt(f.psi),
        "YES" if f.drifted else "no",
    )


def drift_table(report: Drift) -> str:
    """Return the drift table: per feature (and the label and predictions) the statistic, its limit and PSI."""
    compared = [*report.features, *(f for f in (report.label, report.prediction) if f is not None)]
    rows = [drift_row(f) for f in compared]
    lines = [
        f"drift against {report.reference} ({report.source})",
        text_table(("feature", "kind", "method", "statistic", "p (adj.)", "limit", "PSI", "drifted"), rows),
    ]
    if report.missing:
        lines.append(f"missing from the table or the reference, not compared: {', '.join(report.missing)}")
    return "\n".join(lines)


def gate_table(results: Sequence[Result]) -> str:
    """Return the gate results as an aligned table."""
    rows = [
        (r.name, str(r.status), "yes" if r.required else "no", fmt(r.observed), fmt(r.threshold), r.message)
        for r in results
    ]
    return text_table(("gate", "status", "required", "observed", "threshold", "message"), rows)

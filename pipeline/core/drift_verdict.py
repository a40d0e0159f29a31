"""The drift verdict: the ``drift.json`` record from the compared features, and its words for messages.

``pipeline/core/drift.py`` compares; this decides the record's status (an error when anything
was not compared, else passed or failed by ``drift.max_drifted_features``) and says what was
measured against which limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from model.records import Status
from pipeline.config import DriftConfig
from pipeline.records import Drift, DriftLimits, FeatureDrift


def drift_report(
    features: Sequence[FeatureDrift],
    limits: DriftConfig,
    reference: str,
    source: str,
    missing: list[str],
    run: str,
    data_sha256: str,
    label: FeatureDrift | None = None,
    prediction: FeatureDrift | None = None,
) -> Drift:
    """Return the ``drift.json`` record: an error when anything was not compared, else passed or failed."""
    drifted = tuple(f.feature for f in features if f.drifted)
    if missing:
        status = Status.ERROR
    else:
        status = Status.PASSED if len(drifted) <= limits.max_drifted_features else Status.FAILED
    return Drift(
        run=run,
        data_sha256=data_sha256,
        reference=reference,
        source="csv" if source == "csv" else "profile",
        status=status,
        features=tuple(features),
        drifted=drifted,
        missing=tuple(missing),
        passed=status is Status.PASSED,
        label=label,
        prediction=prediction,
        limits=DriftLimits(
            method=limits.method,
            test_max_rows=limits.test_max_rows,
            alpha=limits.alpha,
            wasserstein_limit=limits.wasserstein_limit,
            jensen_shannon_limit=limits.jensen_shannon_limit,
            psi_limit=limits.psi_limit,
            max_drifted_features=limits.max_drifted_features,
            max_unseen_share=limits.max_unseen_share,
            bins=limits.bins,
            label_jensen_shannon_limit=limits.label_jensen_shannon_limit,
        ),
    )


def describe(feature: FeatureDrift) -> str:
    """Return what one comparison measured, for a message: the statistic against its limit."""
    if feature.statistic is None:
        return "no values to compare"
    if feature.method in ("ks", "chi2"):
        test = "KS" if feature.method == "ks" else "chi-squared"
        return f"{test} p {feature.p_adjusted:.3g} (adjusted) vs alpha {feature.limit:g}"
    distance = "Wasserstein/std" if feature.method == "wasserstein" else "Jensen-Shannon"
    return f"{distance} {feature.statistic:.3f} vs limit {feature.limit:g}"


def failure_summary(report: Drift, path: str) -> str:
    """Return the one-line reason the drift check did not pass."""
    if report.status is Status.ERROR:
        compared = len(report.features)
        return (
            f"drift check could not compare {len(report.missing)} of {compared + len(report.missing)} features "
            f"({', '.join(report.missing)}): absent from the table or from the reference {report.reference}"
        )
    drifted = [f for f in report.features if f.drifted]
    shown = ", ".join(f"{f.feature} ({describe(f)})" for f in drifted[:3]) + (
        ", ..." if len(drifted) > 3 else ""
    )
    return (
        f"drift check failed: {len(drifted)} drifted feature(s), limit {report.limits.max_drifted_features}: "
        f"{shown}; see {path}"
    )

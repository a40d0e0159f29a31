"""The markdown report (``report.md``) for a GitHub job summary or a PR comment, from typed records.

Sections: headline (the verdict over every step that ran, and what decided it), candidate
model, metrics against the champion and the dummy baseline, gates, validation, drift, serving
image and smoke test, latency, slices, prediction distribution, the plot, what was not produced, and what was not
shown because it belongs to another model or run. ``pipeline/steps/report.py`` loads the records and writes the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from model.records import Metrics, ModelMetadata, Status
from pipeline.config_gates import SliceGate
from pipeline.core.drift_verdict import describe
from pipeline.core.gates import check_blockers, class_fractions, publish_blockers, warned
from pipeline.core.metrics import DEFAULT_METRIC
from pipeline.records import Drift, Gates, Image, Run, Smoke, Validation
from pipeline.render.calibration import calibration_section
from pipeline.render.champion import champion_section
from pipeline.render.model_card import served_by
from pipeline.render.tables import fmt, markdown_table

TOP_DRIFT = 8
MAX_LISTED = 10


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows; a record is None when its step did not produce it (or not for this model).

    ``run`` is the host run this report belongs to (its steps and how they ended), when there is one.
    """

    gates: Gates | None
    metrics: Metrics | None
    validation: Validation | None
    drift: Drift | None
    metadata: ModelMetadata | None
    run: Run | None = None
    image: Image | None = None
    smoke: Smoke | None = None
    description: str = ""
    slice_gate: SliceGate = field(default_factory=SliceGate)
    plot: str = ""
    missing: tuple[str, ...] = ()  # "`file` (step that writes it)"
    stale: tuple[str, ...] = ()  # files of an earlier model or run, not shown


def build_report(inputs: ReportInputs, task: str) -> str:
    """Return the markdown report."""
    sections = [
        headline(inputs),
        model_section(inputs.metadata, inputs.description),
        champion_section(task, inputs.gates, inputs.metrics),
        gate_section(inputs.gates),
        calibration_section(inputs.gates),
        validation_section(inputs.validation),
        drift_section(inputs.drift),
        serving_section(inputs.image, inputs.smoke),
        latency_section(inputs.gates, inputs.run),
        slice_section(task, inputs.metrics, inputs.slice_gate),
        class_section(inputs.metrics),
        "## Plot\n\n" + inputs.plot,
    ]
    if inputs.missing:
        sections.append("## Not produced\n\n" + "\n".join(f"- {item}" for item in inputs.missing))
    if inputs.stale:
        lines = "\n".join(f"- {item}" for item in inputs.stale)
        sections.append(f"## Not shown: results of another model or run\n\n{lines}")
    return "\n\n".join(s.rstrip() for s in sections if s) + "\n"


def headline(inputs: ReportInputs) -> str:
    """Return the verdict over every step that ran, and the line that says what decided it."""
    failed = next((s for s in inputs.run.steps if s.status == "failed"), None) if inputs.run else None
    if failed is not None:
        line = f"Step **{failed.name}** failed (exit {failed.code}): {failed.note or 'see its log'}"
        return f"# Model report: FAILED\n\n{line}\n\n{steps_line(inputs.run)}".rstrip()
    problems = []
    if inputs.validation is not None and not inputs.validation.passed:
        problems.append(f"validation failed ({len(inputs.validation.failures)} failure(s))")
    gates = inputs.gates
    if gates is not None and not gates.passed:
        blocking = [f"{g.name} {g.status}" for g in check_blockers(gates.gates, gates.inconclusive_rule)]
        problems.append(f"required gate(s) did not pass: **{', '.join(blocking) or 'unknown'}**")
    if inputs.smoke is not None and not inputs.smoke.passed:
        bad = [c.name for c in inputs.smoke.checks if c.blocking]
        problems.append(f"the smoke test of the serving image failed ({', '.join(bad)})")
    tail = f"\n\n{steps_line(inputs.run)}" if inputs.run else ""
    if problems:
        return f"# Model report: FAILED\n\n{'; '.join(problems).capitalize()}.{tail}"
    if gates is None:
        note = "No `gates.json` for this model: the pipeline stopped before the gate step."
        return f"# Model report: gates not run\n\n{note}{tail}"
    advisory = [g.name for g in gates.gates if g.status.decides_against and not g.required]
    parts = ["All required gates passed"]
    parts += ["validation passed"] if inputs.validation is not None else []
    parts += [f"image {inputs.image.tag} built"] if inputs.image is not None else []
    parts += ["smoke test passed"] if inputs.smoke is not None else []
    note = f" Advisory gate(s) did not pass: {', '.join(advisory)}." if advisory else ""
    unchecked = [f"{g.name}: {g.message}" for g in gates.gates if g.required and g.status is Status.SKIPPED]
    note += f" Required gate(s) skipped: {'; '.join(unchecked)}." if unchecked else ""
    warnings = warned(gates.gates, gates.inconclusive_rule)
    if warnings:
        named = ", ".join(f"{g.name} {g.status}" for g in warnings)
        warning = (
            f"**Warning: {named}**: the candidate and the champion could not be told apart on these rows "
            '(see below). The check passes by the rule gates.champion.inconclusive = "warn"; the candidate '
            "is **not publishable**: registering it as staging, promoting it and retrain's publish need "
            "every required gate passed."
        )
        return f"# Model report: PASSED with a warning\n\n{', '.join(parts)}.{note}\n\n{warning}{tail}"
    return f"# Model report: PASSED\n\n{', '.join(parts)}.{note}{tail}"


def steps_line(run: Run | None) -> str:
    """Return how each step of the run ended, on one line."""
    if run is None:
        return ""
    words = [
        f"{s.name} {'in progress' if s.status == 'running' else s.status}"
        + (f" ({s.note})" if s.status == "skipped" and s.note else "")
        for s in run.steps
    ]
    return f"Run `{run.run}`: " + ", ".join(words) + "."


def model_section(metadata: ModelMetadata | None, description: str) -> str:
    """Return the candidate model's facts."""
    if metadata is None:
        return ""
    rows = [
        ("task", metadata.task),
        ("target", metadata.target),
        ("model", metadata.estimator),
        ("train rows", metadata.train_rows),
        ("held-out rows", metadata.holdout_rows),
        ("data sha256", metadata.data_sha256[:12]),
        ("model sha256", metadata.model_sha256[:12]),
        ("git commit", (metadata.git_commit or "")[:12] or None),
        ("created", metadata.created_at),
        ("served by", served_by(metadata)),
    ]
    lines = ["## Candidate model", ""]
    if description:
        lines += [description, ""]
    lines += markdown_table(("", "value"), [(k, v) for k, v in rows if v is not None])
    return "\n".join(lines)


def gate_section(gates: Gates | None) -> str:
    """Return the gate table."""
    if gates is None:
        return ""
    rows = [
        (
            g.name,
            str(g.status).upper() if g.status is Status.FAILED else str(g.status),
            "yes" if g.required else "no",
            fmt(g.observed),
            fmt(g.threshold),
            g.message,
        )
        for g in gates.gates
    ]
    header = ("gate", "status", "required", "observed", "threshold", "message")
    return "\n".join(["## Gates", "", *markdown_table(header, rows), "", publish_rule(gates)])


def publish_rule(gates: Gates) -> str:
    """Return which inconclusive rule decided the check, and whether the candidate may be published."""
    rule = gates.inconclusive_rule
    what = (
        "an inconclusive no_regression passes the check with a warning"
        if rule == "warn"
        else "an inconclusive no_regression fails the check"
    )
    check = "passed" if gates.passed else "FAILED"
    if gates.publishable:
        publish = "**publishable**: every required gate passed"
    else:
        blockers = (
            ", ".join(f"{g.name} {g.status}" for g in publish_blockers(gates.gates)) or "passed is false"
        )
        publish = f"**not publishable** ({blockers}): registering as staging, promotion and retrain's publish need every required gate passed"
    return f'Rule applied: gates.champion.inconclusive = "{rule}" ({what}). Check {check}; {publish}.'


def validation_section(validation: Validation | None) -> str:
    """Return the validation verdict and its failures."""
    if validation is None:
        return ""
    head = f"Validation {'passed' if validation.passed else 'FAILED'} on {validation.rows} rows"
    head += f": {len(validation.checks)} checks, {len(validation.failures)} failure(s)"
    lines = ["## Validation", "", head + "."]
    messages = []
    for failure in validation.failures:
        column = failure.column
        prefix = f"{column}: " if column and column not in failure.message else ""
        messages.append(f"{prefix}{failure.message}")
    if messages:
        lines.append("")
        lines += [f"- {m}" for m in messages[:MAX_LISTED]]
        if len(messages) > MAX_LISTED:
            lines.append(f"- ... and {len(messages) - MAX_LISTED} more (see validation.json)")
    return "\n".join(lines)


def drift_section(drift: Drift | None) -> str:
    """Return the drift verdict and the features with the highest PSI."""
    if drift is None:
        return ""
    drifted = list(drift.drifted)
    verdict = {Status.PASSED: "within limits", Status.FAILED: "BEYOND LIMITS"}.get(
        drift.status, "NOT MEASURED"
    )
    head = f"Drift {verdict} against `{drift.reference}` (run `{drift.run}`): {len(drifted)} of "
    head += f"{len(drift.features)} features drifted" + (f" ({', '.join(drifted)})" if drifted else "") + "."
    if drift.missing:
        head += f" Not compared (absent from a side): {', '.join(drift.missing)}."
    lines = ["## Drift", "", head]
    for what, entry in (("Label", drift.label), ("Predictions", drift.prediction)):
        if entry is not None:
            state = "DRIFTED" if entry.drifted else "stable"
            lines += ["", f"{what} `{entry.feature}`: {state} ({describe(entry)}, PSI {fmt(entry.psi)})."]
    features = sorted(drift.features, key=lambda f: (not f.drifted, -(f.psi or 0.0)))[:TOP_DRIFT]
    if features:
        rows = [
            (
                f.feature,
                f.method,
                fmt(f.statistic),
                fmt(f.p_adjusted),
                fmt(f.limit),
                fmt(f.psi),
                "yes" if f.drifted else "no",
            )
            for f in features
        ]
        shown = (
            "every feature"
            if len(rows) == len(drift.features)
            else f"{len(rows)} of {len(drift.features)} features"
        )
        lines += ["", f"{shown}, drifted first, then by PSI (all in drift.json):", ""]
        lines += markdown_table(
            ("feature", "method", "statistic", "p (adjusted)", "limit", "PSI", "drifted"), rows
        )
    return "\n".join(lines)


def serving_section(image: Image | None, smoke: Smoke | None) -> str:
    """Return the serving image and its smoke test, when they ran for this model."""
    if image is None and smoke is None:
        return ""
    lines = ["## Serving image"]
    if image is not None:
        lines += [
            "",
            f"Built `{image.tag}` ({image.size_bytes / 1e6:.0f} MB on `{image.base_image}`) in run `{image.run}`.",
        ]
    if smoke is not None:
        rows = [(c.name, str(c.status), c.message) for c in smoke.checks]
        lines += ["", f"Smoke test against {smoke.url}: {'passed' if smoke.passed else 'FAILED'}.", ""]
        lines += markdown_table(("check", "status", "message"), rows)
    return "\n".join(lines)


def latency_section(gates: Gates | None, run: Run | None) -> str:
    """Return the single-row latency the gate step timed, and when (a cached figure says so)."""
    latency = gates.latency if gates is not None else None
    if gates is None or latency is None:
        return ""
    rows = [("candidate", fmt(latency.candidate_p50_ms), fmt(latency.candidate_p95_ms))]
    if latency.champion_p95_ms is not None:
        rows.append(("champion", fmt(latency.champion_p50_ms), fmt(latency.champion_p95_ms)))
    step = run.step("gate") if run is not None else None
    when = f"timed in run `{gates.run}` at {latency.measured_at}"
    if step is not None and step.status == "cached":
        when = f"restored from the step cache: {when}, not in this run"
    ratio = f"; p95 ratio {latency.ratio:.2f}" if latency.ratio is not None else ""
    if latency.ratio is not None and latency.ratio_low is not None and latency.ratio_high is not None:
        ratio += f" (95% CI {latency.ratio_low:.2f}-{latency.ratio_high:.2f}, a bootstrap of the timed pairs)"
    lines = [
        "## Latency (in-process, single row)",
        "",
        f"{latency.samples} predicts per model, {when}{ratio}.",
        "",
    ]
    return "\n".join(lines + markdown_table(("model", "p50 ms", "p95 ms"), rows))


def slice_section(task: str, metrics: Metrics | None, gate: SliceGate) -> str:
    """Return the metric per slice, marking slices below the floor."""
    if metrics is None or not metrics.slices:
        return ""
    metric = gate.metric or DEFAULT_METRIC.get(task, "")
    floor = gate.min
    rows = []
    for column, groups in metrics.slices.items():
        for value, entry in groups.items():
            score = entry.get(metric)
            note = "below floor" if floor is not None and score is not None and score < floor else ""
            rows.append(
                (f"{column}={value}", fmt(entry.get("rows")), fmt(score), entry.get("skipped") or note)
            )
    title = f"## Slices ({metric}" + (f", floor {floor:g})" if floor is not None else ")")
    return "\n".join([title, "", *markdown_table(("slice", "rows", metric, ""), rows)])


def class_section(metrics: Metrics | None) -> str:
    """Return each class's share of the predictions (or the regression output's statistics)."""
    if metrics is None:
        return ""
    distribution = metrics.prediction_distribution
    if metrics.task == "regression":
        rows = [(k, fmt(v)) for k, v in sorted(distribution.items())]
        return "\n".join(["## Prediction distribution", "", *markdown_table(("statistic", "value"), rows)])
    shares = class_fractions(distribution)
    rows = [(label, f"{share:.1%}") for label, share in sorted(shares.items())]
    return "\n".join(
        ["## Prediction distribution", "", *markdown_table(("class", "share of predictions"), rows)]
    )

"""MODEL_CARD.md of a registry version: intended use, data, metrics overall (beside the dummy baseline's) and
per slice, gates, limits."""

from __future__ import annotations

import json

from model.records import Feature, Lineage, Metrics, ModelMetadata
from pipeline.core.floors import described
from pipeline.core.metrics import metric_names
from pipeline.render.tables import fmt, markdown_table


def model_card(metadata: ModelMetadata, lineage: Lineage, metrics: Metrics | None, description: str) -> str:
    """Return the model card for a registered version."""
    task, target = metadata.task, metadata.target
    holdout_rows = metadata.holdout_rows
    labels = (
        f", labels {list(metadata.label_list)}, positive label {metadata.positive_label!r}"
        if task == "classification"
        else ""
    )
    lines = [
        f"# Model card: {target} ({task}), registry version {lineage.version}",
        "",
        "## Intended use",
        "",
        description.strip() or "Not stated: set `description` in the pipeline config.",
        "",
        "## Model",
        "",
        *markdown_table(
            ("field", "value"),
            [
                ("kind", metadata.estimator),
                ("parameters", json.dumps(metadata.params, sort_keys=True)),
                ("team's code", needs_code(metadata)),
                ("libraries", needs_libraries(metadata)),
                ("scikit-learn", metadata.sklearn_version),
                ("python", metadata.python_version),
                ("trained at", metadata.created_at),
                ("model sha256", metadata.model_sha256),
                ("served by", served_by(metadata)),
                (
                    "out-of-range values",
                    "served and counted" if metadata.out_of_range == "count" else "refused (422)",
                ),
            ],
        ),
        "",
        "## Data",
        "",
        f"- rows: {metadata.train_rows} for training, {holdout_rows} held out for evaluation",
        f"- target: `{target}`{labels}",
        f"- {len(metadata.features)} features; ids dropped: {', '.join(metadata.id_columns) or 'none'}",
        f"- data sha256: {metadata.data_sha256}",
        "",
        *markdown_table(
            ("feature", "type", "expected values", "nullable"),
            [(f.name, f.type, _expected(f), "yes" if f.nullable else "no") for f in metadata.features],
        ),
        "",
        "## Metrics",
        "",
        *_metrics(metrics),
        "",
        "## Gates",
        "",
        *_gates(lineage),
        "",
        "## Lineage",
        "",
        *markdown_table(
            ("field", "value"),
            [
                ("git commit", lineage.git_commit or "unknown"),
                ("config sha256", lineage.config_sha256),
                (
                    "parent (production when registered)",
                    "-" if lineage.parent is None else f"v{lineage.parent}",
                ),
                ("registered by", lineage.registered_by),
                ("registered at", lineage.registered_at),
            ],
        ),
        "",
        "## Limitations",
        "",
        f"- Quality was measured on {holdout_rows} held-out rows of the training table only; it says "
        "nothing about data from another period, market or population.",
        "- Inputs outside the expected values above (new categories, out-of-range numbers) were never "
        "seen in training; unknown categories are ignored by the encoder, so predictions for them fall "
        "back on the other features. Check drift against the profile in metadata.json first.",
        "- Slice figures on few rows are noisy; slices not listed were not evaluated.",
    ]
    if task == "classification":
        lines.append("- Predictions use the estimator's default decision rule; no threshold was tuned.")
    if lineage.gates is not None and not lineage.gates.passed:
        lines.append("- This version failed required gates and must not serve production traffic.")
    return "\n".join(lines) + "\n"


def served_by(metadata: ModelMetadata) -> str:
    """Return which runtime serves the model and why: ONNX Runtime with its parity, or scikit-learn."""
    compiled = metadata.compiled
    if compiled is None:
        return "scikit-learn (no ONNX form was attempted)"
    if compiled.file is not None:
        return f"ONNX Runtime ({compiled.message}; sha256 {compiled.sha256})"
    return f"scikit-learn ({compiled.message})"


def _metrics(metrics: Metrics | None) -> list[str]:
    if metrics is None:
        return ["No metrics.json was registered with this version."]
    base = metrics.baseline.overall if metrics.baseline is not None else {}
    rows = [(name, value, base.get(name)) for name, value in sorted(metrics.overall.items())]
    lines = markdown_table(("metric", "held-out value", "dummy baseline"), rows)
    lines += ["", baseline_line(metrics)]
    slices = [
        (
            f"{column}={value}",
            entry.get("rows"),
            {k: v for k, v in entry.items() if k not in ("rows", "skipped")},
        )
        for column, groups in metrics.slices.items()
        for value, entry in groups.items()
    ]
    if slices:
        names = sorted({k for _, _, values in slices for k in values})
        lines += ["", "### Per slice", ""]
        lines += markdown_table(
            ("slice", "rows", *names),
            [(key, rows, *(values.get(n) for n in names)) for key, rows, values in slices],
        )
    return lines


def _gates(lineage: Lineage) -> list[str]:
    gates = lineage.gates
    if gates is None:
        return ["No gate record: this version cannot be promoted to production."]
    rows = [(g.name, str(g.status), "yes" if g.required else "no", g.message) for g in gates.results]
    return [
        f"Overall: **{'passed' if gates.passed else 'FAILED'}**.",
        "",
        *markdown_table(("gate", "status", "required", "message"), rows),
    ]


def _expected(feature: Feature) -> str:
    if feature.allowed is not None:
        return ", ".join(str(v) for v in feature.allowed)
    low, high = feature.min, feature.max
    if low is None and high is None:
        return "any"
    return f"{fmt(low) if low is not None else '-inf'} .. {fmt(high) if high is not None else 'inf'}"


def baseline_line(metrics: Metrics) -> str:
    """Return the dummy baseline's scores on the same held-out rows: what ``above_baseline`` floors beat."""
    if metrics.baseline is None:
        return "No dummy baseline: the model's metadata records none, so no floor above it can be judged."
    base = metrics.baseline.overall
    scores = ", ".join(f"{m} {fmt(base.get(m))}" for m in metric_names(metrics.task) if m in base)
    return f"Dummy baseline ({described(metrics.baseline)}) on the same {metrics.rows:,} held-out rows: {scores}."


def needs_code(metadata: ModelMetadata) -> str:
    """Return the team's files the model imports, with their sha256 prefixes (``none`` for ml-cicd's kinds)."""
    files = metadata.needs.files if metadata.needs is not None else ()
    return ", ".join(f"{f.path} ({f.sha256[:12]})" for f in files) or "none"


def needs_libraries(metadata: ModelMetadata) -> str:
    """Return the libraries loading the model imports, with the versions training had (``not recorded``)."""
    if metadata.needs is None:
        return "not recorded"
    return ", ".join(f"{name} {version}" for name, version in metadata.needs.libraries.items())

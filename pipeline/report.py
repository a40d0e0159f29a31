"""Write report.md (and a PNG plot) for a GitHub job summary or a PR comment.

    python -m pipeline report --config configs/pipeline.toml --out out
    cat out/report.md >> "$GITHUB_STEP_SUMMARY"

Reads whatever the earlier steps left in --out (gates.json, metrics.json,
validation.json, drift.json, model/, holdout.parquet) and says which inputs were not
produced; it also writes a report after a failed gate. The plot is
confusion_matrix.png for classification and residuals.png for regression.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.artifact import load_artifact
from model.errors import ArtifactError
from model.files import write_bytes_atomic, write_text_atomic
from pipeline.config import Config, load_config
from pipeline.errors import PipelineError
from pipeline.gates import class_fractions, drifted_features, fmt, score_holdout
from pipeline.metrics import DEFAULT_METRIC, DIRECTION, metric_names

REPORT_FILE = "report.md"
CONFUSION_PNG = "confusion_matrix.png"
RESIDUALS_PNG = "residuals.png"
TOP_DRIFT = 8
MAX_LISTED = 10

# input file -> the step that writes it
INPUTS = {
    "gates.json": "gate",
    "metrics.json": "evaluate",
    "validation.json": "validate",
    "drift.json": "validate, with drift.reference set",
    "model/metadata.json": "train",
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` options."""
    parser.add_argument("--out", default="out", help="artefact directory to read and write (default out)")


def run(args: argparse.Namespace) -> int:
    """Write ``report.md`` and the plot into --out; return 0 even when the gates failed."""
    config = load_config(args.config)
    out = Path(args.out)
    text = build_report(config, out)
    write_text_atomic(out / REPORT_FILE, text)
    print(f"report: wrote {out / REPORT_FILE}")
    return 0


def build_report(config: Config, out: Path) -> str:
    """Return the markdown report for the artefacts in ``out`` (writing the plot beside it)."""
    inputs = {name: _load_json(out / name) for name in INPUTS}
    gates, metrics, validation, drift, metadata = (inputs[name] for name in INPUTS)
    missing = [f"`{name}` ({step})" for name, step in INPUTS.items() if inputs[name] is None]
    task = str((metadata or {}).get("task") or (metrics or {}).get("task") or config.data.task)

    plot_line = _plot(task, out, metrics, metadata)
    sections = [
        _headline(gates, missing),
        _model_section(config, metadata),
        _champion_section(task, gates, metrics),
        _gate_section(gates),
        _validation_section(validation),
        _drift_section(drift),
        _latency_section(metrics),
        _slice_section(config, task, metrics),
        _class_section(metrics),
        "## Plot\n\n" + plot_line,
    ]
    if missing:
        sections.append("## Not produced\n\n" + "\n".join(f"- {item}" for item in missing))
    return "\n\n".join(s.rstrip() for s in sections if s) + "\n"


# ---------------------------------------------------------------------------------------------
# Sections


def _headline(gates: dict[str, Any] | None, missing: list[str]) -> str:
    if gates is None:
        return "# Model report: gates not run\n\nNo `gates.json`: the pipeline stopped before the gate step."
    failed = [g for g in gates.get("gates", []) if g.get("status") == "failed"]
    blocking = [g["name"] for g in failed if g.get("required")]
    advisory = [g["name"] for g in failed if not g.get("required")]
    if gates.get("passed"):
        line = "All required gates passed."
        if advisory:
            line += f" Advisory gate(s) failed: {', '.join(advisory)}."
        return f"# Model report: PASSED\n\n{line}"
    line = f"Required gate(s) failed: **{', '.join(blocking) or 'unknown'}**."
    if advisory:
        line += f" Advisory gate(s) failed: {', '.join(advisory)}."
    return f"# Model report: FAILED\n\n{line}"


def _model_section(config: Config, metadata: dict[str, Any] | None) -> str:
    if metadata is None:
        return ""
    rows = [
        ("task", metadata.get("task")),
        ("target", metadata.get("target")),
        ("model", metadata.get("kind")),
        ("train rows", metadata.get("train_rows")),
        ("held-out rows", metadata.get("holdout_rows")),
        ("data sha256", _short(metadata.get("data_sha256"))),
        ("model sha256", _short(metadata.get("model_sha256"))),
        ("git commit", _short(metadata.get("git_commit"))),
        ("created", metadata.get("created_at")),
    ]
    lines = ["## Candidate model", ""]
    if config.description:
        lines += [config.description, ""]
    lines += _table(("", "value"), [(k, _cell(v)) for k, v in rows if v is not None])
    return "\n".join(lines)


def _champion_section(task: str, gates: dict[str, Any] | None, metrics: dict[str, Any] | None) -> str:
    lines = ["## Metrics vs champion", ""]
    champion = (gates or {}).get("champion")
    if not champion:
        reason = _gate_message(gates, "no_regression") or "no champion (the gate step did not run)"
        if not reason.startswith("no champion"):
            reason = f"no champion compared: {reason}"
        lines += [reason[0].upper() + reason[1:].rstrip(".") + ".", ""]
        overall = (metrics or {}).get("overall")
        if isinstance(overall, dict):
            lines += ["Candidate on the held-out rows:", ""]
            lines += _table(
                ("metric", "candidate"), [(m, fmt(overall.get(m))) for m in _ordered(task, overall)]
            )
        return "\n".join(lines)
    metric = champion.get("metric")
    cand = champion.get("candidate") or {}
    champ = champion.get("champion") or {}
    version = champion.get("version")
    who = f"version {version}" if version is not None else f"`{champion.get('path')}`"
    lines += [
        f"Champion {who} (model sha256 {_short(champion.get('model_sha256'))}) re-scored on the same "
        f"{champion.get('rows', '?')} held-out rows as the candidate.",
        "",
    ]
    rows = []
    for name in _ordered(task, cand):
        a, b = cand.get(name), champ.get(name)
        delta = a - b if isinstance(a, int | float) and isinstance(b, int | float) else None
        verdict = "-" if delta is None else _verdict(name, delta)
        rows.append((name + (" (gate)" if name == metric else ""), fmt(a), fmt(b), _signed(delta), verdict))
    lines += _table(("metric", "candidate", "champion", "delta", ""), rows)
    if champion.get("ci_low") is not None:
        confidence = champion.get("confidence") or 0.95
        lines += [
            "",
            f"{metric} improvement {_signed(champion.get('delta'))}, {confidence:.0%} paired-bootstrap CI "
            f"{_signed(champion.get('ci_low'))} .. {_signed(champion.get('ci_high'))} "
            f"({champion.get('resamples', '?')} resamples; positive = candidate better).",
        ]
    return "\n".join(lines)


def _gate_section(gates: dict[str, Any] | None) -> str:
    if gates is None:
        return ""
    rows = [
        (
            g.get("name", "?"),
            str(g.get("status", "?")).upper() if g.get("status") == "failed" else str(g.get("status", "?")),
            "yes" if g.get("required") else "no",
            fmt(g.get("observed")),
            fmt(g.get("threshold")),
            _cell(g.get("message", "")),
        )
        for g in gates.get("gates", [])
    ]
    return "\n".join(
        ["## Gates", "", *_table(("gate", "status", "required", "observed", "threshold", "message"), rows)]
    )


def _validation_section(validation: dict[str, Any] | None) -> str:
    if validation is None:
        return ""
    passed = validation.get("passed")
    rows = validation.get("rows")
    head = f"Validation {'passed' if passed else 'FAILED' if passed is False else 'ran'}"
    if rows is not None:
        head += f" on {rows} rows"
    failures = _validation_failures(validation)
    checks = validation.get("checks")
    if isinstance(checks, list):
        head += f": {len(checks)} checks, {len(failures)} failure(s)"
    lines = ["## Validation", "", head + "."]
    if failures:
        lines.append("")
        lines += [f"- {_cell(f)}" for f in failures[:MAX_LISTED]]
        if len(failures) > MAX_LISTED:
            lines.append(f"- ... and {len(failures) - MAX_LISTED} more (see validation.json)")
    return "\n".join(lines)


def _validation_failures(validation: dict[str, Any]) -> list[str]:
    """Return one message per validation failure (see pipeline/validate.py)."""
    return [_describe_check(item) for item in validation.get("failures") or []]


def _describe_check(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    if item.get("message"):
        column = item.get("column")
        prefix = f"{column}: " if column and str(column) not in str(item["message"]) else ""
        return f"{prefix}{item['message']}"
    return ", ".join(f"{k}={v}" for k, v in item.items())


def _drift_section(drift: dict[str, Any] | None) -> str:
    if drift is None:
        return ""
    passed = drift.get("passed")
    drifted = drifted_features(drift)
    reference = drift.get("reference")
    head = f"Drift {'within limits' if passed else 'BEYOND LIMITS' if passed is False else 'measured'}"
    if reference:
        head += f" against `{reference}`"
    head += f": {len(drifted)} drifted feature(s)" + (f" ({', '.join(drifted)})" if drifted else "") + "."
    lines = ["## Drift", "", head]
    features = _drift_rows(drift)
    if features:
        features.sort(key=lambda f: -(f.get("psi") or 0.0))
        rows = [
            (
                str(f.get("feature")),
                fmt(f.get("psi")),
                fmt(f.get("ks_statistic")),
                fmt(f.get("ks_pvalue")),
                "yes" if f.get("drifted") else "no",
            )
            for f in features[:TOP_DRIFT]
        ]
        lines += ["", f"Top {len(rows)} features by PSI:", ""]
        lines += _table(("feature", "PSI", "KS stat", "KS p-value", "drifted"), rows)
    return "\n".join(lines)


def _drift_rows(drift: dict[str, Any]) -> list[dict[str, Any]]:
    """Return drift.json's per-feature rows (see pipeline/drift.py)."""
    return [dict(f) for f in drift.get("features") or [] if isinstance(f, dict)]


def _latency_section(metrics: dict[str, Any] | None) -> str:
    latency = (metrics or {}).get("latency")
    if not isinstance(latency, dict):
        return ""
    rows = [(key.replace("_", " "), fmt(value)) for key, value in sorted(latency.items())]
    return "\n".join(["## Latency (in-process)", "", *_table(("measure", "value"), rows)])


def _slice_section(config: Config, task: str, metrics: dict[str, Any] | None) -> str:
    slices = (metrics or {}).get("slices")
    if not isinstance(slices, dict) or not slices:
        return ""
    metric = config.gates.slices.metric or DEFAULT_METRIC.get(task, "")
    floor = config.gates.slices.min
    rows = []
    for column, groups in slices.items():
        for value, entry in (groups or {}).items():
            score = entry.get(metric)
            note = "below floor" if floor is not None and score is not None and score < floor else ""
            rows.append(
                (f"{column}={value}", fmt(entry.get("rows")), fmt(score), entry.get("skipped") or note)
            )
    title = f"## Slices ({metric}" + (f", floor {floor:g})" if floor is not None else ")")
    return "\n".join([title, "", *_table(("slice", "rows", metric, ""), rows)])


def _class_section(metrics: dict[str, Any] | None) -> str:
    distribution = (metrics or {}).get("prediction_distribution")
    if not isinstance(distribution, dict) or "std" in distribution:
        if isinstance(distribution, dict):
            rows = [(k, fmt(v)) for k, v in sorted(distribution.items()) if isinstance(v, int | float)]
            return "\n".join(["## Prediction distribution", "", *_table(("statistic", "value"), rows)])
        return ""
    shares = class_fractions(distribution)
    rows = [(label, f"{share:.1%}") for label, share in sorted(shares.items())]
    return "\n".join(["## Prediction distribution", "", *_table(("class", "share of predictions"), rows)])


# ---------------------------------------------------------------------------------------------
# Plot


def _plot(task: str, out: Path, metrics: dict[str, Any] | None, metadata: dict[str, Any] | None) -> str:
    """Write the task's plot into ``out``; return the markdown that shows it (or why it is absent)."""
    try:
        if task == "regression":
            residuals = _residuals(out, metadata)
            if residuals is None:
                return "No residual plot: needs `model/` and `holdout.parquet`."
            write_bytes_atomic(out / RESIDUALS_PNG, residual_png(*residuals))
            return f"![residuals]({RESIDUALS_PNG})"
        confusion = (metrics or {}).get("confusion_matrix")
        if not isinstance(confusion, dict) or "matrix" not in confusion:
            return "No confusion matrix: `metrics.json` has none."
        write_bytes_atomic(out / CONFUSION_PNG, confusion_png(confusion["labels"], confusion["matrix"]))
        return f"![confusion matrix]({CONFUSION_PNG})"
    except (PipelineError, ArtifactError) as exc:
        return f"No plot: {exc}."


def _residuals(out: Path, metadata: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray] | None:
    import pandas as pd

    holdout = out / "holdout.parquet"
    if metadata is None or not holdout.is_file():
        return None
    estimator, metadata = load_artifact(out / "model")
    y_true, predictions = score_holdout(estimator, metadata, pd.read_parquet(holdout), "candidate model")
    predicted = predictions.y_pred.astype(float)
    return predicted, y_true.astype(float) - predicted


def confusion_png(labels: list[Any], matrix: list[list[int]]) -> bytes:
    """Return a PNG of the confusion matrix (rows: true label, columns: predicted)."""
    plt = _pyplot()
    values = np.asarray(matrix)
    size = 2.2 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(values, cmap="Blues")
    ticks = range(len(labels))
    ax.set_xticks(ticks, [str(label) for label in labels])
    ax.set_yticks(ticks, [str(label) for label in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (held-out rows)")
    middle = values.max() / 2 if values.size else 0
    for (i, j), count in np.ndenumerate(values):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > middle else "black")
    return _png(fig)


def residual_png(predicted: np.ndarray, residuals: np.ndarray) -> bytes:
    """Return a PNG of residuals (true - predicted) against predicted values."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(predicted, residuals, s=8, alpha=0.5)
    ax.axhline(0.0, color="grey", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title("Residuals (held-out rows)")
    return _png(fig)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    _pyplot().close(fig)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Helpers


def _load_json(path: Path) -> dict[str, Any] | None:
    """Return the JSON object at ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _table(header: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> list[str]:
    """Return markdown table lines, columns padded so the plain text lines up too."""
    cells = [tuple(_cell(c) for c in header), *[tuple(_cell(c) for c in row) for row in rows]]
    widths = [max(3, *(len(row[i]) for row in cells)) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(row)) + " |" for row in cells]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return lines


def _cell(value: Any) -> str:
    return str("-" if value is None else value).replace("|", "\\|").replace("\n", " ")


def _ordered(task: str, values: dict[str, Any]) -> list[str]:
    known = [m for m in metric_names(task) if m in values]
    return known + sorted(m for m in values if m not in known)


def _signed(value: Any) -> str:
    return f"{value:+.4f}" if isinstance(value, int | float) else "-"


def _verdict(metric: str, delta: float) -> str:
    if delta == 0 or metric not in DIRECTION:
        return "same" if delta == 0 else ""
    better = delta > 0 if DIRECTION[metric] == "higher" else delta < 0
    return "better" if better else "worse"


def _short(value: Any) -> str | None:
    return str(value)[:12] if value else None


def _gate_message(gates: dict[str, Any] | None, name: str) -> str | None:
    for gate in (gates or {}).get("gates", []):
        if gate.get("name") == name:
            return str(gate.get("message", ""))
    return None

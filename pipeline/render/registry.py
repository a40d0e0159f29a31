"""What the registry commands show: a version's headline metric, metric deltas, lineage fields."""

from __future__ import annotations

import json
from typing import Any

from model.records import Lineage, Metrics, ModelMetadata
from pipeline.core.metrics import DEFAULT_METRIC, METRICS


def overall(metrics: Metrics | None) -> dict[str, float]:
    """Return the defined overall metrics of a version (empty when it has no metrics.json)."""
    return {k: v for k, v in (metrics.overall if metrics else {}).items() if v is not None}


def lineage_fields(lineage: Lineage, metadata: ModelMetadata) -> dict[str, Any]:
    """Return the facts of a version that ``registry diff`` compares, shortened for a table."""
    return {
        "model_sha256": lineage.model_sha256[:12],
        "git_commit": (lineage.git_commit or "")[:12] or None,
        "data_sha256": lineage.data_sha256[:12],
        "config_sha256": lineage.config_sha256[:12],
        "parent": vname(lineage.parent),
        "gates": lineage.gates.passed if lineage.gates is not None else None,
        "kind": metadata.kind,
        "params": json.dumps(metadata.params, sort_keys=True),
        "features": len(metadata.features),
        "train_rows": metadata.train_rows,
        "holdout_rows": metadata.holdout_rows,
        "sklearn_version": metadata.sklearn_version,
        "trained_at": metadata.created_at,
        "registered_by": lineage.registered_by,
        "registered_at": lineage.registered_at,
    }


def gates_word(passed: bool | None) -> str:
    return "-" if passed is None else ("passed" if passed else "failed")


def vname(version: Any) -> str:
    return "-" if version is None else f"v{version}"


def headline_metric(task: str, metrics: dict[str, float]) -> str | None:
    name = DEFAULT_METRIC.get(task)
    return name if name in metrics else (sorted(metrics)[0] if metrics else None)


def metric_diff(
    a: int, b: int, metrics_a: dict[str, float], metrics_b: dict[str, float]
) -> list[dict[str, Any]]:
    """Return one row per metric of either version: both values, the delta and which version is better."""
    rows: list[dict[str, Any]] = []
    for name in sorted(set(metrics_a) | set(metrics_b)):
        va, vb = metrics_a.get(name), metrics_b.get(name)
        delta = vb - va if va is not None and vb is not None else None
        better = "-"
        if va is not None and vb is not None and name in METRICS and delta != 0:
            better = f"v{b}" if METRICS[name].better(vb, va) else f"v{a}"
        rows.append({"metric": name, "a": va, "b": vb, "delta": delta, "better": better})
    return rows

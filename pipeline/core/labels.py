"""The serving image's labels: which build arguments the Dockerfile's LABEL lines take, and their values.

One mapping for the host build (``pipeline/steps/image.py``) and, mirrored in the Dagger module
(``src/ml_cicd/_containers.py``, which cannot import this package), for the engine's build;
``tests/dagger/test_module.py`` holds the two equal on the same artefact. Every value is a function of
the model artefact and the commit, so the same model gives the same labels (and image config).
"""

from __future__ import annotations

from model.records import Metrics, ModelMetadata

HEADLINE_METRICS = ("roc_auc", "f1", "accuracy", "rmse", "r2", "mae")
LABEL_ARGS = ("REVISION", "CREATED", "SOURCE", "MODEL_VERSION", "MODEL_SHA256", "MODEL_METRICS", "FLAVOUR")


def image_labels(
    metadata: ModelMetadata, metrics: Metrics | None, version: int | None, revision: str, source: str
) -> dict[str, str]:
    """Return the label build arguments: commit, model creation time, repository URL, model version, sha256,
    metrics, and the image flavour (which also picks what the image installs).

    ``source`` is a repository URL, or empty when there is none (never a local path).
    """
    return {
        "REVISION": revision or metadata.git_commit or "unknown",
        "CREATED": metadata.created_at,
        "SOURCE": source,
        "MODEL_VERSION": str(version) if version is not None else metadata.model_sha256[:12],
        "MODEL_SHA256": metadata.model_sha256,
        "MODEL_METRICS": headline(metrics.overall if metrics is not None else {}),
        "FLAVOUR": image_flavour(metadata),
    }


def image_flavour(metadata: ModelMetadata) -> str:
    """Return ``onnx`` (the lean image) when the artefact ships an ONNX form, else ``sklearn``."""
    return "onnx" if metadata.compiled is not None and metadata.compiled.file is not None else "sklearn"


def headline(overall: dict[str, float | None]) -> str:
    """Return a few overall metrics as ``name=value,...`` (4 decimals)."""
    return ",".join(f"{k}={overall[k]:.4f}" for k in HEADLINE_METRICS if overall.get(k) is not None)

"""Hash-verified model artefacts: a directory with ``model.joblib`` and ``metadata.json``.

Saving writes both into a temp directory that is renamed into place. Loading checks
the file's sha256 against the metadata and the scikit-learn version it was made
with, and refuses a mismatch with :class:`ArtifactError`.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import joblib
import sklearn

from model.errors import ArtifactError
from model.files import sha256_file, staged_directory, write_json_atomic

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


def save_artifact(directory: Path, estimator: Any, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write ``estimator`` and ``metadata`` (plus hash and versions) atomically; return the metadata."""
    with staged_directory(Path(directory)) as stage:
        joblib.dump(estimator, stage / MODEL_FILE)
        full = {
            **metadata,
            "model_file": MODEL_FILE,
            "model_sha256": sha256_file(stage / MODEL_FILE),
            "sklearn_version": sklearn.__version__,
            "python_version": platform.python_version(),
        }
        write_json_atomic(stage / METADATA_FILE, full)
    return full


def read_metadata(directory: Path) -> dict[str, Any]:
    """Return an artefact's metadata without loading the model."""
    path = Path(directory) / METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: not a model artefact (no {METADATA_FILE})") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable metadata ({exc})") from None
    if not isinstance(data, dict) or "model_sha256" not in data:
        raise ArtifactError(f"{path}: metadata has no model_sha256")
    return data


def load_artifact(directory: Path) -> tuple[Any, dict[str, Any]]:
    """Return ``(estimator, metadata)`` after verifying the model hash and sklearn version."""
    directory = Path(directory)
    metadata = read_metadata(directory)
    model_path = directory / MODEL_FILE
    if not model_path.is_file():
        raise ArtifactError(f"{directory}: model file {MODEL_FILE} is missing")
    actual = sha256_file(model_path)
    if actual != metadata["model_sha256"]:
        raise ArtifactError(
            f"{model_path}: sha256 {actual[:12]}... does not match metadata "
            f"{metadata['model_sha256'][:12]}...; refusing a tampered or corrupt model"
        )
    made_with = metadata.get("sklearn_version")
    if made_with != sklearn.__version__:
        raise ArtifactError(
            f"{directory}: model was saved with scikit-learn {made_with}, this environment has "
            f"{sklearn.__version__}; retrain or install the matching version"
        )
    try:
        estimator = joblib.load(model_path)
    except Exception as exc:  # unpickling can raise nearly anything
        raise ArtifactError(f"{model_path}: cannot load model ({exc})") from None
    return estimator, metadata

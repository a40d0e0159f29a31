"""Hash-verified model artefacts: a directory with ``model.joblib`` and ``metadata.json``.

Saving writes both into a temp directory that is renamed into place. ``verify_artifact``
checks the model file's sha256 against the metadata (the one place this is checked; cheap to
import: joblib and scikit-learn are imported only to save or load an estimator).
``load_artifact`` also checks the scikit-learn version the model was made with. Every
mismatch is an :class:`ArtifactError` naming the file.
"""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path
from typing import Any

from model.codec import read_record, write_record
from model.errors import ArtifactError
from model.files import sha256_file, staged_directory
from model.records import ModelMetadata

MODEL_FILE = "model.joblib"
METADATA_FILE = ModelMetadata.FILE


def save_artifact(directory: Path, estimator: Any, metadata: ModelMetadata) -> ModelMetadata:
    """Write ``estimator`` and its metadata (with file name, hash and versions) atomically; return it."""
    import joblib
    import sklearn

    with staged_directory(Path(directory)) as stage:
        joblib.dump(estimator, stage / MODEL_FILE)
        full = dataclasses.replace(
            metadata,
            model_file=MODEL_FILE,
            model_sha256=sha256_file(stage / MODEL_FILE),
            sklearn_version=sklearn.__version__,
            python_version=platform.python_version(),
        )
        write_record(stage / METADATA_FILE, full)
    return full


def read_metadata(directory: Path) -> ModelMetadata:
    """Return an artefact's metadata without loading or verifying the model."""
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{directory}: not a model artefact (no {METADATA_FILE})")
    return read_record(path, ModelMetadata, "model metadata")


def verify_artifact(directory: Path, what: str = "") -> ModelMetadata:
    """Check the model file in ``directory`` against the sha256 in its metadata; return the metadata."""
    metadata = read_metadata(directory)
    model_path = Path(directory) / metadata.model_file
    suffix = f" ({what})" if what else ""
    if not model_path.is_file():
        raise ArtifactError(f"{model_path}: model file is missing{suffix}")
    actual = sha256_file(model_path)
    if actual != metadata.model_sha256:
        raise ArtifactError(
            f"{model_path}: sha256 {actual[:12]}... does not match metadata "
            f"{metadata.model_sha256[:12]}...{suffix}; refusing a tampered or corrupt model"
        )
    return metadata


def load_artifact(directory: Path, what: str = "") -> tuple[Any, ModelMetadata]:
    """Return ``(estimator, metadata)`` after verifying the model hash and scikit-learn version."""
    import joblib
    import sklearn

    metadata = verify_artifact(directory, what)
    if metadata.sklearn_version != sklearn.__version__:
        raise ArtifactError(
            f"{directory}: model was saved with scikit-learn {metadata.sklearn_version}, this environment "
            f"has {sklearn.__version__}; retrain or install the matching version"
        )
    model_path = Path(directory) / metadata.model_file
    try:
        estimator = joblib.load(model_path)
    except Exception as exc:  # unpickling can raise nearly anything
        raise ArtifactError(f"{model_path}: cannot load model ({exc})") from None
    return estimator, metadata

"""Hash-verified, signed model artefacts: a directory with ``model.joblib``, ``metadata.json``, ``signature.json``.

Saving writes them (and ``model.onnx`` when training compiled one) into a temp directory that is
renamed into place, signed with the signing key (``model/signing.py``). ``verify_artifact``
checks the model file's sha256 against the metadata (the one place this is checked; cheap to
import: joblib and scikit-learn are imported only to save or load an estimator).
``load_artifact`` unpickles only after the signature checks with the key held here (and the
scikit-learn version matches); ``read_compiled`` checks the ONNX file's sha256. The file names an
artefact's metadata gives are plain names in its directory, never a path. Every mismatch is an
:class:`ArtifactError` naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import platform
import re
from pathlib import Path
from typing import Any

from model import signing
from model.codec import read_record, write_record
from model.errors import ArtifactError
from model.files import FILE_MODE, sha256_file, staged_directory
from model.records import Lineage, ModelMetadata, Signature
from model.settings import Runtime

MODEL_FILE = "model.joblib"
METADATA_FILE = ModelMetadata.FILE
SIGNATURE_FILE = signing.SIGNATURE_FILE
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# Set by the serving Dockerfile: the model in /app/model was checked (hash and signature) when the
# image was built, and nothing but the image can change it; the server has no signing key.
BAKED_ENV = "ML_CICD_MODEL_CHECKED_AT_BUILD"


def save_artifact(
    directory: Path, estimator: Any, metadata: ModelMetadata, extra: dict[str, bytes] | None = None
) -> ModelMetadata:
    """Write ``estimator``, ``extra`` files and the metadata (with file name, hash and versions) atomically.

    Return the metadata as written.
    """
    import joblib
    import sklearn

    with staged_directory(Path(directory)) as stage:
        joblib.dump(estimator, stage / MODEL_FILE)
        for name, data in (extra or {}).items():
            (stage / name).write_bytes(data)
            (stage / name).chmod(FILE_MODE)
        full = dataclasses.replace(
            metadata,
            model_file=MODEL_FILE,
            model_sha256=sha256_file(stage / MODEL_FILE),
            sklearn_version=sklearn.__version__,
            python_version=platform.python_version(),
        )
        write_record(stage / METADATA_FILE, full)
        key = signing.signing_key(create=True)
        assert key is not None
        signing.sign(stage, artifact_files(full), key)
    return full


def read_metadata(directory: Path) -> ModelMetadata:
    """Return an artefact's metadata without loading or verifying the model."""
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(f"{directory}: not a model artefact (no {METADATA_FILE})")
    return read_record(path, ModelMetadata, "model metadata")


def artifact_files(metadata: ModelMetadata) -> tuple[str, ...]:
    """Return the files an artefact consists of: the model, its metadata, and the ONNX form when shipped.

    Each is a plain file name inside the artefact's directory: a name that is a path (``../x``,
    ``a/b``) is refused, so no copy, export or build can reach outside the directory.
    """
    compiled = metadata.compiled.file if metadata.compiled is not None else None
    names = (metadata.model_file, METADATA_FILE, *((compiled,) if compiled else ()))
    for key, name in zip(("model_file", "", "compiled.file"), names, strict=False):
        if not PLAIN_NAME.fullmatch(name) or name in {".", ".."}:
            raise ArtifactError(
                f"metadata.json: {key or 'file'} {name!r} is not a plain file name in the artefact's directory"
            )
    return names


def signed_files(metadata: ModelMetadata) -> tuple[str, ...]:
    """Return what a copy of the artefact carries: its files and its signature."""
    return (*artifact_files(metadata), SIGNATURE_FILE)


def check_signature(directory: Path, metadata: ModelMetadata, what: str = "") -> Signature:
    """Return the artefact's signature after checking it, with the key held here, against its files.

    Raise :class:`model.signing.SignatureError` saying why not. Reads bytes and JSON only.
    """
    return signing.verify(Path(directory), artifact_files(metadata), signing.signing_key(), what)


def verify_artifact(directory: Path, what: str = "", compiled_too: bool = True) -> ModelMetadata:
    """Check the model file (and a shipped ONNX file) in ``directory`` against the metadata's sha256s.

    Return the metadata. ``compiled_too=False`` checks the pickled model only (for a caller that
    loads just that one and checks the ONNX file itself, as the gate's parity check does).
    """
    metadata = read_metadata(directory)
    artifact_files(metadata)  # refuse file names that are paths before touching any file
    suffix = f" ({what})" if what else ""
    _check_hash(Path(directory) / metadata.model_file, metadata.model_sha256, "model", suffix)
    compiled = metadata.compiled
    if compiled_too and compiled is not None and compiled.file is not None:
        _check_hash(Path(directory) / compiled.file, str(compiled.sha256), "ONNX model", suffix)
    return metadata


def _check_hash(path: Path, expected: str, what: str, suffix: str) -> None:
    if not path.is_file():
        raise ArtifactError(f"{path}: {what} file is missing{suffix}")
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(
            f"{path}: sha256 {actual[:12]}... does not match metadata "
            f"{expected[:12]}...{suffix}; refusing a tampered or corrupt {what}"
        )


def read_compiled(directory: Path, metadata: ModelMetadata) -> bytes | None:
    """Return the served ONNX model's bytes, checked against the metadata's sha256 (None: none is shipped)."""
    compiled = metadata.compiled
    if compiled is None or compiled.file is None:
        return None
    artifact_files(metadata)  # the ONNX file's name is a plain name in the directory
    path = Path(directory) / compiled.file
    if not path.is_file():
        raise ArtifactError(f"{path}: ONNX model file is missing")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != compiled.sha256:
        raise ArtifactError(
            f"{path}: sha256 {actual[:12]}... does not match metadata {str(compiled.sha256)[:12]}...; "
            "refusing a tampered or corrupt ONNX model"
        )
    return data


def model_version(model_dir: Path, metadata: ModelMetadata) -> str:
    """Return the version to report: the registry version in lineage.json, else the sha256 prefix."""
    path = Path(model_dir) / Lineage.FILE
    if path.is_file():
        return str(read_record(path, Lineage).version)
    return metadata.model_sha256[:12]


def check_servable(model_dir: Path, runtime: Runtime = "auto") -> tuple[ModelMetadata, bytes | None]:
    """Check, without loading a model, that ``runtime`` can serve the artefact here; return what it read.

    Returns the metadata and the verified ONNX bytes (None: scikit-learn serves). Raises
    :class:`ArtifactError` for a bad artefact, or a runtime this installation lacks (the lean
    serving image has no scikit-learn).
    """
    model_dir = Path(model_dir)
    metadata = verify_artifact(model_dir)
    if not metadata.features:
        raise ArtifactError(f"{model_dir}: model metadata lists no features; retrain to record them")
    onnx = read_compiled(model_dir, metadata) if runtime != "sklearn" else None
    why = metadata.compiled.message if metadata.compiled is not None else "it was not compiled"
    if runtime == "onnx" and onnx is None:
        raise ArtifactError(f"{model_dir}: the model has no ONNX form to serve ({why})")
    if onnx is not None and importlib.util.find_spec("onnxruntime") is None:
        if runtime == "onnx":
            raise ArtifactError(f"{model_dir}: this image has no ONNX Runtime (the sklearn flavour)")
        onnx, why = None, "this image has no ONNX Runtime"  # auto in the sklearn flavour
    if onnx is None and importlib.util.find_spec("sklearn") is None:
        raise ArtifactError(
            f"{model_dir}: the model has no ONNX form ({why}) and this image has no scikit-learn: "
            "build the sklearn flavour of the image"
        )
    return metadata, onnx


def load_artifact(directory: Path, what: str = "") -> tuple[Any, ModelMetadata]:
    """Return ``(estimator, metadata)`` after checking the model hash, signature and scikit-learn version.

    The pickle is opened only after its signature checks with the key held here, since loading it
    runs code; inside the serving image (``ML_CICD_MODEL_CHECKED_AT_BUILD=1``, set by the Dockerfile)
    the build did that check and the hash is checked again.
    """
    import joblib
    import sklearn

    metadata = verify_artifact(directory, what, compiled_too=False)
    if os.environ.get(BAKED_ENV) != "1":
        check_signature(directory, metadata, what)
    if metadata.sklearn_version != sklearn.__version__:
        raise ArtifactError(
            f"{directory}: model was saved with scikit-learn {metadata.sklearn_version}, this environment "
            f"has {sklearn.__version__}; retrain or install the matching version"
        )
    model_path = Path(directory) / metadata.model_file
    try:
        estimator = joblib.load(model_path)
    except ModuleNotFoundError as exc:  # the model's own library or code is not installed here
        raise ArtifactError(f"{model_path}: {_missing(metadata, exc.name or str(exc))}") from None
    except Exception as exc:  # unpickling can raise nearly anything
        raise ArtifactError(f"{model_path}: cannot load model ({exc})") from None
    return estimator, metadata


def _missing(metadata: ModelMetadata, module: str) -> str:
    """Return why a model cannot load without ``module``, and what provides it."""
    from model.boosted import BOOST_EXTRA, BOOSTED

    needs = metadata.needs
    team = [name for name in (needs.modules if needs is not None else ()) if name.partition(".")[0] == module]
    if needs is not None and team:
        files = ", ".join(f.path for f in needs.files if f.path.partition("/")[0] == module) or module
        return (
            f"the model needs the team's module {module!r} ({files}; from model.factory {needs.factory}), "
            "which is not importable here: run it in the project (its root on PYTHONPATH) or in the "
            "image `pipeline image build` makes, which carries the team's code"
        )
    hint = f" (pip install '{BOOST_EXTRA}')" if metadata.kind in BOOSTED else ""
    if needs is not None and not hint:
        pins = [f"{name}=={version}" for name, version in needs.libraries.items()]
        hint = f" (the model records: {', '.join(pins)})" if pins else ""
    return (
        f"the model ({metadata.kind}) needs the Python module {module!r}, which is not installed here{hint}"
    )

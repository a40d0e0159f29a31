"""Build the serving image of a trained model with a local Docker engine (the host twin of Dagger's build).

The build context is assembled in a temp directory from exactly what the image needs: ml-cicd's
own Dockerfile, serving requirements and ``model/`` package (``pipeline/io/shipped.py``, never the
project's files of those names) and the artefact, so it is small and never picks up local files by
accident, and what the model itself needs (the team's code, libraries the flavour lacks:
``pipeline/steps/model_inputs.py``). The flavour follows the model: the lean ``onnx`` image (no scikit-learn, SciPy or
pandas) when its artefact ships ``model.onnx``, else ``sklearn``; a forced flavour is named in the
tag. The name is ``serving.image_repository`` and the tag ``serving.image_tag`` (default the model's
sha256[:12]). Base image: the given one, else ``$ML_CICD_BASE_IMAGE``, else the Dockerfile's pinned
default. pip inside the build uses what pip on this machine is configured with: the CA bundle
(given, else pip's ``cert`` setting) as a BuildKit secret, and an http(s) ``index-url`` as the
BuildKit secret ``pip-index-url``, never a build argument.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from model.artifact import check_signature, signed_files, verify_artifact
from model.codec import read_optional, read_record, write_record
from model.records import Lineage, Metrics
from pipeline.core.labels import image_flavour, image_labels
from pipeline.errors import DataError, PipelineError
from pipeline.io import docker, outdir
from pipeline.io.git import source_url
from pipeline.io.run import run_id
from pipeline.io.shipped import DOCKERFILE, SERVE_REQUIREMENTS, model_package, shipped
from pipeline.records import Image
from pipeline.steps.model_inputs import write_model_inputs

DEFAULT_REPOSITORY = "ml-cicd-model"


def build(
    out: Path,
    tag: str | None = None,
    base_image: str | None = None,
    ca_bundle: Path | None = None,
    revision: str | None = None,
    flavour: str = "auto",
    project: Path = Path("."),
    repository: str = DEFAULT_REPOSITORY,
    progress: Callable[[str], None] = lambda line: None,
) -> Image:
    """Build the serving image from ``out/model``; write and return ``out/image.json``.

    ``tag`` is the whole reference (default ``<repository>:<sha256[:12]>``); ``project`` is the
    team's repository, whose git remote becomes the source label.
    """
    model_dir = out / outdir.MODEL
    if not (model_dir / "metadata.json").is_file():
        raise DataError(f"{model_dir}: no trained model (run `python -m pipeline train` first)")
    metadata = verify_artifact(model_dir)
    check_signature(model_dir, metadata)  # the image's server trusts its model: check it here, first
    if not docker.engine_available():
        raise PipelineError("no Docker engine answers; run scripts/docker-engine.sh (or use Dagger)")
    sha = metadata.model_sha256
    natural = image_flavour(metadata)
    chosen = natural if flavour == "auto" else flavour
    if chosen == "onnx" and natural != "onnx":
        why = metadata.compiled.message if metadata.compiled is not None else "it was not compiled"
        raise DataError(f"--flavour onnx: the model ships no ONNX form ({why}); build the sklearn flavour")
    tag = tag or f"{repository}:{sha[:12]}" + ("" if chosen == natural else f"-{chosen}")
    base_image = base_image or os.environ.get("ML_CICD_BASE_IMAGE") or None
    base_label = base_image or docker.default_base_image(shipped(DOCKERFILE))
    problem = docker.pull_error(base_label)
    if problem is not None:
        raise DataError(
            f"base image {base_label} is not available to this Docker engine ({problem}); set "
            "ML_CICD_BASE_IMAGE (or --base-image) to a local Python base: scripts/docker-engine.sh builds "
            "local/python:3.13-trixie"
        )
    if ca_bundle is None:
        configured = docker.pip_setting("cert")
        ca_bundle = Path(configured) if configured and Path(configured).is_file() else None
    elif not ca_bundle.is_file():
        raise DataError(f"--ca-bundle {ca_bundle}: no such file (expected a PEM CA bundle)")
    lineage = read_optional(model_dir / Lineage.FILE, Lineage)
    metrics_path = next((p for p in (out / Metrics.FILE, model_dir / Metrics.FILE) if p.is_file()), None)
    metrics = read_record(metrics_path, Metrics) if metrics_path is not None else None
    version = lineage.version if lineage is not None else None
    build_args = {
        "MODEL_DIR": "artefact",
        **image_labels(metadata, metrics, version, revision or "", source_url(project)),
        "FLAVOUR": chosen,
    }
    if base_image:
        build_args["BASE_IMAGE"] = base_image
    index_url = docker.pip_setting("index-url")
    if not (index_url and index_url.startswith(("http://", "https://"))):
        index_url = None  # pip's default, PyPI
    progress(f"building {tag} ({chosen} flavour) on {base_label}...")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ml-cicd-image-") as tmp:
        context = Path(tmp)
        shutil.copy2(shipped(DOCKERFILE), context / DOCKERFILE)
        for name in SERVE_REQUIREMENTS:
            shutil.copy2(shipped(name), context / name)
        shutil.copytree(model_package(), context / "model", ignore=shutil.ignore_patterns("__pycache__"))
        (context / "artefact").mkdir()
        for name in (*signed_files(verify_artifact(model_dir)), Lineage.FILE, Metrics.FILE):
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, context / "artefact" / name)
        pins = write_model_inputs(metadata, project, context, chosen, progress)
        if pins:
            progress(f"the model needs {', '.join(pins)} besides the {chosen} flavour's libraries")
        info = docker.build(context, tag, build_args, ca_bundle, index_url)
    result = Image(
        run=run_id(),
        tag=tag,
        id=str(info["Id"]),
        size_bytes=int(info["Size"]),
        base_image=base_label,
        flavour=chosen,
        model_sha256=sha,
        build_seconds=round(time.perf_counter() - started, 1),
    )
    write_record(out / Image.FILE, result)
    progress(f"built {tag} ({chosen}): {result.size_bytes / 1e6:.0f} MB in {result.build_seconds} s")
    return result

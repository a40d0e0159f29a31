"""Build and run the serving image with a local Docker engine (the host twin of Dagger's build).

    python -m pipeline image build --out out            # out/model -> image, writes out/image.json
    python -m pipeline image run --out out              # start it on a loopback port, print URL and id
    python -m pipeline image stop CONTAINER_ID

The build context is assembled in a temp directory from exactly what the image needs
(Dockerfile, the serving requirements, the ``model/`` package and the artefact), so it is
small and never picks up local files by accident. The flavour follows the model: the lean
``onnx`` image (no scikit-learn, SciPy or pandas) when its artefact ships ``model.onnx``, else
``sklearn``; ``--flavour`` forces one (for comparisons; the tag then says which). Base image: ``--base-image``, else
``$ML_CICD_BASE_IMAGE``, else the Dockerfile's pinned default. pip inside the build uses
what pip on this machine is configured with: the CA bundle (``--ca-bundle``, else pip's
``cert`` setting from ``$PIP_CERT`` or a pip config file) is passed as a BuildKit secret,
mounted for the install and never stored in a layer; an http(s) ``index-url`` (it may carry
credentials) is the BuildKit secret ``pip-index-url``, never a build argument, so it shows in no
command line, layer or history entry (default: PyPI).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from model.artifact import check_signature, signed_files, verify_artifact
from model.codec import read_optional, read_record, write_record
from model.records import Lineage, Metrics
from pipeline.config import DEFAULT_CONFIG
from pipeline.core.labels import image_flavour, image_labels
from pipeline.errors import DataError, PipelineError
from pipeline.io import docker, outdir
from pipeline.io.git import source_url
from pipeline.io.run import run_id
from pipeline.records import Image

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = ("requirements-serve-common.txt", "requirements-serve.txt", "requirements-serve-sklearn.txt")
FLAVOURS = ("auto", "onnx", "sklearn")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``image`` subcommands."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build_p = actions.add_parser("build", help="build the serving image from OUT/model")
    build_p.add_argument("--config", default=DEFAULT_CONFIG, help=argparse.SUPPRESS)  # the DAG passes it
    build_p.add_argument("--out", default="out", help="artefact directory holding model/ (default out)")
    build_p.add_argument("--tag", help="image tag (default ml-cicd-model:<model sha256[:12]>)")
    build_p.add_argument(
        "--base-image", help="base image (default $ML_CICD_BASE_IMAGE, else the Dockerfile's)"
    )
    build_p.add_argument(
        "--ca-bundle", type=Path, help="CA bundle for pip, as a build secret (default $PIP_CERT)"
    )
    build_p.add_argument("--revision", help="git commit for the revision label (default: the model's)")
    build_p.add_argument(
        "--flavour",
        choices=FLAVOURS,
        default="auto",
        help="onnx (lean), sklearn, or auto: onnx when the model ships an ONNX form (default)",
    )
    run_p = actions.add_parser("run", help="start the built image on a loopback port")
    run_p.add_argument("--out", default="out", help="artefact directory holding image.json (default out)")
    run_p.add_argument("--port", type=int, default=0, help="host port on 127.0.0.1 (default: a free one)")
    stop_p = actions.add_parser("stop", help="stop a container started by `image run`")
    stop_p.add_argument("container", help="container id")


def run(args: argparse.Namespace) -> int:
    """Run one ``image`` action."""
    if args.action == "build":
        build(Path(args.out), args.tag, args.base_image, args.ca_bundle, args.revision, args.flavour)
    elif args.action == "run":
        tag = outdir.built_tag(Path(args.out))
        if not docker.engine_available():
            raise PipelineError("no Docker engine answers; run scripts/docker-engine.sh")
        url, container = docker.start_service(tag, args.port)
        print(json.dumps({"url": url, "container": container}))
    else:
        docker.stop_service(args.container)
    return 0


def build(
    out: Path,
    tag: str | None = None,
    base_image: str | None = None,
    ca_bundle: Path | None = None,
    revision: str | None = None,
    flavour: str = "auto",
) -> Image:
    """Build the serving image from ``out/model``; write and return ``out/image.json``."""
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
    tag = tag or f"ml-cicd-model:{sha[:12]}" + ("" if chosen == natural else f"-{chosen}")
    base_image = base_image or os.environ.get("ML_CICD_BASE_IMAGE") or None
    base_label = base_image or docker.default_base_image(REPO / "Dockerfile")
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
        **image_labels(metadata, metrics, version, revision or "", source_url(REPO)),
        "FLAVOUR": chosen,
    }
    if base_image:
        build_args["BASE_IMAGE"] = base_image
    index_url = docker.pip_setting("index-url")
    if not (index_url and index_url.startswith(("http://", "https://"))):
        index_url = None  # pip's default, PyPI
    print(f"building {tag} ({chosen} flavour) on {base_label}...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ml-cicd-image-") as tmp:
        context = Path(tmp)
        shutil.copy2(REPO / "Dockerfile", context / "Dockerfile")
        for name in REQUIREMENTS:
            shutil.copy2(REPO / name, context / name)
        shutil.copytree(REPO / "model", context / "model", ignore=shutil.ignore_patterns("__pycache__"))
        (context / "artefact").mkdir()
        for name in (*signed_files(verify_artifact(model_dir)), Lineage.FILE, Metrics.FILE):
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, context / "artefact" / name)
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
    print(
        f"built {tag} ({chosen}): {result.size_bytes / 1e6:.0f} MB in {result.build_seconds} s",
        file=sys.stderr,
    )
    return result

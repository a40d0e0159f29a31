"""Build and run the serving image with a local Docker engine (the host twin of Dagger's build).

    python -m pipeline image build --out out            # out/model -> image, writes out/image.json
    python -m pipeline image run --out out              # start it on a loopback port, print URL and id
    python -m pipeline image stop CONTAINER_ID
    python -m pipeline image inputs --out out --dest DIR  # what the model adds to the build context

The image is ``serving.image_repository`` (default ml-cicd-model) tagged ``serving.image_tag``
(default the model's sha256[:12]); ``--tag`` gives the whole reference. The build itself (the
context, the flavour, the base image, pip's CA bundle and index as BuildKit secrets) is
``pipeline/steps/image.py``; ``inputs`` writes only the model's own part of the context (the team's
code, the libraries and system packages it needs: ``pipeline/steps/model_inputs.py``), for the
Dagger module's build of the same image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model.artifact import verify_artifact
from pipeline.config import DEFAULT_CONFIG, load_config, project_root
from pipeline.core.labels import image_flavour
from pipeline.errors import PipelineError
from pipeline.io import docker, outdir
from pipeline.steps.image import build
from pipeline.steps.model_inputs import write_model_inputs

FLAVOURS = ("auto", "onnx", "sklearn")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``image`` subcommands."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build_p = actions.add_parser("build", help="build the serving image from OUT/model")
    build_p.add_argument("--config", default=DEFAULT_CONFIG, help=argparse.SUPPRESS)  # the DAG passes it
    build_p.add_argument(
        "--out", type=Path, help="artefact directory holding model/ (default: out/ beside the config)"
    )
    build_p.add_argument(
        "--tag", help="image reference (default serving.image_repository:<model sha256[:12]>)"
    )
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
    run_p.add_argument(
        "--out", type=Path, help="artefact directory holding image.json (default: out/ beside the config)"
    )
    run_p.add_argument("--port", type=int, default=0, help="host port on 127.0.0.1 (default: a free one)")
    inputs_p = actions.add_parser("inputs", help="write what the model adds to the image's build context")
    inputs_p.add_argument("--config", default=DEFAULT_CONFIG, help=argparse.SUPPRESS)
    inputs_p.add_argument(
        "--out", type=Path, help="artefact directory holding model/ (default: out/ beside the config)"
    )
    inputs_p.add_argument("--dest", type=Path, required=True, help="directory to write them into")
    inputs_p.add_argument("--flavour", choices=FLAVOURS, default="auto", help="the image's flavour")
    stop_p = actions.add_parser("stop", help="stop a container started by `image run`")
    stop_p.add_argument("container", help="container id")


def run(args: argparse.Namespace) -> int:
    """Run one ``image`` action."""
    if args.action == "build":
        serving = load_config(args.config).serving
        tag = args.tag or (f"{serving.image_repository}:{serving.image_tag}" if serving.image_tag else None)
        build(
            Path(args.out),
            tag,
            args.base_image,
            args.ca_bundle,
            args.revision,
            args.flavour,
            project_root(args.config),
            serving.image_repository,
            say,
        )
    elif args.action == "inputs":
        metadata = verify_artifact(Path(args.out) / outdir.MODEL)
        flavour = image_flavour(metadata) if args.flavour == "auto" else args.flavour
        pins = write_model_inputs(metadata, project_root(args.config), Path(args.dest), flavour, say)
        say(f"wrote the model's image inputs to {args.dest} ({flavour}; {len(pins)} libraries to add)")
    elif args.action == "run":
        tag = outdir.built_tag(Path(args.out))
        if not docker.engine_available():
            raise PipelineError("no Docker engine answers; run scripts/docker-engine.sh")
        url, container = docker.start_service(tag, args.port)
        print(json.dumps({"url": url, "container": container}))
    else:
        docker.stop_service(args.container)
    return 0


def say(line: str) -> None:
    """Print a progress line to stderr."""
    print(line, file=sys.stderr, flush=True)

"""Build and run the serving image with a local Docker engine (the host twin of Dagger's build).

    python -m pipeline image build --out out            # out/model -> image, writes out/image.json
    python -m pipeline image run --out out              # start it on a loopback port, print URL and id
    python -m pipeline image stop CONTAINER_ID

The image is ``serving.image_repository`` (default ml-cicd-model) tagged ``serving.image_tag``
(default the model's sha256[:12]); ``--tag`` gives the whole reference. The build itself (the
context, the flavour, the base image, pip's CA bundle and index as BuildKit secrets) is
``pipeline/steps/image.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.config import DEFAULT_CONFIG, load_config, project_root
from pipeline.errors import PipelineError
from pipeline.io import docker, outdir
from pipeline.steps.image import build

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
            lambda line: print(line, file=sys.stderr, flush=True),
        )
    elif args.action == "run":
        tag = outdir.built_tag(Path(args.out))
        if not docker.engine_available():
            raise PipelineError("no Docker engine answers; run scripts/docker-engine.sh")
        url, container = docker.start_service(tag, args.port)
        print(json.dumps({"url": url, "container": container}))
    else:
        docker.stop_service(args.container)
    return 0

"""Serve a model artefact over HTTP on this machine (the server the serving image runs).

    python -m pipeline serve --model out/model --port 8080

Loads the artefact (hashes verified; ONNX Runtime when it ships an ONNX form, else
scikit-learn) and answers /health, /ready, /metadata, /predict and /metrics until Ctrl-C or
SIGTERM, with one worker process per CPU unless ``--workers`` says otherwise, each predicting
with one thread of the model's runtime unless ``--threads`` (or ``MODEL_THREADS``) says otherwise
(``model/settings.py``). Binds to loopback
unless ``--host`` says otherwise; ``--port 0`` picks a free port and prints it.
``--config`` is accepted for symmetry with the other commands and not read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model import settings
from model.__main__ import serve
from model.settings import RUNTIMES
from pipeline.errors import PipelineError


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options."""
    parser.add_argument(
        "--model", type=Path, default=Path("out/model"), help="model artefact directory (default out/model)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port, 0 for any free one (default 8080)")
    parser.add_argument(
        "--workers", type=int, help="worker processes (default $MODEL_WORKERS, else the CPUs available)"
    )
    parser.add_argument(
        "--runtime", choices=RUNTIMES, help="auto (ONNX when shipped), onnx or sklearn (default auto)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="threads the model's runtime may use for one prediction, per worker (default $MODEL_THREADS or 1)",
    )
    parser.add_argument(
        "--max-batch", type=int, help="records per request (default $MODEL_MAX_BATCH or 1000)"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, help="request body size limit (default $MODEL_MAX_BODY_BYTES or 4 MiB)"
    )


def run(args: argparse.Namespace) -> int:
    """Serve until stopped; exit 2 when the model cannot be loaded."""
    try:
        workers = args.workers if args.workers is not None else settings.workers_from_env()
    except ValueError as exc:
        raise PipelineError(str(exc)) from None
    if workers < 1:
        raise PipelineError(f"--workers must be >= 1, got {workers}")
    return serve(
        Path(args.model),
        args.host,
        args.port,
        args.max_batch,
        args.max_body_bytes,
        args.runtime,
        workers,
        threads=args.threads,
    )

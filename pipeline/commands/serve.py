"""Serve a model artefact over HTTP on this machine (the server the serving image runs).

    python -m pipeline serve --model out/model --port 8080

Loads the artefact (hash and scikit-learn version verified) and answers /health,
/ready, /metadata, /predict and /metrics until Ctrl-C or SIGTERM. Binds to loopback
unless ``--host`` says otherwise; ``--port 0`` picks a free port and prints it.
``--config`` is accepted for symmetry with the other commands and not read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model.__main__ import serve


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options."""
    parser.add_argument(
        "--model", type=Path, default=Path("out/model"), help="model artefact directory (default out/model)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port, 0 for any free one (default 8080)")
    parser.add_argument(
        "--max-batch", type=int, help="records per request (default $MODEL_MAX_BATCH or 1000)"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, help="request body size limit (default $MODEL_MAX_BODY_BYTES or 4 MiB)"
    )


def run(args: argparse.Namespace) -> int:
    """Serve until stopped; exit 2 when the model cannot be loaded."""
    return serve(Path(args.model), args.host, args.port, args.max_batch, args.max_body_bytes)

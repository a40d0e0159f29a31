"""Check a running model server against the offline model: health, metadata, the same answers.

    python -m pipeline smoke --url http://127.0.0.1:8080 --out out

Waits up to ``--timeout`` seconds for ``URL/ready``, then checks ``/health``, that
``/metadata`` names the local model's sha256 (``--model``, default OUT/model), that
``/predict`` on the held-out rows (``--data``, default OUT/holdout.parquet; feature
columns only, in batches within the server's limits) returns the offline scikit-learn
model's predictions for the same batches, and its probabilities (regressors: predictions)
exactly when the server says scikit-learn serves, within the parity limit training recorded
when ONNX Runtime does; and that a record with a missing feature is refused with 422.

Then ``served_latency``: with ``--champion-url`` (the champion's server), both servers are driven
by one client, batch by batch alternately, ``gates.latency.concurrency`` single-record requests
in flight built from the held-out rows (each server gets its own model's features of the same
rows), and the candidate fails when its p95 latency or its throughput is surely worse than
``gates.latency.max_ratio`` times the champion's by more than ``gates.latency.min_difference_ms``
(``pipeline/core/latency.py``); required unless ``gates.latency.served_required`` is false. The
config (``--config``) is read only then. Without ``--champion-url`` the check is skipped and says so.

Writes ``OUT/smoke.json`` (one result per check); exits 1 when a required check did not pass,
2 when the model, the rows or the config cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

from model.records import Status
from pipeline.commands.options import add_out
from pipeline.config import load_config
from pipeline.errors import PipelineError
from pipeline.io import outdir
from pipeline.records import Smoke
from pipeline.steps.smoke import run_smoke


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``smoke`` options."""
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8080")
    add_out(parser)
    parser.add_argument("--model", type=Path, help="local model artefact directory (default OUT/model)")
    parser.add_argument("--data", type=Path, help="rows to send (default OUT/holdout.parquet)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for /ready and per request (default 30)"
    )
    parser.add_argument(
        "--champion-url",
        help="the champion's server: compare latency and throughput under load with it (gates.latency); "
        "without it the served_latency check is skipped",
    )


def run(args: argparse.Namespace) -> int:
    """Run the checks and write ``OUT/smoke.json``; exit 1 when one failed."""
    out = Path(args.out)
    url = check_url(args.url)
    champion_url = check_url(args.champion_url, "--champion-url") if args.champion_url else None
    if args.timeout <= 0:
        raise PipelineError(f"--timeout must be > 0 seconds, got {args.timeout}")
    gate = load_config(args.config).gates.latency if champion_url else None
    model_dir = Path(args.model) if args.model else out / outdir.MODEL
    data_path = Path(args.data) if args.data else out / outdir.HOLDOUT
    record = run_smoke(out, url, model_dir, data_path, args.timeout, champion_url, gate)
    failed = [check.name for check in record.checks if check.blocking]
    for check in record.checks:
        mark = "ok  " if check.status is Status.PASSED else "FAIL" if check.blocking else str(check.status)
        print(f"smoke: {mark} {check.name}: {check.message}", file=sys.stderr)
    verdict = f"failed: {', '.join(failed)}" if failed else "passed"
    print(f"smoke: {url} {verdict}; wrote {out / Smoke.FILE}", file=sys.stderr)
    return 1 if failed else 0


def check_url(url: str, flag: str = "--url") -> str:
    """Return ``url`` without a trailing slash, or raise naming what a base URL looks like."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise PipelineError(f"{flag} {url!r} is not an http(s) base URL like http://127.0.0.1:8080")
    return url.rstrip("/")

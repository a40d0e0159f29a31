"""The serving image on loopback: latency, throughput, errors, size and cold start.

    bash scripts/docker-engine.sh
    ML_CICD_BASE_IMAGE=local/python:3.11-bookworm .venv/bin/python bench/bench_serving.py
    .venv/bin/python bench/bench_serving.py --tag ml-cicd-model:67de21a5f9ab   # an image already built

Without --tag it trains the configured model on the bundled data (temp dir) and builds its
image with the local Docker engine (removed again at the end). It then starts a container,
and measures over HTTP on 127.0.0.1 with keep-alive connections: cold start (``docker run``
to the first 200 from ``/ready``), single-row latency p50/p95/p99 at concurrency 1 and 16
(one thread per connection), batch throughput for 1,000-row batches, the error count (any
non-200 answer) and the image size. Target: single-row p95 under 20 ms at concurrency 1.
Request counts are bounded; the container is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.cli import main as cli  # noqa: E402
from pipeline.commands import image  # noqa: E402
from pipeline.io import docker  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    """Return the nearest-rank ``q``-th percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)

    def post(self, path: str, body: bytes) -> tuple[int, float]:
        """POST ``body``; return the status and the milliseconds to the last byte of the answer."""
        started = time.perf_counter()
        self.connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000

    def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path``; return the status and the body."""
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        return response.status, response.read()


def _wait_ready(url: str, limit: float = 120.0) -> float:
    """Poll ``/ready``; return the seconds until it answered 200."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        try:
            if Client(url).get("/ready")[0] == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    sys.exit(f"{url} not ready within {limit:g} s")


def _single_rows(url: str, bodies: list[bytes], concurrency: int, per_thread: int) -> tuple[list[float], int]:
    """Send ``per_thread`` single-row requests from each of ``concurrency`` connections."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def worker(offset: int) -> None:
        nonlocal errors
        client = Client(url)
        for i in range(per_thread):
            try:
                status, ms = client.post("/predict", bodies[(offset + i) % len(bodies)])
            except OSError:
                status, ms, client = 0, 0.0, Client(url)
            with lock:
                if status == 200:
                    latencies.append(ms)
                else:
                    errors += 1

    threads = [threading.Thread(target=worker, args=(n * per_thread,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def _train_and_build(tmp: Path, base_image: str | None) -> str:
    """Train the configured model in ``tmp`` and build its image under a throwaway tag."""
    out = tmp / "out"
    common = ["--config", str(REPO / "configs" / "pipeline.toml"), "--out", str(out)]
    if cli(["train", *common]) or cli(["evaluate", *common]):
        sys.exit("training failed")
    tag = f"ml-cicd-bench:{uuid.uuid4().hex[:8]}"
    image.build(out, tag=tag, base_image=base_image)
    return tag


def _rows(url: str) -> list[dict[str, Any]]:
    """Return feature rows for requests: the bundled data's first rows, with the served features."""
    import pandas as pd

    status, body = Client(url).get("/metadata")
    if status != 200:
        sys.exit(f"/metadata answered {status}")
    features = [f["name"] for f in json.loads(body)["features"]]
    frame = pd.read_csv(REPO / "data" / "churn.csv", nrows=500)
    return list(json.loads(frame[features].to_json(orient="records")))


def main(argv: list[str] | None = None) -> int:
    """Build (unless --tag), start, measure, print, stop."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tag", help="measure this image instead of building one")
    parser.add_argument("--base-image", help="base image for the build (default $ML_CICD_BASE_IMAGE)")
    parser.add_argument("--requests", type=int, default=400, help="single-row requests per concurrency level")
    parser.add_argument("--batches", type=int, default=10, help="1,000-row batches to send")
    args = parser.parse_args(argv)
    if not docker.engine_available():
        sys.exit("no Docker engine answers: run scripts/docker-engine.sh")

    with tempfile.TemporaryDirectory() as tmp:
        tag = args.tag or _train_and_build(Path(tmp), args.base_image)
    size = int(json.loads(subprocess.check_output([docker.docker_bin(), "image", "inspect", tag]))[0]["Size"])
    started = time.perf_counter()
    url, container = docker.start_service(tag)
    try:
        _wait_ready(url)
        cold = time.perf_counter() - started
        rows = _rows(url)
        singles = [json.dumps({"records": [row]}).encode() for row in rows]
        _single_rows(url, singles, 1, 30)  # warm-up
        results = {c: _single_rows(url, singles, c, max(1, args.requests // c)) for c in (1, 16)}
        batch = json.dumps({"records": (rows * (1000 // len(rows) + 1))[:1000]}).encode()
        client = Client(url)
        batch_times, batch_errors = [], 0
        for _ in range(args.batches):
            status, ms = client.post("/predict", batch)
            batch_times.append(ms)
            batch_errors += status != 200
    finally:
        docker.stop_service(container)
        if not args.tag:
            subprocess.run([docker.docker_bin(), "rmi", tag], capture_output=True, check=False)

    print(f"image {tag}: {size / 1e6:.0f} MB (target < 450 MB)")
    print(f"cold start (docker run to first 200 from /ready): {cold:.2f} s")
    errors = batch_errors
    for concurrency, (latencies, errs) in results.items():
        errors += errs
        target = "  (target p95 < 20 ms)" if concurrency == 1 else ""
        print(
            f"single row, concurrency {concurrency:>2}: p50 {_percentile(latencies, 50):.1f} ms, "
            f"p95 {_percentile(latencies, 95):.1f} ms, p99 {_percentile(latencies, 99):.1f} ms "
            f"({len(latencies)} requests){target}"
        )
    median_batch = statistics.median(batch_times)
    print(
        f"batches of 1,000 rows: median {median_batch:.0f} ms, {1000 / median_batch * 1000:,.0f} rows/s "
        f"({args.batches} batches)"
    )
    print(f"errors: {errors} (must be 0)")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())

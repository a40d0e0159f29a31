"""The serving image on loopback: latency, throughput, errors, size and cold start.

    ML_CICD_BASE_IMAGE=local/python:3.11-bookworm .venv/bin/python bench/bench_serving.py

Trains the configured model on the bundled data (temp dir), builds the image with the
local Docker engine (``scripts/docker-engine.sh``), then measures over HTTP on 127.0.0.1:
single-row latency p50/p95/p99 at concurrency 1 and 16, batch throughput for 1,000-row
batches, error count, image size and cold start to ``/ready``. Target: single-row p95
under 20 ms at concurrency 1. Request counts are bounded; the container is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import image  # noqa: E402
from pipeline.cli import main as cli  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)

    def post(self, path: str, body: bytes) -> tuple[int, float]:
        started = time.perf_counter()
        self.connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000


def _wait_ready(url: str, limit: float = 120.0) -> float:
    started = time.perf_counter()
    parsed = urlparse(url)
    while time.perf_counter() - started < limit:
        try:
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=2)
            connection.request("GET", "/ready")
            if connection.getresponse().status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{url} not ready within {limit} s")


def _single_rows(url: str, bodies: list[bytes], concurrency: int, per_thread: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def worker(offset: int) -> None:
        nonlocal errors
        client = Client(url)
        for i in range(per_thread):
            status, ms = client.post("/predict", bodies[(offset + i) % len(bodies)])
            with lock:
                latencies.append(ms)
                errors += status != 200

    threads = [threading.Thread(target=worker, args=(n * per_thread,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def main() -> None:
    """Build, start, measure, print, stop."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="single-row requests per concurrency level")
    parser.add_argument("--batches", type=int, default=10, help="1,000-row batches to send")
    args = parser.parse_args()
    if not image.engine_available():
        sys.exit("no Docker engine answers: run scripts/docker-engine.sh")
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        quiet = ["--config", str(REPO / "configs" / "pipeline.toml"), "--out", str(out)]
        if cli(["train", *quiet]) or cli(["evaluate", *quiet]):
            sys.exit("training failed")
        info = image.build(out)
        metadata = json.loads((out / "model" / "metadata.json").read_text())
        features = [f["name"] for f in metadata["features"]]
        rows = json.loads(pd.read_parquet(out / "holdout.parquet")[features].to_json(orient="records"))

    started = time.perf_counter()  # docker run -> first 200 from /ready
    url, container = image.start_service(str(info["tag"]))
    try:
        _wait_ready(url)
        cold = time.perf_counter() - started
        singles = [json.dumps({"records": [row]}).encode() for row in rows]
        _single_rows(url, singles, 1, 30)  # warm-up
        results = {}
        for concurrency in (1, 16):
            per_thread = max(1, args.requests // concurrency)
            results[concurrency] = _single_rows(url, singles, concurrency, per_thread)
        batch = json.dumps({"records": (rows * (1000 // len(rows) + 1))[:1000]}).encode()
        client = Client(url)
        batch_times, batch_errors = [], 0
        for _ in range(args.batches):
            status, ms = client.post("/predict", batch)
            batch_times.append(ms)
            batch_errors += status != 200
    finally:
        image.stop_service(container)

    print(f"image {info['tag']}: {int(info['size_bytes']) / 1e6:.0f} MB (target < 450 MB)")
    print(f"cold start to /ready: {cold:.2f} s")
    errors = batch_errors
    for concurrency, (latencies, errs) in results.items():
        errors += errs
        print(
            f"single row, concurrency {concurrency:>2}: p50 {_percentile(latencies, 50):.1f} ms, "
            f"p95 {_percentile(latencies, 95):.1f} ms, p99 {_percentile(latencies, 99):.1f} ms "
            f"({len(latencies)} requests)" + ("  (target p95 < 20 ms)" if concurrency == 1 else "")
        )
    median_batch = statistics.median(batch_times)
    print(f"batches of 1,000 rows: median {median_batch:.0f} ms, {1000 / median_batch * 1000:,.0f} rows/s")
    print(f"errors: {errors} (must be 0)")


if __name__ == "__main__":
    main()

"""Serving, measured side by side in one run: ml-cicd (ONNX and scikit-learn) vs MLServer vs a FastAPI floor.

    apt-get install wrk                     # Debian's wrk 4.1.0: the one load client for every server
    .venv/bin/python bench/bench_serving.py                       # about 5 minutes
    .venv/bin/python bench/bench_serving.py --images              # also both image flavours (Docker)

Trains the bundled churn model (logistic regression; ``--kind random_forest`` for a forest) in a
temp dir, then serves the same artefact from each server on 127.0.0.1, one at a time, and
loads each with wrk for ``--seconds`` at 1 connection and at 16, in ``--rounds`` rounds
(A, B, C, A, B, C, ...; the best round of each is reported, as the machine is shared):

- ``ml-cicd onnx``: ``python -m model`` (ONNX Runtime, the default workers: one per CPU);
- ``ml-cicd onnx 1w``: the same with one worker process;
- ``ml-cicd sklearn``: ``python -m model --runtime sklearn`` (the scikit-learn flavour);
- ``fastapi floor``: ``bench/floor_server.py``, the least a FastAPI + scikit-learn server can do;
- ``mlserver``: MLServer 1.7.1 with its scikit-learn runtime, installed into
  ``.cache/bench/mlserver-venv`` from ``bench/requirements-mlserver.txt`` on first use
  (``--no-mlserver`` skips it).

Each request is one record (the V2 protocol for MLServer, pandas codec). Printed per server and
concurrency: p50/p95/p99 latency, requests per second and errors (non-2xx and socket errors);
then the ratios ml-cicd onnx / peer, and start-to-ready of each server. With ``--images`` it
also builds the lean (onnx) and sklearn flavours on ``$ML_CICD_BASE_IMAGE`` and prints their
sizes, the container's start-to-ready and stop times, then removes them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.io import docker  # noqa: E402
from pipeline.steps import image  # noqa: E402
from tests.conftest import CHURN_RECORD as RECORD  # noqa: E402
from tests.conftest import repo_config_text  # noqa: E402

LUA = REPO / "bench" / "wrk_post.lua"
MLSERVER_PINS = REPO / "bench" / "requirements-mlserver.txt"
CACHE = REPO / ".cache" / "bench"
CONCURRENCY = (1, 16)


@dataclass
class Server:
    """How to start one server and what to send it."""

    name: str
    argv: Callable[[int], list[str]]
    path: str
    body: bytes
    ready: str
    env: dict[str, str]
    cwd: Path = REPO


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(url: str, limit: float = 120.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer 200 within {limit:g} s")


def _wrk(url: str, body: Path, connections: int, seconds: int) -> dict[str, Any]:
    threads = min(2, connections)
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(LUA), url, "--", str(body)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    result["errors"] = sum(result[k] for k in ("non_2xx", "connect", "read", "write", "timeout"))
    return result


def measure(server: Server, seconds: int, work: Path) -> dict[str, Any]:
    """Start ``server``, check one answer, load it at each concurrency, stop it; return the figures."""
    port = _free_port()
    body = work / f"{server.name.replace(' ', '-')}.json"
    body.write_bytes(server.body)
    log = (work / f"{server.name.replace(' ', '-')}.log").open("w")
    started = time.perf_counter()
    process = subprocess.Popen(
        server.argv(port), cwd=server.cwd, env=os.environ | server.env, stdout=log, stderr=log
    )
    try:
        ready = _wait(f"http://127.0.0.1:{port}{server.ready}")
        start_to_ready = time.perf_counter() - started
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{server.path}", server.body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            sample = answer.read()[:160].decode(errors="replace")
        figures = {c: _wrk(f"http://127.0.0.1:{port}{server.path}", body, c, seconds) for c in CONCURRENCY}
    finally:
        process.send_signal(signal.SIGTERM)
        stopping = time.perf_counter()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        stop = time.perf_counter() - stopping
        log.close()
    del ready
    return {"figures": figures, "start_to_ready": start_to_ready, "stop": stop, "sample": sample}


def mlserver_python() -> Path:
    """Return the Python of MLServer's own venv, built from the pinned list on first use."""
    key = hashlib.sha256(MLSERVER_PINS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    venv = CACHE / f"mlserver-venv-{key}"
    if not (venv / "ready").exists():
        print(f"installing MLServer 1.7.1 into {venv} (first use; about a minute)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(MLSERVER_PINS)], check=True)
        (venv / "ready").write_text(key)
    return venv / "bin" / "python"


def mlserver(model_dir: Path, work: Path) -> Server:
    """MLServer's scikit-learn runtime on the same pipeline (model.joblib), as its docs describe."""
    folder = work / "mlserver"
    folder.mkdir()
    (folder / "model.joblib").write_bytes((model_dir / "model.joblib").read_bytes())
    settings = {"name": "churn", "implementation": "mlserver_sklearn.SKLearnModel"}
    settings["parameters"] = {
        "uri": "./model.joblib",
        "version": "v1",
        "extra": {"predict_fn": "predict_proba"},
    }
    (folder / "model-settings.json").write_text(json.dumps(settings))
    inputs = []
    for name, value in RECORD.items():
        if isinstance(value, str):
            inputs.append(
                {
                    "name": name,
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [value],
                    "parameters": {"content_type": "str"},
                }
            )
        else:
            inputs.append(
                {
                    "name": name,
                    "shape": [1],
                    "datatype": "FP64",
                    "data": [None if value is None else float(value)],
                }
            )
    body = json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()
    python = mlserver_python()

    def argv(port: int) -> list[str]:
        (folder / "settings.json").write_text(
            json.dumps(
                {
                    "host": "127.0.0.1",
                    "http_port": port,
                    "grpc_port": _free_port(),
                    "metrics_port": _free_port(),
                }
            )
        )
        return [str(python), "-m", "mlserver.cli.main", "start", str(folder)]

    # model.estimator (CategoryText) is pickled inside the pipeline: MLServer imports it from here
    return Server(
        "mlserver",
        argv,
        "/v2/models/churn/infer",
        body,
        "/v2/models/churn/ready",
        {"PYTHONPATH": str(REPO)},
        folder,
    )


def servers(model_dir: Path, work: Path, with_mlserver: bool) -> list[Server]:
    body = json.dumps({"records": [RECORD]}).encode()
    py = sys.executable
    env = {"PYTHONPATH": str(REPO)}

    def ours(*extra: str) -> Callable[[int], list[str]]:
        return lambda port: [
            py,
            "-m",
            "model",
            "--model-dir",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        ]

    def floor(port: int) -> list[str]:
        app = ["floor_server:create", "--factory", "--app-dir", str(REPO / "bench")]
        return [
            py,
            "-m",
            "uvicorn",
            *app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]

    chosen = [
        Server("ml-cicd onnx", ours(), "/predict", body, "/ready", env),
        Server("ml-cicd onnx 1w", ours("--workers", "1"), "/predict", body, "/ready", env),
        Server("ml-cicd sklearn", ours("--runtime", "sklearn"), "/predict", body, "/ready", env),
        Server("fastapi floor", floor, "/predict", body, "/docs", env | {"MODEL_DIR": str(model_dir)}),
    ]
    if with_mlserver:
        chosen.append(mlserver(model_dir, work))
    return chosen


def images(out: Path) -> None:
    """Build both flavours of the model's image; print sizes, start-to-ready and stop; remove them."""
    if not docker.engine_available():
        print("images: no Docker engine answers (scripts/docker-engine.sh); skipped")
        return
    base = os.environ.get("ML_CICD_BASE_IMAGE")
    prefix = f"ml-cicd-bench-{uuid.uuid4().hex[:8]}"
    built = []
    try:
        for flavour in ("onnx", "sklearn"):
            info = image.build(out, tag=f"{prefix}:{flavour}", base_image=base, flavour=flavour)
            built.append(info.tag)
            starts, stops = [], []
            for _ in range(3):
                started = time.perf_counter()
                url, container = docker.start_service(info.tag)
                _wait(url + "/ready")
                starts.append(time.perf_counter() - started)
                stopping = time.perf_counter()
                docker.stop_service(container)
                stops.append(time.perf_counter() - stopping)
            print(
                f"image {flavour:7} {info.size_bytes / 1e6:6.1f} MB ({info.size_bytes:,} bytes) on {info.base_image}; "
                f"docker run -> /ready 200: median {sorted(starts)[1]:.2f} s; docker stop: median {sorted(stops)[1]:.2f} s"
            )
    finally:
        for tag in built:
            subprocess.run([docker.docker_bin(), "rmi", "-f", tag], capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per run (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over all servers (default 2)")
    parser.add_argument(
        "--kind", default="logistic_regression", help="model kind (default logistic_regression)"
    )
    parser.add_argument("--no-mlserver", action="store_true", help="leave MLServer out")
    parser.add_argument("--images", action="store_true", help="also build and time both image flavours")
    args = parser.parse_args()
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        sys.exit("wrk is not installed: apt-get install wrk (Debian's wrk 4.1.0)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "pipeline.toml"
        text = repo_config_text(work)
        if args.kind != "logistic_regression":
            text = text.replace('kind = "logistic_regression"', f'kind = "{args.kind}"').replace(
                "C = 1.0\nmax_iter = 1000", "n_estimators = 100"
            )
        config.write_text(text)
        out = work / "out"
        subprocess.run(
            [sys.executable, "-m", "pipeline", "train", "--config", str(config), "--out", str(out), "--full"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        model_dir = out / "model"
        chosen = servers(model_dir, work, not args.no_mlserver)
        best: dict[str, dict[str, Any]] = {}
        for round_ in range(args.rounds):
            for server in chosen:
                result = measure(server, args.seconds, work)
                print(
                    f"round {round_ + 1} {server.name:16} "
                    + "  ".join(
                        f"c{c}: p95 {f['p95_ms']:.2f} ms {f['rps']:.0f} req/s"
                        for c, f in result["figures"].items()
                    ),
                    file=sys.stderr,
                )
                kept = best.setdefault(server.name, result)
                for c, figures in result["figures"].items():
                    if figures["p95_ms"] < kept["figures"][c]["p95_ms"]:
                        kept["figures"][c] = figures
                kept["start_to_ready"] = min(kept["start_to_ready"], result["start_to_ready"])
        cpus = len(os.sched_getaffinity(0))
        print(
            f"\n{args.kind}, one record per request, wrk on 127.0.0.1, {cpus} CPUs shared by client and server, best of {args.rounds} rounds of {args.seconds} s"
        )
        print(
            f"{'server':16} {'conc':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>6}  start->ready"
        )
        for name, result in best.items():
            for c, f in result["figures"].items():
                print(
                    f"{name:16} {c:>4} {f['p50_ms']:8.2f} {f['p95_ms']:8.2f} {f['p99_ms']:8.2f} {f['rps']:8.0f} {f['errors']:6d}  {result['start_to_ready']:.2f} s"
                )
        ours = best["ml-cicd onnx"]["figures"]
        for peer in [n for n in best if n != "ml-cicd onnx"]:
            theirs = best[peer]["figures"]
            print(
                f"ml-cicd onnx vs {peer:16}: c1 p95 {ours[1]['p95_ms'] / theirs[1]['p95_ms']:.2f}x, "
                f"c16 req/s {ours[16]['rps'] / theirs[16]['rps']:.2f}x, c16 p95 {ours[16]['p95_ms'] / theirs[16]['p95_ms']:.2f}x"
            )
        if args.images:
            images(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The real server process (``python -m model``) on loopback: ``pipeline smoke``, startup failure, SIGTERM."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from model.artifact import read_metadata
from model.records import Status
from pipeline.cli import main
from pipeline.core.evaluation import feature_rows
from pipeline.core.smoke import bad_record
from pipeline.io.http import Client
from pipeline.steps.smoke import check_bad_payload
from tests.conftest import REPO, Trained, train_artifact

START_SECONDS = 60.0  # generous: importing scikit-learn and pandas on a busy CI machine
STOP_DEADLINE = 30.0  # a hang, not a figure: bench/bench_serving.py measures the stop time


@dataclass(frozen=True)
class Server:
    """A running server process and its base URL."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path


@contextmanager
def running(argv: list[str], log: Path) -> Iterator[Server]:
    """Start ``python <argv>`` (a server on port 0), wait for its 'serving on' line, stop it at the end."""
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, *argv], cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        url = None
        while url is None:
            found = re.search(r"serving on (http://\S+)", log.read_text(errors="replace"))
            url = found.group(1) if found else None
            if url is None and (process.poll() is not None or time.monotonic() > deadline):
                pytest.fail(
                    f"server did not start (exit {process.poll()}):\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.05)
        yield Server(process, url, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve_model(model_dir: Path, *extra: str) -> list[str]:
    """Return argv for the image's entry point on a free loopback port."""
    return ["-m", "model", "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", "0", *extra]


def get(url: str) -> tuple[int, dict[str, object]]:
    """GET ``url`` without any proxy; return status and JSON body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return response.status, json.loads(response.read())


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    """Two different models: ``a`` (logistic regression) and ``b`` (a random forest on other rows)."""
    root = tmp_path_factory.mktemp("models")

    def forest(raw: dict[str, object]) -> None:
        raw["model"] = {"kind": "random_forest", "params": {"n_estimators": 20}}

    return {"a": train_artifact(root / "a"), "b": train_artifact(root / "b", seed=5, edit=forest)}


@pytest.fixture(scope="module")
def server_a(models: dict[str, Trained], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real server for model ``a``, with small batches so smoke sends several."""
    log = tmp_path_factory.mktemp("server-a") / "server.log"
    with running(serve_model(models["a"].model_dir, "--max-batch", "64"), log) as server:
        yield server


def smoke_argv(url: str, trained: Trained, out: Path, *extra: str) -> list[str]:
    """Return argv for ``pipeline smoke`` checking ``url`` against ``trained``."""
    return [
        "smoke",
        "--url",
        url,
        "--out",
        str(out),
        "--model",
        str(trained.model_dir),
        "--data",
        str(trained.holdout),
        *extra,
    ]


def test_smoke_passes_against_the_served_model(
    server_a: Server, models: dict[str, Trained], tmp_path: Path
) -> None:
    # given the real server for model a (batches of at most 64 records)

    # when
    code = main(smoke_argv(server_a.url, models["a"], tmp_path))

    # then
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert code == 0, f"smoke failed: {report}"
    assert report["passed"] is True and report["url"] == server_a.url
    names = [check["name"] for check in report["checks"]]
    assert names == ["ready", "health", "metadata", "predict", "bad_payload", "served_latency"]
    assert all(check["status"] == "passed" for check in report["checks"][:-1]), report["checks"]
    served = report["checks"][-1]  # no --champion-url: nothing to compare under load
    assert served["status"] == "skipped" and "no --champion-url" in served["message"], served
    predict = next(c for c in report["checks"] if c["name"] == "predict")
    rows = len(pd.read_parquet(models["a"].holdout))
    assert f"{rows} rows in 3 batch(es) served by onnx" in predict["message"], predict["message"]
    assert predict["observed"] <= predict["threshold"] == 1e-5, predict


def test_the_bad_payload_check_spoils_one_value_and_gets_422_naming_only_that_field(
    server_a: Server, models: dict[str, Trained]
) -> None:
    # given the held-out rows as smoke reads them, and the record its bad_payload check starts from
    metadata = read_metadata(models["a"].model_dir)
    features = feature_rows(pd.read_parquet(models["a"].holdout), metadata, "the held-out rows")
    record, name, wrong = bad_record(features, metadata.features)
    client = Client(server_a.url, 10.0)

    # when the record is sent as it is, and with its one wrong value
    good = client.post("/predict", json.dumps({"records": [record]}).encode())
    bad = client.post("/predict", json.dumps({"records": [{**record, name: wrong}]}).encode())
    result = check_bad_payload(client, metadata, features)

    # then the record is fine but for that value, the 422 names that field and no other, and the check passes
    assert good.status == 200, good.body
    assert bad.status == 422, bad.body
    assert [e["field"] for e in bad.body["errors"]] == [f"records[0].{name}"], bad.body
    assert f"records[0].{name}: input should be" in bad.body["detail"]
    assert result.status is Status.PASSED, result.message
    assert f"'{name}' = {json.dumps(wrong)} got 422" in result.message, result.message


@pytest.mark.slow
def test_smoke_fails_naming_the_mismatch_when_another_model_is_served(
    models: dict[str, Trained], tmp_path: Path
) -> None:
    # given a server running model b
    with running(serve_model(models["b"].model_dir), tmp_path / "b.log") as server:
        # when smoke compares it with model a
        code = main(smoke_argv(server.url, models["a"], tmp_path / "out"))

    # then
    report = json.loads((tmp_path / "out" / "smoke.json").read_text())
    assert code == 1 and report["passed"] is False
    failed = {c["name"]: c["message"] for c in report["checks"] if c["status"] != "passed"}
    assert "metadata" in failed, f"the sha256 mismatch was not reported: {report['checks']}"
    assert (
        "served model_sha256" in failed["metadata"] and "differs from the local model" in failed["metadata"]
    )
    assert "predict" in failed, "a different model's predictions should not match"


def test_smoke_fails_when_the_server_never_becomes_ready(models: dict[str, Trained], tmp_path: Path) -> None:
    # given a loopback port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    # when
    code = main(smoke_argv(f"http://127.0.0.1:{port}", models["a"], tmp_path, "--timeout", "0.5"))

    # then
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert code == 1 and [c["name"] for c in report["checks"]] == ["ready"]
    assert "did not answer 200 within 0.5 s" in report["checks"][0]["message"]


def test_smoke_exits_2_without_writing_when_the_model_is_missing(
    server_a: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # when the default OUT/model does not exist
    code = main(["smoke", "--url", server_a.url, "--out", str(tmp_path)])

    # then
    assert code == 2
    assert "not a model artefact" in capsys.readouterr().err
    assert not (tmp_path / "smoke.json").exists(), "smoke.json written for bad input"


@pytest.mark.slow
def test_sigterm_stops_the_server_promptly(models: dict[str, Trained], tmp_path: Path) -> None:
    # given a ready server with an idle keep-alive connection open
    log = tmp_path / "server.log"
    with running(serve_model(models["a"].model_dir), log) as server:
        host, port = server.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/ready")
        assert connection.getresponse().read()

        # when
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server was still running {STOP_DEADLINE} s after SIGTERM")
        seconds = time.monotonic() - started
        connection.close()

    # then: it exited by its own handling (the figure is printed, not judged)
    print(f"stopped {seconds:.2f} s after SIGTERM")
    assert server.process.returncode in {0, -signal.SIGTERM}, (
        f"exit {server.process.returncode} after {seconds:.2f} s"
    )
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.mark.slow
def test_a_tampered_model_stops_startup_with_one_error_line(
    models: dict[str, Trained], tmp_path: Path
) -> None:
    # given a copy of model a whose model file was changed
    model_dir = tmp_path / "model"
    shutil.copytree(models["a"].model_dir, model_dir)
    with (model_dir / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")

    # when
    done = subprocess.run(
        [sys.executable, *serve_model(model_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )

    # then
    assert done.returncode == 2, f"exit {done.returncode}: {done.stderr}"
    assert "error: model server did not start:" in done.stderr and "does not match metadata" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.slow
def test_pipeline_serve_runs_the_same_server(models: dict[str, Trained], tmp_path: Path) -> None:
    # given
    argv = ["-m", "pipeline", "serve", "--model", str(models["a"].model_dir), "--port", "0"]

    # when
    with running(argv, tmp_path / "serve.log") as server:
        status, body = get(server.url + "/ready")

    # then
    assert server.url.startswith("http://127.0.0.1:"), "pipeline serve binds to loopback by default"
    assert status == 200 and body["status"] == "ready"


def _requests_counted(url: str) -> float:
    """Return the /predict 200 count in /metrics (every worker's, whichever worker answers)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = r'^model_http_requests_total\{endpoint="/predict",method="POST",status="200"\} (\S+)$'
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def _load(url: str, body: bytes, connections: int, per_connection: int) -> list[int]:
    """Send ``per_connection`` keep-alive POSTs on each of ``connections`` threads; return every status."""
    host, port = url.removeprefix("http://").split(":")
    statuses: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        seen = []
        for _ in range(per_connection):
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            seen.append(response.status)
        connection.close()
        with lock:
            statuses.extend(seen)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.slow  # two worker processes start: about 2 s
def test_two_workers_serve_one_port_and_report_all_requests(
    models: dict[str, Trained], tmp_path: Path
) -> None:
    # given a server with two worker processes
    record = json.loads(
        pd.read_parquet(models["a"].holdout)
        .head(1)
        .drop(columns=["customer_id", "churned"])
        .to_json(orient="records")
    )
    body = json.dumps({"records": record}).encode()
    with running(serve_model(models["a"].model_dir, "--workers", "2"), tmp_path / "server.log") as server:
        # when 16 connections send 25 requests each, then every one is answered
        statuses = _load(server.url, body, connections=16, per_connection=25)
        counted = _requests_counted(server.url)
        startup = server.log.read_text()

    # then: no error, and /metrics (from whichever worker) counts all of them
    assert statuses == [200] * 400, sorted(set(statuses))
    assert counted == 400, f"/metrics counted {counted} of 400 requests: the workers' metrics are not merged"
    assert "(2 worker processes)" in startup and startup.count("serving on") == 1, startup


@pytest.mark.slow  # two worker processes start: about 2 s
def test_a_bad_model_stops_a_multi_worker_start_with_one_error_line(
    models: dict[str, Trained], tmp_path: Path
) -> None:
    # given a model whose ONNX file was replaced by another model's (its hash matches a re-recorded sha)
    model_dir = tmp_path / "model"
    shutil.copytree(models["a"].model_dir, model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["labels"] = [1, 0]  # what the ONNX file records differs: found only when a worker loads it
    (model_dir / "metadata.json").write_text(json.dumps(metadata))

    # when
    done = subprocess.run(
        [sys.executable, *serve_model(model_dir, "--workers", "2")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )

    # then: exit 2 with the worker's reason on one line, no traceback
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and "differ from the metadata labels" in errors[0], done.stderr
    assert "Traceback" not in done.stderr, done.stderr

"""The smoke step: check a running model server against the offline model, write ``smoke.json``.

``run_smoke`` is the whole step (``pipeline/commands/smoke.py`` checks the URLs and the timeout,
reads the config and prints each check): ``ready``, ``health``, ``metadata``, ``predict`` and
``bad_payload`` against the server (``smoke_checks``), then ``served_latency`` against the
champion's server when one is given. The comparisons are pure, in ``pipeline/core/smoke.py`` and
``pipeline/core/latency.py``; the requests go through ``pipeline/io/http.py``.
"""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from model.artifact import load_artifact
from model.codec import write_record
from model.records import ModelMetadata, Result, Status
from pipeline.config_gates import LatencyGate
from pipeline.core import latency
from pipeline.core.evaluation import feature_rows, typed_columns
from pipeline.core.smoke import bad_record, batch_bodies, compare, short
from pipeline.core.values import json_records
from pipeline.errors import DataError
from pipeline.io.http import Client, drive
from pipeline.io.run import run_id
from pipeline.io.tables import read_table
from pipeline.records import Smoke

POLL_SECONDS = 0.25
DEFAULT_MAX_BATCH = 1000


def run_smoke(
    out: Path,
    url: str,
    model_dir: Path,
    data_path: Path,
    timeout: float,
    champion_url: str | None = None,
    gate: LatencyGate | None = None,
) -> Smoke:
    """Check the server at ``url`` against the model in ``model_dir`` on the rows of ``data_path``.

    Writes ``out/smoke.json`` and returns the record; its ``passed`` is False when a required check
    did not pass. ``url`` and ``champion_url`` are base URLs without a trailing slash, ``timeout`` is
    positive; ``served_latency`` is measured with ``gate`` when both it and ``champion_url`` are given.
    """
    estimator, metadata = load_artifact(model_dir)
    table = read_table(data_path)
    features = feature_rows(table, metadata, data_path)
    checks = list(smoke_checks(Client(url, timeout), estimator, metadata, features, timeout))
    if checks[0].status is Status.PASSED:  # a server that never became ready is checked no further
        if champion_url is None or gate is None:
            why = "no --champion-url: no champion server to compare latency under load with"
            checks.append(latency.no_champion(why))
        else:
            checks.append(served_latency(gate, url, champion_url, metadata, table, timeout))
    failed = [check.name for check in checks if check.blocking]
    record = Smoke(
        run=run_id(),
        url=url,
        passed=not failed,
        model_sha256=metadata.model_sha256,
        rows=len(features),
        checks=tuple(checks),
    )
    write_record(out / Smoke.FILE, record)
    return record


def _check(name: str, ok: bool, message: str) -> Result:
    """Return a smoke check's result (every smoke check is required)."""
    return Result(name, Status.PASSED if ok else Status.FAILED, True, None, None, message)


def smoke_checks(
    client: Client, estimator: Any, metadata: ModelMetadata, features: pd.DataFrame, timeout: float
) -> Iterator[Result]:
    """Yield each check in turn; stop after ``ready`` when the server never becomes ready."""
    ready = wait_ready(client, timeout)
    yield ready
    if ready.status is not Status.PASSED:
        return
    yield _guard("health", lambda: check_health(client))
    served: dict[str, Any] = {}
    yield _guard("metadata", lambda: check_metadata(client, metadata, served))
    yield _guard("predict", lambda: check_predict(client, estimator, metadata, features, served))
    yield _guard("bad_payload", lambda: check_bad_payload(client, metadata, features))


def wait_ready(client: Client, timeout: float) -> Result:
    """Poll ``/ready`` until it answers 200 or ``timeout`` seconds pass."""
    started = time.monotonic()
    last = "no answer"
    while True:
        try:
            reply = client.get("/ready")
            if reply.status == 200:
                return _check("ready", True, f"/ready answered 200 after {time.monotonic() - started:.1f} s")
            last = f"status {reply.status}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(getattr(exc, "reason", exc))
        if time.monotonic() - started >= timeout:
            return _check("ready", False, f"/ready did not answer 200 within {timeout:g} s (last: {last})")
        time.sleep(POLL_SECONDS)


def check_health(client: Client) -> Result:
    """``/health`` answers 200."""
    reply = client.get("/health")
    return _check("health", reply.status == 200, f"/health answered {reply.status}")


def check_metadata(client: Client, metadata: ModelMetadata, served: dict[str, Any]) -> Result:
    """``/metadata`` answers 200 and names the local model's sha256; keep it in ``served``."""
    reply = client.get("/metadata")
    if reply.status != 200 or not isinstance(reply.body, dict):
        return _check("metadata", False, f"/metadata answered {reply.status}: {short(reply.body)}")
    served.update(reply.body)
    local, remote = metadata.model_sha256, reply.body.get("model_sha256")
    if remote != local:
        return _check(
            "metadata",
            False,
            f"served model_sha256 {str(remote)[:12]}... differs from the local model's {local[:12]}...; "
            "the server runs a different model",
        )
    return _check("metadata", True, f"serves model {local[:12]} (version {reply.body.get('version')})")


def check_predict(
    client: Client, estimator: Any, metadata: ModelMetadata, features: pd.DataFrame, served: dict[str, Any]
) -> Result:
    """``/predict`` answers as the offline model does, batch by batch (within parity for ONNX Runtime)."""
    labels = metadata.label_list if metadata.task == "classification" else None
    max_batch = int(served.get("max_batch") or DEFAULT_MAX_BATCH)
    max_body = int(served.get("max_body_bytes") or 0)
    runtime = str(served.get("runtime") or "sklearn")
    tolerance = 0.0
    if runtime == "onnx":
        parity = metadata.compiled.parity if metadata.compiled is not None else None
        if parity is None:
            return _check(
                "predict", False, "the server runs ONNX, but the local model records no parity limit"
            )
        tolerance = parity.limit
    batches, worst = 0, 0.0
    booleans = {f.name for f in metadata.features if f.type == "boolean"}
    for start, stop, body in batch_bodies(features, max_batch, max_body, booleans):
        batches += 1
        reply = client.post("/predict", body)
        if reply.status != 200 or not isinstance(reply.body, dict):
            return _check(
                "predict",
                False,
                f"rows {start}-{stop - 1}: /predict answered {reply.status}: {short(reply.body)}",
            )
        problem, diff = compare(reply.body, estimator, features.iloc[start:stop], labels, start, tolerance)
        if problem:
            return _check("predict", False, f"{problem} (served by {runtime})")
        worst = max(worst, diff)
    what = "labels equal and probabilities" if labels is not None else "predictions"
    how = (
        "equal the offline model's exactly"
        if tolerance == 0
        else f"within {tolerance:.2g} of the offline model's (largest difference {worst:.2g})"
    )
    return Result(
        "predict",
        Status.PASSED,
        True,
        worst,
        tolerance,
        f"{len(features)} rows in {batches} batch(es) served by {runtime}: {what} {how}",
    )


def check_bad_payload(client: Client, metadata: ModelMetadata, features: pd.DataFrame) -> Result:
    """A held-out record whose one defect is a wrong value is refused with 422 naming that field alone."""
    record, name, wrong = bad_record(features, metadata.features)
    reply = client.post("/predict", json.dumps({"records": [{**record, name: wrong}]}).encode())
    body = reply.body if isinstance(reply.body, dict) else {}
    detail = body.get("detail", reply.body)
    errors = body.get("errors")
    named = [str(e.get("field")) for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    field = f"records[0].{name}"
    ok = reply.status == 422 and named == [field]
    message = f"a held-out record with '{name}' = {json.dumps(wrong)} got {reply.status}: {short(detail)}"
    if reply.status == 422 and named != [field]:
        message += f" (the answer should name '{field}' alone; it names {', '.join(named) or 'no field'})"
    return _check("bad_payload", ok, message)


def _guard(name: str, check: Callable[[], Result]) -> Result:
    """Run ``check``; a connection failure fails the check instead of stopping the run."""
    try:
        return check()
    except (OSError, urllib.error.URLError) as exc:
        return _check(name, False, f"request failed: {getattr(exc, 'reason', exc)}")


def served_latency(
    gate: LatencyGate,
    url: str,
    champion_url: str,
    metadata: ModelMetadata,
    table: pd.DataFrame,
    timeout: float,
) -> Result:
    """Drive the candidate and the champion servers alternately under load; judge p95 and throughput.

    Each server gets single-record bodies of its own model's features (the champion's, from its
    ``/metadata``) from the same held-out rows, as many as the warm-up and timed batches send.
    """
    champion = Client(champion_url, timeout)
    ready = wait_ready(champion, timeout)
    problem = "" if ready.status is Status.PASSED else ready.message
    inputs: list[tuple[str, str]] = []
    if not problem:
        try:
            inputs, problem = champion_inputs(champion)
        except (OSError, urllib.error.URLError) as exc:
            problem = f"/metadata request failed: {getattr(exc, 'reason', exc)}"
    rows = table.iloc[: (gate.batches + 1) * gate.requests]
    if not problem:
        try:
            mine: list[tuple[str, str]] = [(f.name, f.type) for f in metadata.features]
            bodies = [single_bodies(rows, mine), single_bodies(rows, inputs)]
        except DataError as exc:
            problem = f"its requests cannot be built from the held-out rows: {exc}"
    if problem:
        message = f"served latency not measured: the champion server at {champion_url}: {problem}"
        return Result(latency.SERVED, Status.ERROR, gate.served_required, None, gate.max_ratio, message)
    args = (gate.concurrency, gate.batches, gate.requests, timeout)
    timed = drive([url, champion_url], "/predict", bodies[0], *args, bodies_per_url=bodies)
    return latency.served_latency(gate, timed[0], timed[1], gate.concurrency, len(rows), champion_url)


def champion_inputs(client: Client) -> tuple[list[tuple[str, str]], str]:
    """Return the (name, type) of each feature a server's ``/metadata`` lists, or why it lists none."""
    reply = client.get("/metadata")
    features = reply.body.get("features") if isinstance(reply.body, dict) else None
    if reply.status != 200 or not isinstance(features, list):
        return [], f"/metadata answered {reply.status} without a list of features: {short(reply.body)}"
    try:
        return [(str(f["name"]), str(f["type"])) for f in features], ""
    except (KeyError, TypeError):
        return [], f"/metadata lists features without a name and a type: {short(features[:1])}"


def single_bodies(rows: pd.DataFrame, features: list[tuple[str, str]]) -> list[bytes]:
    """Return one ``/predict`` body per row of ``features`` (name, type), typed as in training."""
    frame = typed_columns(rows, features, "the held-out rows")
    booleans = {name for name, kind in features if kind == "boolean"}
    return [json.dumps({"records": [record]}).encode() for record in json_records(frame, booleans)]

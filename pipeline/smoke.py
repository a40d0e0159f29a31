"""Check a running model server against the offline model: health, metadata, exact predictions.

    python -m pipeline smoke --url http://127.0.0.1:8080 --out out

Waits up to ``--timeout`` seconds for ``URL/ready``, then checks ``/health``, that
``/metadata`` names the local model's sha256 (``--model``, default OUT/model), that
``/predict`` on the held-out rows (``--data``, default OUT/holdout.parquet; feature
columns only, in batches within the server's limits) returns exactly the offline
model's predictions and probabilities for the same batches, and that a record with a
missing feature is refused with 422. Writes ``OUT/smoke.json``
(``{url, passed, checks: [{name, passed, message}]}``); exits 1 when a check failed,
2 when the model or the rows cannot be read.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from model.artifact import load_artifact
from model.files import write_json_atomic
from pipeline.errors import DataError, PipelineError
from pipeline.tables import read_table
from pipeline.train import HOLDOUT_FILE, MODEL_DIR, coerce_column

SMOKE_FILE = "smoke.json"
POLL_SECONDS = 0.25
DEFAULT_MAX_BATCH = 1000


@dataclass(frozen=True)
class Check:
    """One smoke check's outcome."""

    name: str
    passed: bool
    message: str


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status code and body (parsed JSON when it is JSON, else text)."""

    status: int
    body: Any


class Client:
    """A small JSON-over-HTTP client that ignores proxy settings (the server is local)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, path: str) -> Reply:
        """GET ``path``."""
        return self._send(urllib.request.Request(self.url + path, method="GET"))

    def post(self, path: str, body: bytes) -> Reply:
        """POST a JSON ``body`` to ``path``."""
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> Reply:
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return Reply(response.status, _decode(response.read()))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, _decode(exc.read()))


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``smoke`` options."""
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--out", type=Path, default=Path("out"), help="artefact directory (default out)")
    parser.add_argument("--model", type=Path, help="local model artefact directory (default OUT/model)")
    parser.add_argument("--data", type=Path, help="rows to send (default OUT/holdout.parquet)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for /ready and per request (default 30)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the checks and write ``OUT/smoke.json``; exit 1 when one failed."""
    out = Path(args.out)
    url = check_url(args.url)
    if args.timeout <= 0:
        raise PipelineError(f"--timeout must be > 0 seconds, got {args.timeout}")
    model_dir = Path(args.model) if args.model else out / MODEL_DIR
    data_path = Path(args.data) if args.data else out / HOLDOUT_FILE
    estimator, metadata = load_artifact(model_dir)
    features = feature_frame(read_table(data_path), metadata, data_path)
    checks = list(smoke_checks(Client(url, args.timeout), estimator, metadata, features, args.timeout))
    passed = all(check.passed for check in checks)
    write_json_atomic(
        out / SMOKE_FILE,
        {
            "url": url,
            "passed": passed,
            "model_sha256": metadata["model_sha256"],
            "rows": len(features),
            "checks": [asdict(check) for check in checks],
        },
    )
    for check in checks:
        print(f"smoke: {'ok  ' if check.passed else 'FAIL'} {check.name}: {check.message}", file=sys.stderr)
    failed = [check.name for check in checks if not check.passed]
    verdict = f"failed: {', '.join(failed)}" if failed else "passed"
    print(f"smoke: {url} {verdict}; wrote {out / SMOKE_FILE}", file=sys.stderr)
    return 1 if failed else 0


def check_url(url: str) -> str:
    """Return ``url`` without a trailing slash, or raise naming what a base URL looks like."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise PipelineError(f"--url {url!r} is not an http(s) base URL like http://127.0.0.1:8080")
    return url.rstrip("/")


def feature_frame(frame: pd.DataFrame, metadata: dict[str, Any], source: Path) -> pd.DataFrame:
    """Return the model's feature columns, in order and typed as in training."""
    features = [(str(f["name"]), str(f["type"])) for f in metadata["features"]]
    missing = [name for name, _ in features if name not in frame.columns]
    if missing:
        raise DataError(f"{source}: column(s) the model needs are missing: {', '.join(missing)}")
    result = frame[[name for name, _ in features]].reset_index(drop=True).copy()
    for name, kind in features:
        result[name] = coerce_column(result[name], name, kind)
    return result


def smoke_checks(
    client: Client, estimator: Any, metadata: dict[str, Any], features: pd.DataFrame, timeout: float
) -> Iterator[Check]:
    """Yield each check in turn; stop after ``ready`` when the server never becomes ready."""
    ready = wait_ready(client, timeout)
    yield ready
    if not ready.passed:
        return
    yield _guard("health", lambda: check_health(client))
    served: dict[str, Any] = {}
    yield _guard("metadata", lambda: check_metadata(client, metadata, served))
    yield _guard("predict", lambda: check_predict(client, estimator, metadata, features, served))
    yield _guard("bad_payload", lambda: check_bad_payload(client, features))


def wait_ready(client: Client, timeout: float) -> Check:
    """Poll ``/ready`` until it answers 200 or ``timeout`` seconds pass."""
    started = time.monotonic()
    last = "no answer"
    while True:
        try:
            reply = client.get("/ready")
            if reply.status == 200:
                return Check("ready", True, f"/ready answered 200 after {time.monotonic() - started:.1f} s")
            last = f"status {reply.status}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(getattr(exc, "reason", exc))
        if time.monotonic() - started >= timeout:
            return Check("ready", False, f"/ready did not answer 200 within {timeout:g} s (last: {last})")
        time.sleep(POLL_SECONDS)


def check_health(client: Client) -> Check:
    """``/health`` answers 200."""
    reply = client.get("/health")
    return Check("health", reply.status == 200, f"/health answered {reply.status}")


def check_metadata(client: Client, metadata: dict[str, Any], served: dict[str, Any]) -> Check:
    """``/metadata`` answers 200 and names the local model's sha256; keep it in ``served``."""
    reply = client.get("/metadata")
    if reply.status != 200 or not isinstance(reply.body, dict):
        return Check("metadata", False, f"/metadata answered {reply.status}: {_short(reply.body)}")
    served.update(reply.body)
    local, remote = metadata["model_sha256"], reply.body.get("model_sha256")
    if remote != local:
        return Check(
            "metadata",
            False,
            f"served model_sha256 {str(remote)[:12]}... differs from the local model's {local[:12]}...; "
            "the server runs a different model",
        )
    return Check("metadata", True, f"serves model {local[:12]} (version {reply.body.get('version')})")


def check_predict(
    client: Client, estimator: Any, metadata: dict[str, Any], features: pd.DataFrame, served: dict[str, Any]
) -> Check:
    """``/predict`` returns exactly the offline predictions and probabilities, batch by batch."""
    labels = metadata.get("labels") if metadata.get("task") == "classification" else None
    max_batch = int(served.get("max_batch") or DEFAULT_MAX_BATCH)
    max_body = int(served.get("max_body_bytes") or 0)
    batches = 0
    for start, stop, body in batch_bodies(features, max_batch, max_body):
        batches += 1
        reply = client.post("/predict", body)
        if reply.status != 200 or not isinstance(reply.body, dict):
            return Check(
                "predict",
                False,
                f"rows {start}-{stop - 1}: /predict answered {reply.status}: {_short(reply.body)}",
            )
        rows = features.iloc[start:stop]
        problem = compare(reply.body, estimator, rows, labels, start)
        if problem:
            return Check("predict", False, problem)
    what = "predictions and probabilities" if labels is not None else "predictions"
    return Check(
        "predict",
        True,
        f"{len(features)} rows in {batches} batch(es): {what} equal the offline model's exactly",
    )


def compare(
    answer: dict[str, Any], estimator: Any, rows: pd.DataFrame, labels: list[Any] | None, start: int
) -> str:
    """Return what differs between a ``/predict`` answer and the offline model on ``rows`` ('' if nothing)."""
    expected = np.asarray(estimator.predict(rows)).tolist()
    got = answer.get("predictions")
    if not isinstance(got, list) or len(got) != len(expected):
        return f"rows {start}+: expected {len(expected)} predictions, got {_short(got)}"
    wrong = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
    if wrong:
        i = wrong[0]
        return (
            f"{len(wrong)} of {len(expected)} predictions differ from the offline model; "
            f"first: row {start + i} served {got[i]!r}, offline {expected[i]!r}"
        )
    if labels is None:
        if answer.get("probabilities") is not None:
            return "a regressor's answer carries probabilities; expected null"
        return ""
    keys = [str(label) for label in labels]
    proba = np.asarray(estimator.predict_proba(rows), dtype=float).tolist()
    served = answer.get("probabilities")
    if not isinstance(served, list) or len(served) != len(proba):
        return f"rows {start}+: expected {len(proba)} probability rows, got {_short(served)}"
    for i, (row, offline) in enumerate(zip(served, proba, strict=True)):
        values = [row.get(key) for key in keys] if isinstance(row, dict) else None
        if values != offline:
            return (
                f"probabilities differ from the offline model; first: row {start + i} "
                f"served {_short(row)}, offline {dict(zip(keys, offline, strict=True))}"
            )
    return ""


def check_bad_payload(client: Client, features: pd.DataFrame) -> Check:
    """A record without its first feature is refused with 422 naming that feature."""
    record = to_records(features.iloc[:1])[0]
    missing = next(iter(record))
    del record[missing]
    reply = client.post("/predict", json.dumps({"records": [record]}).encode())
    detail = reply.body.get("detail") if isinstance(reply.body, dict) else reply.body
    named = missing in str(detail)
    ok = reply.status == 422 and named
    message = f"a record without '{missing}' got {reply.status}: {_short(detail)}"
    if reply.status == 422 and not named:
        message += f" (the message does not name '{missing}')"
    return Check("bad_payload", ok, message)


def batch_bodies(features: pd.DataFrame, max_batch: int, max_body: int) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(start, stop, json_body)`` batches of at most ``max_batch`` rows and ``max_body`` bytes."""
    start = 0
    size = max(1, max_batch)
    while start < len(features):
        stop = min(start + size, len(features))
        body = json.dumps({"records": to_records(features.iloc[start:stop])}).encode()
        if max_body and len(body) > max_body and stop - start > 1:
            size = max(1, (stop - start) // 2)
            continue
        yield start, stop, body
        start = stop


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return rows as JSON-ready dicts: Python scalars, missing values as None."""
    columns = {name: [_json_value(v) for v in frame[name].tolist()] for name in frame.columns}
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _guard(name: str, check: Callable[[], Check]) -> Check:
    """Run ``check``; a connection failure fails the check instead of stopping the run."""
    try:
        return check()
    except (OSError, urllib.error.URLError) as exc:
        return Check(name, False, f"request failed: {getattr(exc, 'reason', exc)}")


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""The server's Prometheus metrics, and the ASGI middleware that counts and times every request.

With several worker processes (``python -m model --workers N``) each worker writes its samples
to ``$PROMETHEUS_MULTIPROC_DIR`` (set by the parent) and ``/metrics`` adds them up, so any
worker answers for all of them.

A client that goes away before its answer starts (it closes the connection mid-body, say) is
a client abort, not a server error: it is counted in ``model_http_requests_total`` with status
``"499"`` (nginx's "client closed request"; no answer was sent, so it is neither timed nor in
``model_http_errors_total``) and logged in one line, without a traceback. A client that leaves
after its whole request was read is counted with the status the app answered (uvicorn drops
that answer). Connections the server closes itself are counted in
``model_http_connections_closed_total`` by reason: ``header_timeout`` (no complete request
headers in time) and ``over_limit`` (refused over the connection cap); see ``model/app.py``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from model import settings

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REGRESSION_LABEL = "value"  # the predictions counter's label for regressors
ABORTED = "499"  # the status label of a request whose client went away before the answer

logger = logging.getLogger("model.app")


class Telemetry:
    """The app's Prometheus metrics, in a registry of its own (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get(settings.MULTIPROCESS_ENV))
        self.requests = Counter(
            "model_http_requests",
            "HTTP requests by endpoint, method and status.",
            ("endpoint", "method", "status"),
            registry=self.registry,
        )
        self.errors = Counter(
            "model_http_errors",
            "HTTP responses with status >= 400 by endpoint and status.",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.closed = Counter(
            "model_http_connections_closed",
            "Connections the server closed itself: header_timeout (no complete request headers in time) "
            "or over_limit (refused over the connection cap).",
            ("reason",),
            registry=self.registry,
        )
        self.latency = Histogram(
            "model_http_request_duration_seconds",
            "Time to answer a request, by endpoint.",
            ("endpoint",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "model_predictions",
            f"Predicted rows by predicted class ('{REGRESSION_LABEL}' for regressors).",
            ("label",),
            registry=self.registry,
        )
        self.out_of_range = Counter(
            "model_out_of_range_values",
            "Served values outside the schema's range or allowed values, by feature (a drift signal).",
            ("feature",),
            registry=self.registry,
        )
        self.ready = Gauge(
            "model_ready", "1 once the model is loaded.", registry=self.registry, multiprocess_mode="livemax"
        )
        self.info = Gauge(
            "model_info",
            "The served model (value 1) and the runtime serving it (onnx or sklearn).",
            ("version", "model_sha256", "runtime"),
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def exposition(self) -> bytes:
        """Return the metrics in Prometheus text format (every worker's, in multiprocess mode)."""
        if not self.multiprocess:
            return bytes(generate_latest(self.registry))
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(merged))

    def worker_stopped(self) -> None:
        """Drop this worker's live gauges (multiprocess mode only)."""
        if self.multiprocess:
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class Observe:
    """ASGI middleware: time and count every HTTP request; answer a crash with a short 500.

    A request whose client went away before the answer started is counted as status 499 and
    logged in one line, whatever the app raised on finding the client gone.
    """

    def __init__(self, app: Any, telemetry: Telemetry, endpoints: frozenset[str]) -> None:
        self.app = app
        self.telemetry = telemetry
        self.endpoints = endpoints

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on, recording its status and duration."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in self.endpoints else "other"
        started = time.perf_counter()
        status = 500
        response_started = False
        client_gone = False
        received = 0

        async def watch() -> Any:
            nonlocal client_gone, received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            elif message["type"] == "http.disconnect" and not response_started:
                client_gone = True
            return message

        async def record(message: Any) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        failure: Exception | None = None
        try:
            await self.app(scope, watch, record)
        except Exception as exc:
            failure = exc
        if client_gone:
            self._aborted(scope, endpoint, received, failure)
            return
        if failure is not None:
            logger.error("unhandled error answering %s %s", scope["method"], path, exc_info=failure)
            status = 500
            if not response_started:
                body = b'{"detail":"internal server error"}'
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": body})
        self.telemetry.latency.labels(endpoint).observe(time.perf_counter() - started)
        self.telemetry.requests.labels(endpoint, scope["method"], str(status)).inc()
        if status >= 400:
            self.telemetry.errors.labels(endpoint, str(status)).inc()

    def _aborted(self, scope: Any, endpoint: str, received: int, failure: Exception | None) -> None:
        """Log (one line) and count a request whose client left before its answer started."""
        declared = dict(scope["headers"]).get(b"content-length", b"?").decode("latin-1")
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "unknown"
        after = f" ({type(failure).__name__})" if failure is not None else ""
        logger.info(
            "client %s closed the connection before the answer: %s %s, %d of %s body bytes received%s; "
            "counted as status %s",
            peer,
            scope["method"],
            scope["path"],
            received,
            declared,
            after,
            ABORTED,
        )
        self.telemetry.requests.labels(endpoint, scope["method"], ABORTED).inc()

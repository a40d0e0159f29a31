"""The server's Prometheus metrics, and the ASGI middleware that counts and times every request.

With several worker processes (``python -m model --workers N``) each worker writes its samples
to ``$PROMETHEUS_MULTIPROC_DIR`` (set by the parent) and ``/metrics`` adds them up, so any
worker answers for all of them.
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
    """ASGI middleware: time and count every HTTP request; answer a crash with a short 500."""

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

        async def record(message: Any) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, record)
        except Exception:
            logger.exception("unhandled error answering %s %s", scope["method"], path)
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

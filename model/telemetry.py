"""The server's Prometheus metrics and the middleware that counts and times every request."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REGRESSION_LABEL = "value"  # the predictions counter's label for regressors

logger = logging.getLogger("model.app")


class Telemetry:
    """The app's Prometheus metrics, in a registry of its own (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
        self.ready = Gauge("model_ready", "1 once the model is loaded.", registry=self.registry)
        self.info = Gauge(
            "model_info", "The served model (value 1).", ("version", "model_sha256"), registry=self.registry
        )


def observe(telemetry: Telemetry) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Any]:
    """Return the middleware that times and counts every request and turns a crash into a short 500."""
    known: set[str] = set()

    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not known:
            known.update(getattr(route, "path", "") for route in request.app.routes)
        path = request.url.path
        endpoint = path if path in known else "other"
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            logger.exception("unhandled error answering %s %s", request.method, path)
            response = JSONResponse({"detail": "internal server error"}, status_code=500)
        telemetry.latency.labels(endpoint).observe(time.perf_counter() - started)
        status = str(response.status_code)
        telemetry.requests.labels(endpoint, request.method, status).inc()
        if response.status_code >= 400:
            telemetry.errors.labels(endpoint, status).inc()
        return response

    return middleware

"""The model's HTTP API: ``create_app(model_dir)`` returns a FastAPI app serving one verified artefact.

Endpoints:

- ``GET /health``: the process is alive (always 200).
- ``GET /ready``: 200 once the model is loaded, 503 before.
- ``GET /metadata``: version, runtime, features, labels, metrics, hashes, limits, threads.
- ``POST /predict``: a batch of records, validated against the feature schema in the metadata
  (``model/request.py``) and answered by ``model/runtime.py``.
- ``GET /metrics``: Prometheus text format (requests, errors, latency, predictions per class,
  out-of-range values per feature).

A ``/predict`` request and its answer (churn model)::

    POST /predict
    {"records": [{"tenure_months": 5, "monthly_charges": 89.5, "total_charges": null,
                  "contract": "month_to_month", "internet_service": "fiber",
                  "payment_method": "card", "support_calls": 3, "has_partner": false,
                  "region": "north"}]}

    200 {"predictions": [1], "probabilities": [{"0": 0.27, "1": 0.73}],
         "labels": [0, 1], "model_version": "3"}

With ONNX Runtime a small request is answered on the event loop (the model call takes
microseconds, a hop to the thread pool would cost more); a large one, or any request to the
scikit-learn runtime, in the thread pool. Responses are encoded with orjson.

``/docs``, ``/redoc`` and ``/openapi.json`` are served only when asked (``docs=True``,
``MODEL_DOCS=1``, ``python -m model --docs``).

Connections: ``python -m model`` runs uvicorn with :class:`ServerConfig`, whose protocol
(:class:`LimitedH11Protocol`) adds what uvicorn lacks: a deadline for request headers and a cap
on open connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from model import settings
from model.artifact import read_metadata
from model.errors import ArtifactError
from model.request import out_of_range_counts, parse_records, read_body, request_model
from model.runtime import LoadedModel, load_model, predict_records
from model.settings import Runtime
from model.telemetry import REGRESSION_LABEL, Observe, Telemetry

TELEMETRY_STATE = "model_telemetry"  # the lifespan state key under which the protocol finds the metrics
INLINE_BODY_BYTES = 16 * 1024  # ONNX requests up to this size are answered on the event loop
REFUSED_LINGER_SECONDS = 1.0  # a refused connection stays open this long for the client to read its 503
REFUSED = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_ERROR_BODY = {
    "application/json": {"schema": {"type": "object", "properties": {"detail": {"type": "string"}}}}
}
PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {
        "description": "a batch over the record limit or a body over the size limit",
        "content": _ERROR_BODY,
    },
    422: {
        "description": "a record that does not fit the feature schema; detail names the field",
        "content": _ERROR_BODY,
    },
    503: {"description": "the model is not loaded yet", "content": _ERROR_BODY},
}


class FastJSON(Response):
    """A JSON response encoded by orjson (numpy values included)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Return ``content`` as JSON bytes."""
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


@dataclass(frozen=True)
class Limits:
    """Request size limits: records per batch and bytes per body."""

    max_batch: int
    max_body_bytes: int


def create_app(
    model_dir: Path,
    max_batch: int | None = None,
    max_body_bytes: int | None = None,
    runtime: Runtime | None = None,
    docs: bool | None = None,
    threads: int | None = None,
) -> FastAPI:
    """Return the API for the artefact in ``model_dir``; the model is loaded at startup.

    ``max_batch``, ``max_body_bytes``, ``runtime``, ``docs`` and ``threads`` default to the
    environment variables ``MODEL_MAX_BATCH``, ``MODEL_MAX_BODY_BYTES``, ``MODEL_RUNTIME``,
    ``MODEL_DOCS`` and ``MODEL_THREADS``, else 1000 records, 4 MiB, ``auto`` (ONNX Runtime when
    the artefact ships an ONNX form), no API docs and 1 thread for the model's runtime per
    prediction. Startup raises :class:`ArtifactError` for a missing, tampered or incompatible
    artefact.
    """
    model_dir = Path(model_dir)
    limits = Limits(
        max_batch=settings.limit(max_batch, settings.MAX_BATCH_ENV, settings.DEFAULT_MAX_BATCH),
        max_body_bytes=settings.limit(max_body_bytes, settings.MAX_BODY_ENV, settings.DEFAULT_MAX_BODY_BYTES),
    )
    chosen = settings.runtime(runtime)
    with_docs = settings.docs(docs)
    cap = settings.threads(threads)
    telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        try:
            loaded = load_model(model_dir, chosen, cap)
        except ArtifactError as exc:
            app.state.load_error = str(exc)
            _tell_parent(str(exc))
            raise
        app.state.model = loaded
        telemetry.info.labels(loaded.version, loaded.metadata.model_sha256, loaded.runtime).set(1)
        for label in loaded.labels if loaded.labels is not None else [REGRESSION_LABEL]:
            telemetry.predictions.labels(str(label))
        telemetry.ready.set(1)
        yield {TELEMETRY_STATE: telemetry}  # uvicorn hands this state to the connections' protocol
        telemetry.ready.set(0)
        telemetry.worker_stopped()
        app.state.model = None

    app = FastAPI(
        title="model",
        summary="Predictions from one verified model artefact.",
        lifespan=lifespan,
        openapi_url="/openapi.json" if with_docs else None,
        docs_url="/docs" if with_docs else None,
        redoc_url="/redoc" if with_docs else None,
    )
    app.state.model = None
    app.state.load_error = None
    app.state.limits = limits
    app.state.telemetry = telemetry

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Answer 200 while the process runs."""
        return {"status": "alive"}

    @app.get("/ready")
    async def ready() -> Response:
        """Answer 200 once the model is loaded, 503 before."""
        loaded: LoadedModel | None = app.state.model
        if loaded is None:
            return FastJSON({"status": "loading", "detail": "model not loaded"}, status_code=503)
        return FastJSON({"status": "ready", "model_version": loaded.version, "runtime": loaded.runtime})

    @app.get("/metadata")
    def metadata() -> Response:
        """Describe the served model: version, runtime, features, labels, metrics, hashes and limits."""
        loaded: LoadedModel | None = app.state.model
        if loaded is None:
            return _not_ready()
        meta = loaded.metadata
        compiled = meta.compiled
        return FastJSON(
            {
                "version": loaded.version,
                "runtime": loaded.runtime,
                "task": meta.task,
                "target": meta.target,
                "kind": meta.kind,
                "features": [dataclasses.asdict(f) for f in meta.features],
                "labels": loaded.labels,
                "positive_label": meta.positive_label,
                "metrics": loaded.metrics,
                "model_sha256": meta.model_sha256,
                "onnx_sha256": compiled.sha256 if compiled is not None else None,
                "compiled": compiled.message if compiled is not None else None,
                "sklearn_version": meta.sklearn_version,
                "created_at": meta.created_at,
                "git_commit": meta.git_commit,
                "out_of_range": meta.out_of_range,
                "max_batch": limits.max_batch,
                "max_body_bytes": limits.max_body_bytes,
                "threads": loaded.threads,
            }
        )

    @app.post("/predict", openapi_extra=_predict_schema(model_dir), responses=PREDICT_ERRORS)
    async def predict(request: Request) -> Response:
        """Predict a batch: ``{"records": [{feature: value, ...}, ...]}`` (see the module docstring)."""
        loaded: LoadedModel | None = app.state.model
        if loaded is None:
            return _not_ready()
        body = await read_body(request, limits.max_body_bytes)
        if isinstance(body, Response):
            return body
        if loaded.runtime == "onnx" and len(body) <= INLINE_BODY_BYTES:
            return answer(loaded, body)
        return await run_in_threadpool(answer, loaded, body)

    def answer(loaded: LoadedModel, body: bytes) -> Response:
        records = parse_records(body, loaded.request_model, limits.max_batch, loaded.booleans)
        if isinstance(records, Response):
            return records
        result, counts = predict_records(loaded, records)
        for label, count in counts.items():
            telemetry.predictions.labels(label).inc(count)
        for feature, count in out_of_range_counts(records, loaded.features).items():
            telemetry.out_of_range.labels(feature).inc(count)
        return FastJSON(result)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> Response:
        """Return the Prometheus metrics of this app (text exposition format)."""
        return PlainTextResponse(
            telemetry.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    endpoints = frozenset(getattr(route, "path", "") for route in app.routes)
    app.add_middleware(Observe, telemetry=telemetry, endpoints=endpoints)
    return app


def app_from_env() -> FastAPI:
    """Return the app for ``$MODEL_DIR`` (the factory each worker process calls)."""
    model_dir = os.environ.get(settings.MODEL_DIR_ENV)
    if not model_dir:
        raise ValueError(f"{settings.MODEL_DIR_ENV} is not set")
    logging.basicConfig(level=logging.INFO, format=settings.LOG_FORMAT)  # as the single process logs
    app = create_app(Path(model_dir))
    hide_load_traceback(app)
    return app


class _HideLoadTraceback(logging.Filter):
    """Drop uvicorn's traceback and exit notice for a model that cannot be loaded: its one-line reason is printed."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__()
        self.app = app

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for the lifespan traceback of a load error."""
        message = record.getMessage()
        noise = message.startswith("Traceback") or message.startswith("Application startup failed")
        return not (self.app.state.load_error and noise)


def hide_load_traceback(app: FastAPI) -> None:
    """Keep uvicorn from logging a traceback when ``app``'s model cannot be loaded (the reason is reported)."""
    logging.getLogger("uvicorn.error").addFilter(_HideLoadTraceback(app))


class ServerConfig(uvicorn.Config):
    """uvicorn's config serving HTTP/1.1 with :class:`LimitedH11Protocol` and these connection settings.

    Picklable (the worker processes of ``--workers N`` get it from the parent).
    """

    def __init__(self, app: Any, connections: settings.Connections, **options: Any) -> None:
        super().__init__(
            app, http=LimitedH11Protocol, timeout_keep_alive=connections.keep_alive_seconds, **options
        )
        self.connections = connections


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for complete request headers and a cap on open connections.

    uvicorn 0.54 closes a keep-alive connection idle ``timeout_keep_alive`` seconds after an
    answer, and h11 answers headers over 16 KiB with 400; but nothing closes a connection that
    never sends a byte, trickles a header, or starts a second request and stalls (that data stops
    the keep-alive clock), and ``limit_concurrency`` is no cap: it answers 503 to every request,
    the established clients' too, while that many connections are open, and closes none. Here
    the header clock runs from the opening (or the first byte after an answer) to complete
    headers; a connection over the cap (per process) gets a 503 and is closed. Settings come
    from a :class:`ServerConfig`; closings are counted in ``model_http_connections_closed_total``.
    """

    def __init__(
        self, config: uvicorn.Config, server_state: ServerState, app_state: dict[str, Any], _loop: Any = None
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = config.connections if isinstance(config, ServerConfig) else settings.connections()
        self.header_timeout = limits.header_timeout_seconds
        self.max_connections = limits.max_connections
        self.header_deadline: asyncio.TimerHandle | None = None
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Take the connection, or refuse it with a 503 when the cap is reached; start the header clock."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse()
            return
        self._expect_headers()

    def data_received(self, data: bytes) -> None:
        """Feed h11; keep the header clock running until a request's headers are complete."""
        if self.refused:
            return  # a refused client's request is not read
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._expect_headers()
        else:
            self._stop_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the header clock, then as uvicorn does."""
        self._stop_header_clock()
        super().connection_lost(exc)

    def _expect_headers(self) -> None:
        if self.header_deadline is None:
            self.header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _stop_header_clock(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_late(self) -> None:
        self.header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._count_closed("header_timeout")
            self.transport.close()

    def _refuse(self) -> None:
        """Answer 503 unasked, then close on the client's EOF or after a linger.

        Not at once: closing with the request unread would reset the connection and could lose the 503.
        """
        self.refused = True
        self.connections.discard(self)  # it no longer counts, and a graceful shutdown need not wait for it
        self._count_closed("over_limit")
        self.transport.write(REFUSED)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(REFUSED_LINGER_SECONDS, self.transport.close)

    def _count_closed(self, reason: str) -> None:
        telemetry = self.app_state.get(TELEMETRY_STATE)
        if isinstance(telemetry, Telemetry):
            telemetry.closed.labels(reason).inc()


def _tell_parent(reason: str) -> None:
    """Leave a worker's load error where the supervising process reads it (the first one wins)."""
    path = os.environ.get(settings.STARTUP_ERROR_ENV)
    if not path:
        return
    with contextlib.suppress(FileExistsError), open(path, "x", encoding="utf-8") as handle:
        handle.write(reason)


def _predict_schema(model_dir: Path) -> dict[str, Any] | None:
    """Return the OpenAPI request body of ``/predict`` for this model (None when its metadata is unreadable).

    The body is read by hand (for one-line errors and size limits), so FastAPI cannot infer it;
    clients and API testers get it from the model's feature schema instead.
    """
    try:
        metadata = read_metadata(model_dir)
    except ArtifactError:
        return None  # the lifespan reports the real problem
    schema = request_model(metadata.features, metadata.out_of_range).model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})
    records = schema["properties"]["records"]
    ref = records["items"].get("$ref", "")
    if ref:  # inline the record schema: a "#/$defs/..." reference would not resolve inside OpenAPI
        records["items"] = definitions[ref.rsplit("/", 1)[1]]
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


def _not_ready() -> Response:
    return FastJSON({"detail": "model not loaded yet"}, status_code=503)

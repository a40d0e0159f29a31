"""The model's HTTP API: ``create_app(model_dir)`` returns a FastAPI app serving one verified artefact.

Endpoints:

- ``GET /health``: the process is alive (always 200).
- ``GET /ready``: 200 once the model is loaded, 503 before.
- ``GET /metadata``: version, features, labels, metrics, model sha256, scikit-learn version, limits.
- ``POST /predict``: a batch of records, validated against the feature schema in the metadata
  (``model/request.py``) and answered by ``model/runtime.py``.
- ``GET /metrics``: Prometheus text format (requests, errors, latency, predictions per class).

A ``/predict`` request and its answer (churn model)::

    POST /predict
    {"records": [{"tenure_months": 5, "monthly_charges": 89.5, "total_charges": null,
                  "contract": "month_to_month", "internet_service": "fiber",
                  "payment_method": "card", "support_calls": 3, "has_partner": false,
                  "region": "north"}]}

    200 {"predictions": [1], "probabilities": [{"0": 0.27, "1": 0.73}],
         "labels": [0, 1], "model_version": "3"}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from model.errors import ArtifactError
from model.request import read_body
from model.runtime import LoadedModel, answer_predict, load_model
from model.telemetry import REGRESSION_LABEL, Telemetry, observe

DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_BATCH_ENV = "MODEL_MAX_BATCH"
MAX_BODY_ENV = "MODEL_MAX_BODY_BYTES"


@dataclass(frozen=True)
class Limits:
    """Request size limits: records per batch and bytes per body."""

    max_batch: int
    max_body_bytes: int


def create_app(model_dir: Path, max_batch: int | None = None, max_body_bytes: int | None = None) -> FastAPI:
    """Return the API for the artefact in ``model_dir``; the model is loaded at startup.

    ``max_batch`` and ``max_body_bytes`` default to the environment variables
    ``MODEL_MAX_BATCH`` and ``MODEL_MAX_BODY_BYTES``, else 1000 records and 4 MiB.
    Startup raises :class:`ArtifactError` for a missing, tampered or incompatible artefact.
    """
    model_dir = Path(model_dir)
    limits = Limits(
        max_batch=_limit(max_batch, MAX_BATCH_ENV, DEFAULT_MAX_BATCH),
        max_body_bytes=_limit(max_body_bytes, MAX_BODY_ENV, DEFAULT_MAX_BODY_BYTES),
    )
    telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            loaded = load_model(model_dir)
        except ArtifactError as exc:
            app.state.load_error = str(exc)
            raise
        app.state.model = loaded
        telemetry.info.labels(loaded.version, loaded.metadata.model_sha256).set(1)
        for label in loaded.labels if loaded.labels is not None else [REGRESSION_LABEL]:
            telemetry.predictions.labels(str(label))
        telemetry.ready.set(1)
        yield
        telemetry.ready.set(0)
        app.state.model = None

    app = FastAPI(title="model", summary="Predictions from one verified model artefact.", lifespan=lifespan)
    app.state.model = None
    app.state.load_error = None
    app.state.limits = limits
    app.state.telemetry = telemetry
    app.middleware("http")(observe(telemetry))

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Answer 200 while the process runs."""
        return {"status": "alive"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Answer 200 once the model is loaded, 503 before."""
        loaded: LoadedModel | None = app.state.model
        if loaded is None:
            return JSONResponse({"status": "loading", "detail": "model not loaded"}, status_code=503)
        return JSONResponse({"status": "ready", "model_version": loaded.version})

    @app.get("/metadata")
    def metadata() -> JSONResponse:
        """Describe the served model: version, features, labels, metrics, hashes and limits."""
        loaded: LoadedModel | None = app.state.model
        if loaded is None:
            return _not_ready()
        meta = loaded.metadata
        return JSONResponse(
            {
                "version": loaded.version,
                "task": meta.task,
                "target": meta.target,
                "kind": meta.kind,
                "features": [dataclasses.asdict(f) for f in meta.features],
                "labels": loaded.labels,
                "positive_label": meta.positive_label,
                "metrics": loaded.metrics,
                "model_sha256": meta.model_sha256,
                "sklearn_version": meta.sklearn_version,
                "created_at": meta.created_at,
                "git_commit": meta.git_commit,
                "max_batch": limits.max_batch,
                "max_body_bytes": limits.max_body_bytes,
            }
        )

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        """Predict a batch: ``{"records": [{feature: value, ...}, ...]}`` (see the module docstring)."""
        loaded: LoadedModel | None = app.state.model
        if loaded is None:
            return _not_ready()
        body = await read_body(request, limits.max_body_bytes)
        if isinstance(body, JSONResponse):
            return body
        response, counts = await run_in_threadpool(answer_predict, loaded, body, limits.max_batch)
        for label, count in counts.items():
            telemetry.predictions.labels(label).inc(count)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        """Return the Prometheus metrics of this app."""
        return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _not_ready() -> JSONResponse:
    return JSONResponse({"detail": "model not loaded yet"}, status_code=503)


def _limit(given: int | None, env: str, default: int) -> int:
    """Return a positive limit from the argument, else the environment variable, else the default."""
    if given is None:
        raw = os.environ.get(env)
        if raw is None or not raw.strip():
            return default
        try:
            given = int(raw)
        except ValueError:
            raise ValueError(f"{env}={raw!r} is not a whole number") from None
    if given < 1:
        raise ValueError(f"{env.lower().removeprefix('model_')} must be >= 1, got {given}")
    return given

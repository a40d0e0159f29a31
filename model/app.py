"""The model's HTTP API: ``create_app(model_dir)`` returns a FastAPI app serving one verified artefact.

Endpoints:

- ``GET /health``: the process is alive (always 200).
- ``GET /ready``: 200 once the model is loaded, 503 before.
- ``GET /metadata``: version, features, labels, metrics, model sha256, scikit-learn version, limits.
- ``POST /predict``: a batch of records, validated against the feature schema in the metadata.
- ``GET /metrics``: Prometheus text format (requests, errors, latency, predictions per class).

A ``/predict`` request and its answer (churn model)::

    POST /predict
    {"records": [{"tenure_months": 5, "monthly_charges": 89.5, "total_charges": null,
                  "contract": "month_to_month", "internet_service": "fiber",
                  "payment_method": "card", "support_calls": 3, "has_partner": false,
                  "region": "north"}]}

    200 {"predictions": [1], "probabilities": [{"0": 0.27, "1": 0.73}],
         "labels": [0, 1], "model_version": "3"}

Every feature is required and nothing else is allowed; numeric features take JSON
numbers (not strings or booleans), categorical ones a string (or the type of their
allowed values), boolean ones ``true``/``false``; ``null`` only where the feature is
nullable. A bad record is answered with 422 naming the field
(``records[3].tenure_months: input should be a valid number, got string``), a batch
over ``max_batch`` records or a body over ``max_body_bytes`` with 413.

The records become a DataFrame with the training column order and the dtypes pandas
gives the same values read from a table (integers stay integers, nulls become NaN),
so the served predictions equal the offline model's on the same batch of rows.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, create_model
from pydantic_core import PydanticCustomError
from sklearn.pipeline import Pipeline
from starlette.concurrency import run_in_threadpool

from model.artifact import load_artifact
from model.errors import ArtifactError

DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_BATCH_ENV = "MODEL_MAX_BATCH"
MAX_BODY_ENV = "MODEL_MAX_BODY_BYTES"
LINEAGE_FILE = "lineage.json"
METRICS_FILE = "metrics.json"
MAX_REPORTED_ERRORS = 20
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REGRESSION_LABEL = "value"  # the predictions counter's label for regressors

logger = logging.getLogger("model.app")


@dataclass(frozen=True)
class Limits:
    """Request size limits: records per batch and bytes per body."""

    max_batch: int
    max_body_bytes: int


@dataclass(frozen=True)
class LoadedModel:
    """A verified estimator with what serving needs from its metadata."""

    estimator: Any
    metadata: dict[str, Any]
    version: str
    features: tuple[tuple[str, str], ...]
    labels: list[Any] | None
    metrics: dict[str, Any] | None
    request_model: type[BaseModel]

    @property
    def is_classifier(self) -> bool:
        """Return True when the model predicts classes with probabilities."""
        return self.labels is not None


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
        telemetry.info.labels(loaded.version, loaded.metadata["model_sha256"]).set(1)
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
    app.middleware("http")(_observe(telemetry))

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
                "task": meta.get("task"),
                "target": meta.get("target"),
                "kind": meta.get("kind"),
                "features": meta["features"],
                "labels": loaded.labels,
                "positive_label": meta.get("positive_label"),
                "metrics": loaded.metrics,
                "model_sha256": meta["model_sha256"],
                "sklearn_version": meta.get("sklearn_version"),
                "created_at": meta.get("created_at"),
                "git_commit": meta.get("git_commit"),
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
        body = await _read_body(request, limits.max_body_bytes)
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


def load_model(model_dir: Path) -> LoadedModel:
    """Load and verify the artefact; return it with its version, schema and request model."""
    estimator, metadata = load_artifact(model_dir)
    features = feature_specs(metadata)
    labels: list[Any] | None = None
    if metadata.get("task") == "classification":
        labels = list(metadata.get("labels") or [])
        classes = [_plain(c) for c in getattr(estimator, "classes_", [])]
        if classes != labels:
            raise ArtifactError(
                f"{model_dir}: model classes {classes} differ from the metadata labels {labels}"
            )
        if not hasattr(estimator, "predict_proba"):
            raise ArtifactError(f"{model_dir}: classifier {type(estimator).__name__} has no predict_proba")
    return LoadedModel(
        estimator=estimator,
        metadata=metadata,
        version=model_version(model_dir, metadata),
        features=tuple((str(f["name"]), str(f["type"])) for f in features),
        labels=labels,
        metrics=model_metrics(model_dir, metadata),
        request_model=request_model(features),
    )


def feature_specs(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the metadata's feature schema, checked to be usable for validation."""
    features = metadata.get("features")
    if not isinstance(features, list) or not features:
        raise ArtifactError("model metadata has no 'features' list; retrain to record the feature schema")
    for spec in features:
        if not isinstance(spec, dict) or "name" not in spec:
            raise ArtifactError(f"model metadata feature {spec!r} has no name")
        if spec.get("type") not in {"numeric", "categorical", "boolean"}:
            raise ArtifactError(
                f"model metadata feature {spec['name']!r} has type {spec.get('type')!r}, "
                "expected numeric, categorical or boolean"
            )
    return features


def model_version(model_dir: Path, metadata: dict[str, Any]) -> str:
    """Return the version to report: metadata ``version``, else lineage.json's, else the sha256 prefix."""
    for key in ("version", "registry_version"):
        if metadata.get(key) is not None:
            return str(metadata[key])
    lineage = _read_optional_json(Path(model_dir) / LINEAGE_FILE)
    if lineage is not None and lineage.get("version") is not None:
        return str(lineage["version"])
    return str(metadata["model_sha256"])[:12]


def model_metrics(model_dir: Path, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """Return the model's quality metrics: metadata ``metrics``, else metrics.json's overall, else None."""
    if isinstance(metadata.get("metrics"), dict):
        return dict(metadata["metrics"])
    stored = _read_optional_json(Path(model_dir) / METRICS_FILE)
    if stored is not None and isinstance(stored.get("overall"), dict):
        return dict(stored["overall"])
    return None


def request_model(features: Sequence[dict[str, Any]]) -> type[BaseModel]:
    """Build the pydantic model of a ``/predict`` body from the feature schema.

    Fields are required and keyed by the feature names (as aliases, so any column name
    works); unknown keys are rejected.
    """
    fields: dict[str, Any] = {}
    for index, spec in enumerate(features):
        check = PlainValidator(value_checker(spec), json_schema_input_type=_schema_type(spec))
        fields[f"f{index}"] = (Annotated[Any, check], Field(alias=str(spec["name"])))
    record = create_model("Record", __config__=ConfigDict(extra="forbid", populate_by_name=False), **fields)
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(min_length=1)),  # type: ignore[valid-type]
    )


def value_checker(spec: dict[str, Any]) -> Callable[[Any], Any]:
    """Return a validator for one feature's values: type, null, range and allowed values."""
    kind = str(spec["type"])
    nullable = bool(spec.get("nullable", True))
    allowed = spec.get("allowed")
    low, high = spec.get("min"), spec.get("max")
    accepted: set[type] = {str}
    if kind == "categorical" and allowed:
        accepted = {type(v) for v in allowed if v is not None}
        if accepted & {int, float}:
            accepted |= {int, float}
    expected = {
        "numeric": "a valid number",
        "boolean": "a valid boolean (true or false)",
        "categorical": "a " + " or ".join(sorted({_JSON_TYPES.get(t, t.__name__) for t in accepted})),
    }[kind]

    def check(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise PydanticCustomError(
                "null_not_allowed", "input should not be null (feature is not nullable)"
            )
        if kind == "numeric":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _type_error(expected, value)
            if isinstance(value, float) and not math.isfinite(value):
                raise PydanticCustomError("finite_number", "input should be a finite number")
            if low is not None and value < low:
                raise PydanticCustomError(
                    "greater_than_equal",
                    "input should be >= {min}, got {value}",
                    {"min": low, "value": value},
                )
            if high is not None and value > high:
                raise PydanticCustomError(
                    "less_than_equal", "input should be <= {max}, got {value}", {"max": high, "value": value}
                )
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise _type_error(expected, value)
        elif type(value) not in accepted:
            raise _type_error(expected, value)
        if allowed is not None and not any(_same(value, a) for a in allowed):
            raise PydanticCustomError(
                "not_allowed",
                "input should be one of {allowed}, got {value}",
                {"allowed": ", ".join(json.dumps(a) for a in allowed), "value": json.dumps(value)},
            )
        return value

    return check


def answer_predict(loaded: LoadedModel, body: bytes, max_batch: int) -> tuple[JSONResponse, dict[str, int]]:
    """Validate and predict a ``/predict`` body; return the response and the rows per predicted label."""
    records = parse_records(body, loaded, max_batch)
    if isinstance(records, JSONResponse):
        return records, {}
    answer, counts = predict_records(loaded, records)
    return JSONResponse(answer), counts


def parse_records(body: bytes, loaded: LoadedModel, max_batch: int) -> list[dict[str, Any]] | JSONResponse:
    """Return the validated records of a ``/predict`` body, or the 413/422 response explaining why not."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _invalid([{"field": "body", "message": f"invalid JSON ({exc})", "type": "json_invalid"}])
    records = payload.get("records") if isinstance(payload, dict) else None
    if isinstance(records, list) and len(records) > max_batch:
        return JSONResponse(
            {"detail": f"records: batch of {len(records)} records exceeds the limit of {max_batch}"},
            status_code=413,
        )
    try:
        loaded.request_model.model_validate(payload)
    except ValidationError as exc:
        return _invalid(
            [
                {"field": _field_path(e["loc"]), "message": _message(e), "type": e["type"]}
                for e in exc.errors(include_url=False)
            ]
        )
    assert isinstance(records, list)  # the request model accepted it
    return records


def predict_records(
    loaded: LoadedModel, records: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, int]]:
    """Predict validated records; return the response body and the count of rows per predicted label."""
    frame = records_frame(records, loaded.features)
    predictions, proba = score(loaded.estimator, frame, with_proba=loaded.is_classifier)
    answer: dict[str, Any] = {
        "predictions": predictions.tolist(),
        "probabilities": None,
        "labels": loaded.labels,
        "model_version": loaded.version,
    }
    if loaded.labels is not None and proba is not None:
        keys = [str(label) for label in loaded.labels]
        answer["probabilities"] = [dict(zip(keys, row, strict=True)) for row in proba.tolist()]
        values, counts = np.unique(predictions, return_counts=True)
        return answer, {str(_plain(v)): int(c) for v, c in zip(values, counts, strict=True)}
    return answer, {REGRESSION_LABEL: len(predictions)}


def score(estimator: Any, frame: pd.DataFrame, with_proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``estimator.predict(frame)`` and, if asked, ``predict_proba(frame)``.

    For a scikit-learn ``Pipeline`` the preprocessing runs once and both calls use its
    output, exactly as ``Pipeline.predict`` and ``Pipeline.predict_proba`` would each
    compute it (the same steps on the same input), at half the cost.
    """
    final, X = estimator, frame
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps[:-1]:
            if step is not None and not isinstance(step, str):  # None or "passthrough" skip a step
                X = step.transform(X)
        final = estimator.steps[-1][1]
    predictions = np.asarray(final.predict(X))
    proba = np.asarray(final.predict_proba(X), dtype=float) if with_proba else None
    return predictions, proba


def records_frame(records: Sequence[dict[str, Any]], features: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Return records as a DataFrame in training column order, typed as a table read would type them.

    Integers stay int64, floats float64, strings pandas' string dtype; a null becomes NaN
    (numeric and boolean columns with a null become float64, as in training).
    """
    columns: dict[str, pd.Series] = {}
    for name, kind in features:
        values = [record[name] for record in records]
        has_null = any(v is None for v in values)
        if has_null and kind in {"numeric", "boolean"}:
            columns[name] = pd.Series(values, dtype="float64")
        elif has_null:
            columns[name] = pd.Series([np.nan if v is None else v for v in values])
        else:
            columns[name] = pd.Series(values)
    return pd.DataFrame(columns, columns=[name for name, _ in features])


def _observe(telemetry: Telemetry) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Any]:
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


async def _read_body(request: Request, limit: int) -> bytes | JSONResponse:
    """Return the body, or a 413 response when Content-Length or the bytes received exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _too_large(size, limit, at_least=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, at_least: bool = False) -> JSONResponse:
    amount = f"more than {limit}" if at_least else str(size)
    return JSONResponse(
        {"detail": f"body: {amount} bytes exceeds the limit of {limit} bytes; send smaller batches"},
        status_code=413,
    )


def _invalid(errors: list[dict[str, Any]]) -> JSONResponse:
    shown = errors[:MAX_REPORTED_ERRORS]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in shown[:5])
    if len(errors) > 5:
        detail += f" (and {len(errors) - 5} more)"
    return JSONResponse({"detail": detail, "errors": shown}, status_code=422)


def _not_ready() -> JSONResponse:
    return JSONResponse({"detail": "model not loaded yet"}, status_code=503)


def _field_path(loc: Sequence[int | str]) -> str:
    """Return ``records[3].tenure_months`` for the pydantic location ``('records', 3, 'tenure_months')``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _type_error(expected: str, value: Any) -> PydanticCustomError:
    return PydanticCustomError(
        "wrong_type",
        "input should be {expected}, got {got}",
        {"expected": expected, "got": _json_type(value)},
    )


_JSON_TYPES: dict[type, str] = {str: "string", int: "number", float: "number", bool: "boolean"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _schema_type(spec: dict[str, Any]) -> Any:
    kind = spec["type"]
    base: Any = {"numeric": float, "boolean": bool}.get(kind, str)
    return base | None if spec.get("nullable", True) else base


def _same(value: Any, allowed: Any) -> bool:
    """Return True when ``value`` equals an allowed value of the same kind (True is not 1)."""
    return isinstance(value, bool) == isinstance(allowed, bool) and value == allowed


# Plainer words for pydantic's own errors (its messages name our generated classes).
_MESSAGES = {
    "missing": "field required",
    "extra_forbidden": "unknown field",
    "model_type": "input should be a JSON object",
    "dict_type": "input should be a JSON object",
    "list_type": "input should be a JSON array of records",
}


def _message(error: Any) -> str:
    if error["type"] == "too_short" and tuple(error["loc"]) == ("records",):
        return "batch is empty; send at least one record"
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 3:
        return "unknown field (not a feature of this model)"
    text = _MESSAGES.get(error["type"], str(error["msg"]))
    return text[:1].lower() + text[1:]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


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


def _read_optional_json(path: Path) -> dict[str, Any] | None:
    """Return a JSON object from ``path``, or None when it is absent or unreadable (logged)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable %s (%s)", path, exc)
        return None
    return data if isinstance(data, dict) else None

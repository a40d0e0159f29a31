"""The ``/predict`` request: its schema built from the model's feature list, and one-line errors.

Every feature is required and nothing else is allowed; numeric features take JSON numbers
(not strings or booleans), categorical ones a string (or the type of their allowed values),
boolean ones every spelling training reads a boolean by (``true``/``false``, ``1``/``0``, and
``"yes"``/``"no"`` and the other words of ``BOOLEAN_WORDS`` in any case, ``model/inputs.py``),
handed on as ``True``/``False`` so both runtimes see what training saw; ``null`` only where the
feature is nullable. A bad record is answered with 422 naming the field
(``records[3].tenure_months: input should be a valid number, got string``), a batch over
``max_batch`` records or a body over ``max_body_bytes`` with 413. A value of the right type
outside the schema's range or allowed values is the model's ``out_of_range`` policy: ``count``
serves it (the app counts it per feature, a drift signal: ``out_of_range_counts``), ``reject``
answers 422.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Sequence
from typing import Annotated, Any, Literal

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from model.inputs import BOOLEAN_SPELLINGS, BOOLEAN_WORDS, boolean_value
from model.records import Feature, OutOfRange

MAX_REPORTED_ERRORS = 20
FLOAT32_MAX = 3.4028234663852886e38  # the largest float32: ONNX Runtime takes numbers as float32
BOOLEAN_DESCRIPTION = (
    f"A boolean: {BOOLEAN_SPELLINGS}, surrounding spaces ignored. true, 1 and the first word of each "
    "pair mean true (1 to the model); false, 0 and the second mean false (0)."
)


def request_model(features: Sequence[Feature], out_of_range: OutOfRange = "count") -> type[BaseModel]:
    """Build the pydantic model of a ``/predict`` body from the feature schema.

    Fields are required and keyed by the feature names (as aliases, so any column name
    works); unknown keys are rejected.
    """
    fields: dict[str, Any] = {}
    for index, spec in enumerate(features):
        checker = value_checker(spec, reject=out_of_range == "reject")
        check = PlainValidator(checker, json_schema_input_type=_schema_type(spec, out_of_range == "reject"))
        fields[f"f{index}"] = (Annotated[Any, check], Field(alias=spec.name))
    record = create_model("Record", __config__=ConfigDict(extra="forbid", populate_by_name=False), **fields)
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(min_length=1)),  # type: ignore[valid-type]
    )


def value_checker(spec: Feature, reject: bool = True) -> Callable[[Any], Any]:
    """Return a validator for one feature's values: type and null, and with ``reject`` range and allowed values."""
    kind = spec.type
    nullable = spec.nullable
    allowed = spec.allowed
    low, high = spec.min, spec.max
    accepted: set[type] = {str}
    if kind == "categorical" and allowed:
        accepted = {type(v) for v in allowed if v is not None}
        if accepted & {int, float}:
            accepted |= {int, float}
    expected = {
        "numeric": "a valid number",
        "boolean": f"a boolean ({BOOLEAN_SPELLINGS})",
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
            if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > FLOAT32_MAX:
                raise PydanticCustomError(
                    "finite_number",
                    "input should be a finite number within ±3.4e38 (the model computes in float32)",
                )
            if not reject:
                return value
            if low is not None and value < low:
                raise PydanticCustomError(
                    "greater_than_equal",
                    "input should be >= {min}, got {value}",
                    {"min": _number(low), "value": value},
                )
            if high is not None and value > high:
                raise PydanticCustomError(
                    "less_than_equal",
                    "input should be <= {max}, got {value}",
                    {"max": _number(high), "value": value},
                )
        elif kind == "boolean":
            meaning = boolean_value(value)
            if meaning is None:
                raise PydanticCustomError(
                    "boolean_spelling",
                    "input should be {expected}, got {got}",
                    {"expected": expected, "got": _shown(value)},
                )
            value = meaning
        elif type(value) not in accepted:
            raise _type_error(expected, value)
        if reject and allowed is not None and not _is_allowed(value, spec):
            raise PydanticCustomError(
                "not_allowed",
                "input should be one of {allowed}, got {value}",
                {"allowed": ", ".join(json.dumps(a) for a in allowed), "value": json.dumps(value)},
            )
        return value

    return check


def out_of_range_counts(records: Sequence[dict[str, Any]], features: Sequence[Feature]) -> dict[str, int]:
    """Return, per feature with limits, how many of the (validated) records fall outside them."""
    counts: dict[str, int] = {}
    for spec in features:
        if spec.min is None and spec.max is None and spec.allowed is None:
            continue
        outside = sum(1 for record in records if _outside(record[spec.name], spec))
        if outside:
            counts[spec.name] = outside
    return counts


def _outside(value: Any, spec: Feature) -> bool:
    if value is None:
        return False
    if spec.type == "numeric" and (
        (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max)
    ):
        return True
    return spec.allowed is not None and not _is_allowed(value, spec)


def _is_allowed(value: Any, spec: Feature) -> bool:
    """Return True when ``value`` is one of the feature's allowed values (a boolean by what it means)."""
    if spec.type == "boolean":
        return any(boolean_value(a) is value for a in spec.allowed or ())
    return any(_same(value, a) for a in spec.allowed or ())


def parse_records(
    body: bytes, schema: type[BaseModel], max_batch: int, booleans: Collection[str]
) -> list[dict[str, Any]] | JSONResponse:
    """Return the validated records of a ``/predict`` body, or the 413/422 response explaining why not.

    The ``booleans`` (the names of the boolean features) come back as True/False whichever
    spelling the client sent (``1``, ``"yes"``, ...), null as None: what each runtime is fed.
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return invalid([{"field": "body", "message": f"invalid JSON ({exc})", "type": "json_invalid"}])
    records = payload.get("records") if isinstance(payload, dict) else None
    if isinstance(records, list) and len(records) > max_batch:
        return JSONResponse(
            {"detail": f"records: batch of {len(records)} records exceeds the limit of {max_batch}"},
            status_code=413,
        )
    try:
        schema.model_validate(payload)
    except ValidationError as exc:
        return invalid(
            [
                {"field": _field_path(e["loc"]), "message": _message(e), "type": e["type"]}
                for e in exc.errors(include_url=False)
            ]
        )
    assert isinstance(records, list)  # the request model accepted it
    for name in booleans:
        for record in records:
            record[name] = boolean_value(record[name])  # validated: a boolean spelling, or null -> None
    return records


async def read_body(request: Request, limit: int) -> bytes | JSONResponse:
    """Return the body, or a 413 response when Content-Length or the bytes received exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return too_large(size, limit, at_least=True)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(size: int, limit: int, at_least: bool = False) -> JSONResponse:
    amount = f"more than {limit}" if at_least else str(size)
    return JSONResponse(
        {"detail": f"body: {amount} bytes exceeds the limit of {limit} bytes; send smaller batches"},
        status_code=413,
    )


def invalid(errors: list[dict[str, Any]]) -> JSONResponse:
    shown = errors[:MAX_REPORTED_ERRORS]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in shown[:5])
    if len(errors) > 5:
        detail += f" (and {len(errors) - 5} more)"
    return JSONResponse({"detail": detail, "errors": shown}, status_code=422)


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


def _shown(value: Any) -> str:
    """Return a scalar as JSON (``"maybe"``, ``2``), anything else as its JSON type (``array``)."""
    if value is None or isinstance(value, str | int | float):
        return json.dumps(value)
    return _json_type(value)


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


def _schema_type(spec: Feature, reject: bool) -> Any:
    """Return the type the OpenAPI schema documents for a feature: what the checker accepts."""
    if spec.type == "boolean":  # the spellings, and null among them when nullable
        return Annotated[Any, WithJsonSchema(boolean_schema(spec.nullable))]
    if spec.type == "numeric":
        low = spec.min if reject and spec.min is not None else -FLOAT32_MAX
        high = spec.max if reject and spec.max is not None else FLOAT32_MAX
        base: Any = Annotated[float, Field(ge=low, le=high)]
    elif reject and spec.allowed:
        base = Literal[tuple(spec.allowed)]
    else:
        base = str
    return base | None if spec.nullable else base


def boolean_schema(nullable: bool) -> dict[str, Any]:
    """Return the JSON schema of a boolean feature: exactly the spellings ``boolean_value`` reads."""
    words = [word for pair in BOOLEAN_WORDS for word in pair]
    any_case = "|".join("".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in w) for w in words)
    spellings: list[dict[str, Any]] = [
        {"type": "boolean"},
        {"type": "integer", "enum": [1, 0]},
        {"type": "string", "pattern": rf"^\s*(?:{any_case})\s*$"},
    ]
    if nullable:
        spellings.append({"type": "null"})
    return {"anyOf": spellings, "description": BOOLEAN_DESCRIPTION}


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


def _number(value: float) -> float | int:
    """Return a limit for a message: ``0`` rather than ``0.0``."""
    return int(value) if float(value).is_integer() else value

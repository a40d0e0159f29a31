"""The shape of every JSON file ml-cicd writes, and the one strict codec that reads and writes them.

Each file is a frozen dataclass with its file name (``FILE``) and ``SCHEMA_VERSION``; the
written JSON carries ``schema_version``. Reading is strict: a missing or unknown key, a value
of the wrong type or another schema version is an :class:`ArtifactError` naming the file and
the key. The same decoder turns the TOML config into its dataclasses (``pipeline/config.py``)
with the config's own error type, so both speak one dialect of errors.

This module lives in ``model/`` (the bottom layer, shipped in the serving image) because the
server reads the model's files too; it imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from model.errors import ArtifactError
from model.files import write_json_atomic

T = TypeVar("T")
Label = str | int | bool
Scalar = str | int | float | bool
Task = Literal["classification", "regression"]
ColumnType = Literal["numeric", "categorical", "boolean"]


class Status(enum.StrEnum):
    """The verdict of one check, gate or smoke test."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    """One verdict as reported in the tables and JSON files: gates, smoke checks."""

    name: str
    status: Status
    required: bool
    observed: Any
    threshold: Any
    message: str

    @property
    def blocking(self) -> bool:
        """Return True when this result failed and is required."""
        return self.status is Status.FAILED and self.required


# ---------------------------------------------------------------------------------------------
# The model artefact (model/artifact.py writes metadata.json; the registry adds lineage.json).


@dataclass(frozen=True)
class Feature:
    """One model input, as training saw it; serving validates requests with it."""

    name: str
    type: ColumnType
    allowed: tuple[Scalar, ...] | None
    min: float | None
    max: float | None
    nullable: bool


@dataclass(frozen=True)
class ModelMetadata:
    """``metadata.json`` beside the model file; the last four fields are filled in by ``save_artifact``."""

    FILE: ClassVar[str] = "metadata.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    task: Task
    target: str
    labels: tuple[Label, ...] | None
    positive_label: Label | None
    features: tuple[Feature, ...]
    id_columns: tuple[str, ...]
    kind: str
    params: dict[str, Any]
    data_sha256: str
    config_sha256: str
    git_commit: str | None
    created_at: str
    train_rows: int
    holdout_rows: int
    seed: int
    profile: dict[str, Any]
    model_file: str = ""
    model_sha256: str = ""
    sklearn_version: str = ""
    python_version: str = ""

    @property
    def feature_names(self) -> list[str]:
        """Return the feature names in training order."""
        return [f.name for f in self.features]

    @property
    def label_list(self) -> list[Label]:
        """Return the class labels (empty for a regressor)."""
        return list(self.labels or ())


@dataclass(frozen=True)
class GateRecord:
    """The gate outcome a registered version carries (from its ``gates.json``)."""

    passed: bool
    file: str
    results: tuple[Result, ...]


@dataclass(frozen=True)
class Lineage:
    """``lineage.json`` of a registry version: where the model came from and who registered it."""

    FILE: ClassVar[str] = "lineage.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    version: int
    model_sha256: str
    git_commit: str | None
    data_sha256: str
    config_sha256: str
    parent: int | None
    gates: GateRecord | None
    source: str
    registered_by: str
    registered_at: str


# ---------------------------------------------------------------------------------------------
# Step results in the out directory.


@dataclass(frozen=True)
class Latency:
    """In-process prediction latency (varies from run to run)."""

    single_p50_ms: float
    single_p95_ms: float
    batch_rows_per_s: float
    single_rows: int
    batch_rows: int


@dataclass(frozen=True)
class Confusion:
    """A confusion matrix: rows are true labels, columns predicted ones."""

    labels: tuple[Label, ...]
    matrix: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Metrics:
    """``metrics.json`` from ``evaluate``."""

    FILE: ClassVar[str] = "metrics.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    task: Task
    model_sha256: str
    rows: int
    overall: dict[str, float | None]
    per_class: dict[str, dict[str, int | float]] | None
    confusion_matrix: Confusion | None
    slices: dict[str, dict[str, dict[str, Any]]]
    prediction_distribution: dict[str, float]
    latency: Latency


@dataclass(frozen=True)
class Champion:
    """The candidate scored against the champion on the same held-out rows."""

    path: str
    version: int | None
    model_sha256: str
    metric: str
    candidate: dict[str, float | None]
    champion: dict[str, float | None]
    delta: float | None  # positive: the candidate is better
    ci_low: float | None
    ci_high: float | None
    resamples: int
    confidence: float
    rows: int
    tolerance: float


@dataclass(frozen=True)
class Gates:
    """``gates.json`` from ``gate``."""

    FILE: ClassVar[str] = "gates.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    gates: tuple[Result, ...]
    champion: Champion | None

    def result(self, name: str) -> Result | None:
        """Return the gate called ``name``, or None."""
        return next((g for g in self.gates if g.name == name), None)


@dataclass(frozen=True)
class Failure:
    """One failed validation expectation, with what was seen and what was expected."""

    check: str
    column: str | None
    message: str
    observed: Any = None
    expected: Any = None


@dataclass(frozen=True)
class CheckSummary:
    """One validation check: how many columns it looked at (None: the whole table) and failed."""

    check: str
    columns: int | None
    failures: int
    passed: bool


@dataclass(frozen=True)
class Validation:
    """``validation.json`` from ``validate``."""

    FILE: ClassVar[str] = "validation.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    rows: int
    columns: int
    checks: tuple[CheckSummary, ...]
    failures: tuple[Failure, ...]


@dataclass(frozen=True)
class FeatureDrift:
    """Drift measures of one feature."""

    feature: str
    kind: str
    psi: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    drifted: bool


@dataclass(frozen=True)
class DriftLimits:
    """The limits a drift report was judged by."""

    psi_limit: float
    ks_statistic_limit: float
    ks_pvalue_limit: float
    max_drifted_features: int
    bins: int


@dataclass(frozen=True)
class Drift:
    """``drift.json`` from ``validate`` or ``drift``."""

    FILE: ClassVar[str] = "drift.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    reference: str
    source: Literal["csv", "profile"]
    features: tuple[FeatureDrift, ...]
    drifted: tuple[str, ...]
    missing: tuple[str, ...]
    passed: bool
    limits: DriftLimits


@dataclass(frozen=True)
class Smoke:
    """``smoke.json`` from ``smoke``."""

    FILE: ClassVar[str] = "smoke.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    url: str
    passed: bool
    model_sha256: str
    rows: int
    checks: tuple[Result, ...]


@dataclass(frozen=True)
class Image:
    """``image.json`` from ``image build``."""

    FILE: ClassVar[str] = "image.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    tag: str
    id: str
    size_bytes: int
    base_image: str
    model_sha256: str
    build_seconds: float


# ---------------------------------------------------------------------------------------------
# Reading and writing.


def plain(value: Any) -> Any:
    """Return numpy scalars as Python scalars (for JSON); anything else unchanged."""
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value


def read_json(path: Path, what: str = "file", error: type[Exception] = ArtifactError) -> dict[str, Any]:
    """Return the JSON object at ``path``; ``error`` names the file when it is missing or malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, ValueError) as exc:
        raise error(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: {what} must be a JSON object")
    return data


def read_record(path: Path, cls: type[T], what: str = "") -> T:
    """Read the record ``cls`` from ``path``; raise :class:`ArtifactError` naming the file and key."""
    raw = read_json(path, what or cls.__name__.lower() + " file")
    expected = getattr(cls, "SCHEMA_VERSION", 1)
    found = raw.pop("schema_version", None)
    if found is None:
        raise ArtifactError(f"{path}: missing required key 'schema_version' (written by an older ml-cicd?)")
    if found != expected:
        raise ArtifactError(f"{path}: schema_version {found!r}, this ml-cicd reads {expected}")
    return decode(cls, raw, str(path), every_key=True)


def read_optional(path: Path, cls: type[T]) -> T | None:
    """Return the record at ``path``, or None when the file does not exist (a bad file still raises)."""
    return read_record(path, cls) if Path(path).is_file() else None


def write_record(path: Path, record: Any) -> None:
    """Write ``record`` as indented, key-sorted JSON with its ``schema_version``, atomically."""
    payload = {"schema_version": type(record).SCHEMA_VERSION, **encode(record)}
    write_json_atomic(Path(path), payload)


def encode(record: Any) -> dict[str, Any]:
    """Return a record as plain JSON data (non-finite floats become null)."""
    return typing.cast(dict[str, Any], _finite(dataclasses.asdict(record)))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class _Context:
    origin: str
    error: type[Exception]
    every_key: bool
    table: str = field(default="an object")


def decode(
    cls: type[T], raw: Any, origin: str, *, error: type[Exception] = ArtifactError, every_key: bool = False
) -> T:
    """Build dataclass ``cls`` from ``raw``, rejecting unknown keys and wrong types.

    ``every_key`` (records) makes every field required; otherwise (the config) fields with a
    default may be left out. Lists become tuples, tables become dataclasses, ints are accepted
    where floats are expected, and booleans are never taken for numbers.
    """
    table = "an object" if every_key else "a table"
    return typing.cast(T, _build(cls, raw, _Context(origin, error, every_key, table), ""))


def _build(cls: type, raw: Any, ctx: _Context, where: str) -> Any:
    label = where or "top level"
    if not isinstance(raw, dict):
        raise ctx.error(f"{ctx.origin}: {label} must be {ctx.table}, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            raise ctx.error(f"{ctx.origin}: unknown key '{_join(where, key)}' (expected one of: {allowed})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name not in raw:
            optional = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            if ctx.every_key or not optional:
                raise ctx.error(f"{ctx.origin}: missing required key '{key}'")
            continue
        values[name] = _coerce(hints[name], raw[name], ctx, key)
    return cls(**values)


def _coerce(hint: Any, value: Any, ctx: _Context, key: str) -> Any:
    """Check ``value`` against type ``hint``; convert lists to tuples and tables to dataclasses."""
    origin_type = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, ctx, key)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in hint)
            raise ctx.error(f"{ctx.origin}: {key} must be one of {choices}, got {value!r}") from None
    if origin_type in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(option, value, ctx, key)
            except ctx.error:
                continue
        raise ctx.error(f"{ctx.origin}: {key} must be {_describe(hint)}, got {value!r}")
    if origin_type is Literal:
        if value in args and type(value) is type(args[0]):
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ctx.error(f"{ctx.origin}: {key} must be one of {choices}, got {value!r}")
    if origin_type is tuple:
        if not isinstance(value, list | tuple):
            raise ctx.error(f"{ctx.origin}: {key} must be a list, got {value!r}")
        item = args[0]
        return tuple(_coerce(item, v, ctx, _item_key(key, i, v)) for i, v in enumerate(value))
    if origin_type is dict:
        if not isinstance(value, dict):
            raise ctx.error(f"{ctx.origin}: {key} must be {ctx.table}, got {value!r}")
        if args and args[1] is not Any:
            return {k: _coerce(args[1], v, ctx, f"{key}.{k}") for k, v in value.items()}
        return dict(value)
    if _simple(hint, value):
        return float(value) if hint is float else value
    raise ctx.error(f"{ctx.origin}: {key} must be {_describe(hint)}, got {value!r}")


def _simple(hint: Any, value: Any) -> bool:
    """Return True when ``value`` is of the plain type ``hint`` (None, bool, int, float, str)."""
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return hint is str and isinstance(value, str)


def _describe(hint: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) is tuple:
        return "a list"
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return " or ".join(_describe(a) for a in args) if args else str(hint)


def _item_key(key: str, index: int, item: Any) -> str:
    """Name a list item: ``schema.columns.region`` for named tables, else ``key[index]``."""
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return f"{key}.{item['name']}"
    return f"{key}[{index}]"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key

"""The one knob file, ``configs/pipeline.toml``, loaded into frozen dataclasses.

Unknown keys and wrong types are errors that name the key, e.g.
``configs/pipeline.toml: training.sample_rows must be an integer >= 0, got -5``.
Relative paths in the file are resolved against the working directory (the repo
root, both on the host and in the step containers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import ConfigError

DEFAULT_CONFIG = "configs/pipeline.toml"

Task = Literal["classification", "regression"]
ColumnType = Literal["numeric", "categorical", "boolean"]
Direction = Literal["higher", "lower"]
Label = str | int | bool
Scalar = str | int | float | bool


@dataclass(frozen=True)
class DataConfig:
    """Where the table is and what to learn from it."""

    path: str
    target: str
    task: Task = "classification"
    format: Literal["csv", "parquet"] | None = None
    positive_label: Label | None = None
    id_columns: tuple[str, ...] = ()

    @property
    def table_format(self) -> str:
        """Return ``csv`` or ``parquet``: the configured format, else the file extension."""
        if self.format is not None:
            return self.format
        suffix = Path(self.path).suffix.lower()
        return "parquet" if suffix in {".parquet", ".pq"} else "csv"


@dataclass(frozen=True)
class ColumnSchema:
    """Expectations for one column of the table."""

    name: str
    type: ColumnType
    min: float | None = None
    max: float | None = None
    allowed: tuple[Scalar, ...] | None = None
    nullable: bool = True
    max_null_fraction: float = 1.0

    @property
    def null_limit(self) -> float:
        """Return the largest allowed fraction of nulls (0 when not nullable)."""
        return self.max_null_fraction if self.nullable else 0.0


@dataclass(frozen=True)
class SchemaConfig:
    """Column expectations plus table-level checks."""

    columns: tuple[ColumnSchema, ...] = ()
    min_rows: int = 50
    allow_unexpected_columns: bool = False
    max_duplicate_fraction: float = 0.05
    min_class_fraction: float = 0.01
    labels: tuple[Label, ...] | None = None

    def column(self, name: str) -> ColumnSchema | None:
        """Return the schema of ``name``, or None when it has none."""
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class ModelConfig:
    """Estimator kind and its parameters, passed through to scikit-learn."""

    kind: str = "hist_gradient_boosting"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingConfig:
    """How much data quick CI training uses and how it is split."""

    sample_rows: int = 2000
    test_fraction: float = 0.25
    seed: int = 42
    stratify: bool = True


@dataclass(frozen=True)
class MetricGate:
    """A metric threshold: ``observed`` must be on the right side of ``threshold``."""

    metric: str
    threshold: float
    direction: Direction = "higher"
    required: bool = True


@dataclass(frozen=True)
class ChampionGate:
    """No regression against the champion, judged by a paired bootstrap."""

    metric: str | None = None
    tolerance: float = 0.01
    confidence: float = 0.95
    bootstrap: int = 1000
    required: bool = True


@dataclass(frozen=True)
class LatencyGate:
    """Single-row prediction latency, in-process."""

    p95_ms: float = 50.0
    required: bool = False


@dataclass(frozen=True)
class SliceGate:
    """A floor on a metric in every slice with enough rows."""

    metric: str | None = None
    min: float | None = None
    required: bool = False


@dataclass(frozen=True)
class CollapseGate:
    """Every class must keep at least this share of the predictions."""

    min_class_fraction: float = 0.01
    required: bool = True


@dataclass(frozen=True)
class DriftGate:
    """Whether drift beyond the drift limits fails the run."""

    required: bool = True


@dataclass(frozen=True)
class GatesConfig:
    """All quality gates; each is reported, required ones decide the exit code."""

    metric: tuple[MetricGate, ...] = ()
    champion: ChampionGate = field(default_factory=ChampionGate)
    latency: LatencyGate = field(default_factory=LatencyGate)
    slices: SliceGate = field(default_factory=SliceGate)
    collapse: CollapseGate = field(default_factory=CollapseGate)
    drift: DriftGate = field(default_factory=DriftGate)


@dataclass(frozen=True)
class DriftConfig:
    """Reference data and limits for the drift check."""

    reference: str | None = None
    psi_limit: float = 0.2
    ks_pvalue_limit: float = 0.001
    ks_statistic_limit: float = 0.1
    bins: int = 10
    max_drifted_features: int = 0


@dataclass(frozen=True)
class SlicesConfig:
    """Columns whose values define slices for per-slice metrics."""

    columns: tuple[str, ...] = ()
    min_rows: int = 30


@dataclass(frozen=True)
class RegistryConfig:
    """Where the embedded directory registry lives."""

    path: str = "registry"


@dataclass(frozen=True)
class Config:
    """The whole pipeline configuration."""

    data: DataConfig
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    gates: GatesConfig = field(default_factory=GatesConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    slices: SlicesConfig = field(default_factory=SlicesConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the parsed config as plain JSON-able data."""
        return dataclasses.asdict(self)

    def section_hash(self, *sections: str) -> str:
        """Return a sha256 over the named sections (all when none), stable across key order."""
        data = self.to_dict()
        chosen = {name: data[name] for name in (sections or tuple(data))}
        blob = json.dumps(chosen, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Return schema columns used as model features (not target, not ids)."""
        skip = {self.data.target, *self.data.id_columns}
        return tuple(c.name for c in self.schema.columns if c.name not in skip)


# Checks beyond types, applied after parsing: (section.key, predicate, expectation).
_RULES: tuple[tuple[str, typing.Callable[[Any], bool], str], ...] = (
    ("training.sample_rows", lambda v: v >= 0, "an integer >= 0 (0 means all rows)"),
    ("training.test_fraction", lambda v: 0 < v < 1, "a number between 0 and 1"),
    ("schema.min_rows", lambda v: v >= 1, "an integer >= 1"),
    ("schema.max_duplicate_fraction", lambda v: 0 <= v <= 1, "a number between 0 and 1"),
    ("schema.min_class_fraction", lambda v: 0 <= v <= 1, "a number between 0 and 1"),
    ("gates.champion.tolerance", lambda v: v >= 0, "a number >= 0"),
    ("gates.champion.confidence", lambda v: 0 < v < 1, "a number between 0 and 1"),
    ("gates.champion.bootstrap", lambda v: v >= 100, "an integer >= 100"),
    ("drift.bins", lambda v: v >= 2, "an integer >= 2"),
    ("drift.psi_limit", lambda v: v > 0, "a number > 0"),
    ("slices.min_rows", lambda v: v >= 1, "an integer >= 1"),
)


def load_config(path: str | Path = DEFAULT_CONFIG) -> Config:
    """Read, type-check and return the config at ``path``."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML ({exc})") from None
    return parse_config(raw, origin=str(path))


def parse_config(raw: dict[str, Any], origin: str = "config") -> Config:
    """Build a :class:`Config` from parsed TOML, naming any bad key."""
    if "data" not in raw:
        raise ConfigError(f"{origin}: missing required section [data]")
    raw = dict(raw)
    schema = dict(raw.get("schema", {}))
    columns = schema.get("columns", {})
    if not isinstance(columns, dict):
        raise ConfigError(f"{origin}: schema.columns must be a table of column tables")
    schema["columns"] = [_column_entry(origin, name, spec) for name, spec in columns.items()]
    raw["schema"] = schema
    config = _build(Config, raw, origin, "")
    for key, ok, expected in _RULES:
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        if not ok(value):
            raise ConfigError(f"{origin}: {key} must be {expected}, got {value!r}")
    for gate in config.gates.metric:
        if gate.direction not in ("higher", "lower"):
            raise ConfigError(f"{origin}: gates.metric direction must be higher or lower")
    return config


def _column_entry(origin: str, name: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ConfigError(f"{origin}: schema.columns.{name} must be a table, got {spec!r}")
    if "name" in spec:
        raise ConfigError(f"{origin}: schema.columns.{name}: unknown key 'name' (the table key is the name)")
    return {"name": name, **spec}


def _build(cls: type, raw: Any, origin: str, where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``raw``, rejecting unknown keys and wrong types."""
    label = where or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: {label} must be a table, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            raise ConfigError(f"{origin}: unknown key '{_join(where, key)}' (expected one of: {allowed})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{origin}: missing required key '{key}'")
            continue
        values[name] = _coerce(hints[name], raw[name], origin, key)
    return cls(**values)


def _coerce(hint: Any, value: Any, origin: str, key: str) -> Any:
    """Check ``value`` against type ``hint``; convert lists to tuples and tables to dataclasses."""
    origin_type = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, origin, key)  # type: ignore[arg-type]
    if origin_type in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(option, value, origin, key)
            except ConfigError:
                continue
        raise ConfigError(f"{origin}: {key} must be {_describe(hint)}, got {value!r}")
    if origin_type is Literal:
        if value in args and type(value) is type(args[0]):
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{origin}: {key} must be one of {choices}, got {value!r}")
    if origin_type is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{origin}: {key} must be a list, got {value!r}")
        return tuple(_coerce(args[0], item, origin, _item_key(key, i, item)) for i, item in enumerate(value))
    if origin_type is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{origin}: {key} must be a table, got {value!r}")
        return dict(value)
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str and isinstance(value, str):
        return value
    raise ConfigError(f"{origin}: {key} must be {_describe(hint)}, got {value!r}")


def _describe(hint: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if hint in names:
        return names[hint]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return "a list"
    return " or ".join(_describe(a) for a in args) if args else str(hint)


def _item_key(key: str, index: int, item: Any) -> str:
    """Name a list item: ``schema.columns.region`` for named tables, else ``key[index]``."""
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return f"{key}.{item['name']}"
    return f"{key}[{index}]"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key

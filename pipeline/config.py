"""The one knob file, ``configs/pipeline.toml``, loaded into frozen dataclasses.

Unknown keys and wrong types are errors that name the key, e.g.
``configs/pipeline.toml: training.sample_rows must be an integer >= 0, got -5`` (the decoder
is ``model.records.decode``, shared with the artefact files). Gate metrics must come from the
metric table (``pipeline/core/metrics.py``), which also gives their direction. Relative paths
in the file are resolved against the working directory (the repo root, both on the host and
in the step containers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from model.codec import decode
from model.records import ColumnType, Label, OutOfRange, Scalar, Task
from pipeline.core.metrics import Direction, lookup
from pipeline.errors import ConfigError

DEFAULT_CONFIG = "configs/pipeline.toml"


@dataclass(frozen=True)
class DataConfig:
    """Where the table is and what to learn from it."""

    path: str
    target: str
    task: Task = "classification"
    format: Literal["csv", "parquet"] | None = None
    positive_label: Label | None = None
    id_columns: tuple[str, ...] = ()


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
    # Integrity and leakage (pipeline/core/integrity.py); ``skip_checks`` turns any check off by name.
    max_dominant_fraction: float = 0.999  # a feature whose one value covers more rows is near-constant
    max_conflicting_fraction: float = 0.01  # rows with identical features and another label (classification)
    leakage_limit: float = 0.99  # a feature alone reaching this ROC AUC (regression: R²) is flagged
    leakage_rows: int = 10_000  # rows sampled for the leakage scores
    skip_checks: tuple[str, ...] = ()

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
    test_fraction: float = 0.25  # share of rows held out, by a salted hash of each row's key
    seed: int = 42
    stratify: bool = True  # stratify the training sample by the target (classification)
    split_salt: str = "ml-cicd"  # change it to draw a different held-out side


@dataclass(frozen=True)
class MetricGate:
    """A metric threshold: ``observed`` must be on the better side of ``threshold``.

    ``direction`` may be left out: the metric table knows it (and a contradicting one is an error).
    """

    metric: str
    threshold: float
    direction: Direction | None = None
    required: bool = True


@dataclass(frozen=True)
class ChampionGate:
    """No regression against the champion, judged by a paired bootstrap."""

    metric: str | None = None
    tolerance: float = 0.01
    confidence: float = 0.95
    bootstrap: int = 1000
    required: bool = True
    min_rows: int = 100  # fewer rows the champion never trained on: inconclusive


@dataclass(frozen=True)
class LatencyGate:
    """Single-record prediction latency of each model as served (ONNX Runtime or scikit-learn), timed in-process.

    With a champion both are timed alternately and ``max_ratio`` limits candidate p95 / champion
    p95; without one the absolute ``p95_ms`` applies. ``samples`` single-row predicts per model.
    """

    p95_ms: float = 50.0
    max_ratio: float = 1.5
    required: bool = False
    samples: int = 200


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
class LabelDriftGate:
    """The target's distribution in the data against the drift reference's ([drift] decides what drifts)."""

    required: bool = True


@dataclass(frozen=True)
class PredictionDriftGate:
    """The candidate's predictions on the drift reference's rows against those on its held-out rows."""

    required: bool = False


@dataclass(frozen=True)
class ParityGate:
    """The served ONNX model must answer as the scikit-learn model does, on the held-out rows."""

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
    label_drift: LabelDriftGate = field(default_factory=LabelDriftGate)
    prediction_drift: PredictionDriftGate = field(default_factory=PredictionDriftGate)
    parity: ParityGate = field(default_factory=ParityGate)


@dataclass(frozen=True)
class DriftConfig:
    """Reference data and how drift is judged (see ``pipeline/core/drift.py`` for the why of each default).

    ``method``: ``auto`` tests small samples (at most ``test_max_rows`` values on the smaller side:
    KS or chi-squared, Benjamini-Hochberg-adjusted p against ``alpha``) and measures large ones by a
    distance (Wasserstein over the reference's standard deviation, Jensen-Shannon); ``test`` or
    ``distance`` forces one. PSI is reported; with ``psi_limit`` set it also counts.
    """

    reference: str | None = None
    method: Literal["auto", "test", "distance"] = "auto"
    test_max_rows: int = 1000
    alpha: float = 0.05
    wasserstein_limit: float = 0.1
    jensen_shannon_limit: float = 0.1
    psi_limit: float | None = None
    bins: int = 10
    max_drifted_features: int = 0
    max_unseen_share: float = 0.01  # rows with categories the reference never had


@dataclass(frozen=True)
class SlicesConfig:
    """Columns whose values define slices for per-slice metrics."""

    columns: tuple[str, ...] = ()
    min_rows: int = 30


@dataclass(frozen=True)
class ServingConfig:
    """How the model is served: compiled to ONNX when it converts and answers alike, and range limits.

    ``parity_limit`` bounds the largest difference between ONNX Runtime and scikit-learn on the
    held-out rows: of a class probability, or of a regressor's prediction relative to the scale
    of its predictions. ``out_of_range``: ``count`` serves a value outside the schema's range or
    allowed values and counts it per feature in ``/metrics``; ``reject`` answers 422.
    """

    onnx: bool = True
    parity_limit: float = 1e-5
    out_of_range: OutOfRange = "count"


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
    serving: ServingConfig = field(default_factory=ServingConfig)
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
    ("schema.max_dominant_fraction", lambda v: 0 < v <= 1, "a number in (0, 1]"),
    ("schema.max_conflicting_fraction", lambda v: 0 <= v <= 1, "a number between 0 and 1"),
    ("schema.leakage_limit", lambda v: 0.5 < v <= 1, "a number in (0.5, 1]"),
    ("schema.leakage_rows", lambda v: v >= 100, "an integer >= 100"),
    ("gates.champion.tolerance", lambda v: v >= 0, "a number >= 0"),
    ("gates.champion.confidence", lambda v: 0 < v < 1, "a number between 0 and 1"),
    ("gates.champion.bootstrap", lambda v: v >= 100, "an integer >= 100"),
    ("gates.champion.min_rows", lambda v: v >= 1, "an integer >= 1"),
    ("gates.latency.samples", lambda v: v >= 1, "an integer >= 1"),
    ("gates.latency.max_ratio", lambda v: v > 0, "a number > 0"),
    ("drift.max_unseen_share", lambda v: 0 <= v <= 1, "a number between 0 and 1"),
    ("drift.bins", lambda v: v >= 2, "an integer >= 2"),
    ("drift.psi_limit", lambda v: v is None or v > 0, "a number > 0"),
    ("drift.alpha", lambda v: 0 < v < 1, "a number between 0 and 1"),
    ("drift.test_max_rows", lambda v: v >= 1, "an integer >= 1"),
    ("drift.wasserstein_limit", lambda v: v > 0, "a number > 0"),
    ("drift.jensen_shannon_limit", lambda v: 0 < v <= 1, "a number in (0, 1]"),
    ("slices.min_rows", lambda v: v >= 1, "an integer >= 1"),
    ("serving.parity_limit", lambda v: 0 < v < 1, "a number between 0 and 1"),
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
    config = decode(Config, raw, origin, error=ConfigError)
    for key, ok, expected in _RULES:
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        if not ok(value):
            raise ConfigError(f"{origin}: {key} must be {expected}, got {value!r}")
    _check_metrics(config, origin)
    return config


def _check_metrics(config: Config, origin: str) -> None:
    """Every metric the gates name must be a metric of the task, with the table's direction."""
    task = config.data.task
    named: list[tuple[str, str | None]] = [
        (f"gates.metric[{i}].metric", gate.metric) for i, gate in enumerate(config.gates.metric)
    ]
    named += [("gates.champion.metric", config.gates.champion.metric)]
    named += [("gates.slices.metric", config.gates.slices.metric)]
    for key, name in named:
        if name is None:
            continue
        try:
            lookup(name, task)
        except ValueError as exc:
            raise ConfigError(f"{origin}: {key}: {exc}") from None
    for i, gate in enumerate(config.gates.metric):
        expected = lookup(gate.metric, task).direction
        if gate.direction is not None and gate.direction != expected:
            raise ConfigError(
                f"{origin}: gates.metric[{i}].direction is {gate.direction!r}, but {gate.metric} is "
                f"{expected}-is-better; leave direction out"
            )


def _column_entry(origin: str, name: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ConfigError(f"{origin}: schema.columns.{name} must be a table, got {spec!r}")
    if "name" in spec:
        raise ConfigError(f"{origin}: schema.columns.{name}: unknown key 'name' (the table key is the name)")
    return {"name": name, **spec}

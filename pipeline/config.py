"""The one knob file, ``ml-cicd.toml``, decoded by pydantic into frozen, strict dataclasses.

Unknown keys, wrong types, NaN and infinities, and values out of range are errors of one line naming
the file and the dotted key (``model/codec.py`` writes them): ``ml-cicd.toml:
training.sample_rows must be an integer >= 0 and <= 1,000,000,000 (0 means all rows), got -5``.
Booleans are never numbers, an integer is a number; every count that sizes work has an upper bound
(``MAX_*``, ``WORK_PARAMS``); types and bounds hold for classes built in code too. Gate metrics come
from the metric table (``pipeline/core/metrics.py``), which gives their direction. Relative paths
resolve against the working directory (the repo root, on the host and in the step containers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, MinLen
from pydantic import Field, ValidationError
from pydantic.dataclasses import dataclass

from model.codec import shown, validation_line
from model.records import ColumnType, OutOfRange, Task
from model.settings import DEFAULT_THREADS
from pipeline.config_gates import GatesConfig
from pipeline.config_types import (
    MAX_BINS,
    MAX_FEATURES,
    MAX_LEAKAGE_ROWS,
    MAX_ROWS,
    MAX_SEED,
    MAX_TEST_ROWS,
    MAX_THREADS,
    MODEL_SETTINGS,
    Flag,
    Fraction,
    Name,
    Number,
    Positive,
    Rows,
    Share,
    StrictLabel,
    StrictScalar,
    Text,
    Whole,
)
from pipeline.core.metrics import lookup
from pipeline.errors import ConfigError

DEFAULT_CONFIG = (
    "ml-cicd.toml"  # at the project's root: relative paths in it, out/ and the cache are beside it
)

# Estimator parameters that size a fit (scikit-learn checks the rest): a forest settles after a few hundred
# trees (5,000 train in 40 s on 400 rows); unconverged after 10,000 iterations needs other settings.
WORK_PARAMS: dict[str, int] = {"n_estimators": 5_000, "max_iter": 10_000}


@dataclass(frozen=True, config=MODEL_SETTINGS)
class DataConfig:
    """Where the table is and what to learn from it."""

    path: Name
    target: Name
    task: Task = "classification"
    format: Literal["csv", "parquet"] | None = None
    positive_label: StrictLabel | None = None
    id_columns: tuple[Name, ...] = ()


@dataclass(frozen=True, config=MODEL_SETTINGS)
class ColumnSchema:
    """Expectations for one column of the table (``min`` at most ``max``)."""

    name: Name
    type: ColumnType
    min: Number | None = None
    max: Number | None = None
    allowed: Annotated[tuple[StrictScalar, ...], MinLen(1)] | None = None
    nullable: Flag = True
    max_null_fraction: Fraction = 1.0

    @property
    def null_limit(self) -> float:
        """Return the largest allowed fraction of nulls (0 when not nullable)."""
        return self.max_null_fraction if self.nullable else 0.0


@dataclass(frozen=True, config=MODEL_SETTINGS)
class SchemaConfig:
    """Column expectations plus table-level checks."""

    columns: tuple[ColumnSchema, ...] = ()
    min_rows: Rows = 50
    allow_unexpected_columns: Flag = False
    max_duplicate_fraction: Fraction = 0.05
    min_class_fraction: Fraction = 0.01
    labels: Annotated[tuple[StrictLabel, ...], MinLen(1)] | None = None  # distinct
    # Integrity and leakage (pipeline/core/integrity.py); ``skip_checks`` turns any check off by name.
    max_dominant_fraction: Annotated[Positive, Le(1)] = 0.999  # one value over this share: near-constant
    # Identical features, another label (classification): no clean split half of any table measured had
    # any; 0.5% planted is caught (bench/bench_defaults.py).
    max_conflicting_fraction: Fraction = 0.002
    leakage_limit: Annotated[Number, Gt(0.5), Le(1)] = 0.99  # one feature's ROC AUC (regression: R²) flagged
    leakage_rows: Annotated[Whole, Ge(100), Le(MAX_LEAKAGE_ROWS)] = 10_000  # sampled for the leakage scores
    skip_checks: tuple[Name, ...] = ()

    def column(self, name: str) -> ColumnSchema | None:
        """Return the schema of ``name``, or None when it has none."""
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True, config=MODEL_SETTINGS)
class ModelConfig:
    """Estimator kind and its parameters, passed to the estimator (which validates them).

    ``kinds`` holds parameters per kind (``[model.kinds.random_forest]``, ...), so that changing
    ``kind`` is one edit; ``params`` are the chosen kind's parameters when they are not in ``kinds``.
    ``factory`` (``"path/file.py:function"`` or ``"package.module:function"``) replaces ``kind``: the
    team's function returns the estimator and gets ``params`` (``pipeline/core/factory.py``).
    """

    kind: Name = "hist_gradient_boosting"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    kinds: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    factory: Name | None = None

    @property
    def name(self) -> str:
        """Return what the artefact records as its kind: ``kind``, or ``factory`` for the team's estimator."""
        return "factory" if self.factory is not None else self.kind

    @property
    def chosen_params(self) -> dict[str, Any]:
        """Return the parameters of ``kind``: its table in ``kinds``, else ``params``."""
        return dict(self.kinds.get(self.name, self.params))

    @property
    def params_key(self) -> str:
        """Return the dotted key the chosen parameters come from (for messages)."""
        return f"model.kinds.{self.name}" if self.name in self.kinds else "model.params"


@dataclass(frozen=True, config=MODEL_SETTINGS)
class TrainingConfig:
    """How much data quick CI training uses and how it is split."""

    sample_rows: Annotated[Whole, Ge(0), Le(MAX_ROWS), Field(description="0 means all rows")] = 2000
    test_fraction: Share = 0.25  # share of rows held out, by a salted hash of each row's key
    seed: Annotated[Whole, Ge(0), Le(MAX_SEED)] = 42
    stratify: Flag = True  # stratify the training sample by the target (classification)
    split_salt: Text = "ml-cicd"  # change it to draw a different held-out side


@dataclass(frozen=True, config=MODEL_SETTINGS)
class DriftConfig:
    """Reference data and how drift is judged (see ``pipeline/core/drift.py`` for the why of each default).

    ``method``: ``auto`` tests small samples (at most ``test_max_rows`` values on the smaller side:
    KS or chi-squared, Benjamini-Hochberg-adjusted p against ``alpha``) and measures large ones by a
    distance (Wasserstein over the reference's standard deviation, Jensen-Shannon); ``test`` or
    ``distance`` forces one. PSI is reported; with ``psi_limit`` set it also counts.
    """

    reference: Name | None = None
    method: Literal["auto", "test", "distance"] = "auto"
    test_max_rows: Annotated[Whole, Ge(1), Le(MAX_TEST_ROWS)] = 1000
    # At 0.05 the tests called drift in 5% to 25% of the split halves of unchanged small tables; at
    # 0.01 in at most one of 20 per table (bench/bench_defaults.py).
    alpha: Share = 0.01
    wasserstein_limit: Positive = 0.1
    jensen_shannon_limit: Annotated[Positive, Le(1)] = 0.1
    # The label's own, lower limit: a 10-point move of a 26.5% class at 25,000 rows a side measured
    # 0.088-0.10 (the features' 0.1 lets it through), unchanged halves 0.0002-0.0072.
    label_jensen_shannon_limit: Annotated[Positive, Le(1)] = 0.05
    psi_limit: Positive | None = None
    bins: Annotated[Whole, Ge(2), Le(MAX_BINS)] = 10
    max_drifted_features: Annotated[Whole, Ge(0), Le(MAX_FEATURES)] = 0
    max_unseen_share: Fraction = 0.01  # rows with categories the reference never had


@dataclass(frozen=True, config=MODEL_SETTINGS)
class SlicesConfig:
    """Columns whose values define slices for per-slice metrics."""

    columns: tuple[Name, ...] = ()
    min_rows: Rows = 30


@dataclass(frozen=True, config=MODEL_SETTINGS)
class ServingConfig:
    """How the model is served: compiled to ONNX when it converts and answers alike, and range limits.

    ``parity_limit`` bounds the largest difference between ONNX Runtime and scikit-learn on the
    held-out rows: of a class probability, or of a regressor's prediction relative to the scale
    of its predictions. ``out_of_range``: ``count`` serves a value outside the schema's range or
    allowed values and counts it per feature in ``/metrics``; ``reject`` answers 422.
    ``threads``: how many threads the model's native runtime (ONNX Runtime; scikit-learn's OpenMP
    and BLAS) may use for a prediction wherever the gate scores and times it, as the server's
    ``MODEL_THREADS`` (same default, ``model/settings.py``) caps each worker; set both alike.
    Training is not capped.
    """

    onnx: Flag = True
    parity_limit: Share = 1e-5
    out_of_range: OutOfRange = "count"
    threads: Annotated[Whole, Ge(1), Le(MAX_THREADS)] = DEFAULT_THREADS
    image_repository: Name = "ml-cicd-model"  # the serving image's name, e.g. ghcr.io/acme/churn
    image_tag: Text = ""  # empty: the model's sha256[:12] (the flavour appended when forced)


Command = Annotated[tuple[Name, ...], MinLen(1)]  # an argv: the program, then its arguments


@dataclass(frozen=True, config=MODEL_SETTINGS)
class ChecksConfig:
    """The team's own checks, the ``lint`` and ``test`` steps: commands run in the project's root.

    Unset: ``lint`` runs ruff (check and format --check) when the project configures ruff, ``test``
    runs ``python -m pytest -q`` when it has a ``tests/`` directory; ``[]`` runs nothing. A step with
    nothing to run says so and passes.
    """

    lint: tuple[Command, ...] | None = None
    test: tuple[Command, ...] | None = None


@dataclass(frozen=True, config=MODEL_SETTINGS)
class RegistryConfig:
    """Where the embedded directory registry lives."""

    path: Name = "registry"


@dataclass(frozen=True, config=MODEL_SETTINGS)
class Config:
    """The whole pipeline configuration."""

    data: DataConfig
    schema: SchemaConfig = dataclasses.field(default_factory=SchemaConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    gates: GatesConfig = dataclasses.field(default_factory=GatesConfig)
    drift: DriftConfig = dataclasses.field(default_factory=DriftConfig)
    slices: SlicesConfig = dataclasses.field(default_factory=SlicesConfig)
    registry: RegistryConfig = dataclasses.field(default_factory=RegistryConfig)
    serving: ServingConfig = dataclasses.field(default_factory=ServingConfig)
    checks: ChecksConfig = dataclasses.field(default_factory=ChecksConfig)
    description: Text = ""

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
    return relative_to(parse_config(raw, origin=str(path)), path.parent)


def relative_to(config: Config, root: Path) -> Config:
    """Return ``config`` with its relative paths (data, drift reference, registry) made relative to ``root``.

    ``root`` is the config file's directory: a config names its files from where it is, whatever
    directory a command starts in.
    """

    def placed(value: str) -> str:
        return value if Path(value).is_absolute() else os.path.normpath(root / value)

    reference = config.drift.reference
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, path=placed(config.data.path)),
        drift=dataclasses.replace(config.drift, reference=None if reference is None else placed(reference)),
        registry=dataclasses.replace(config.registry, path=placed(config.registry.path)),
    )


def project_root(config_path: str | Path) -> Path:
    """Return the project's root: the config file's directory (out/, the cache and relative paths live there)."""
    return Path(config_path).parent


def parse_config(raw: dict[str, Any], origin: str = "config") -> Config:
    """Build a :class:`Config` from parsed TOML; raise :class:`ConfigError` naming the first bad key."""
    if "data" not in raw:
        raise ConfigError(f"{origin}: missing required section [data]")
    schema = raw.get("schema")
    if isinstance(schema, dict) and "columns" in schema:  # no [schema]: defaults; not a table: pydantic says
        broken = _broken_columns(schema["columns"])
        if broken:
            raise ConfigError(f"{origin}: {broken}")
        columns = [{"name": name, **spec} for name, spec in schema["columns"].items()]
        raw = {**raw, "schema": {**schema, "columns": columns}}
    model = raw.get("model")
    if isinstance(model, dict) and "factory" in model and ("kind" in model or "kinds" in model):
        key = "model.kind" if "kind" in model else "model.kinds"
        raise ConfigError(
            f"{origin}: {key} and model.factory both say which estimator to fit: keep one "
            "(the factory's parameters go in [model.params])"
        )
    try:
        config = Config(**raw)
    except ValidationError as exc:
        raise ConfigError(validation_line(exc.errors()[0], Config, raw, origin)) from None
    broken = _broken_rule(config)
    if broken:
        raise ConfigError(f"{origin}: {broken}")
    return config


def _broken_columns(columns: Any) -> str | None:
    """Return what is wrong with the ``[schema.columns.NAME]`` tables before they become a list (None: nothing)."""
    if not isinstance(columns, dict):
        return f"schema.columns must be a table of column tables, got {shown(columns)}"
    for name, spec in columns.items():
        if not name:
            return "schema.columns has a column with an empty name"
        if not isinstance(spec, dict):
            return f"schema.columns.{name} must be a table, got {shown(spec)}"
        if "name" in spec:
            return f"schema.columns.{name}: unknown key 'name' (the table key is the name)"
    return None


def _broken_rule(config: Config) -> str | None:
    """Return the first rule across keys ``config`` breaks, naming the key; None when it keeps them all."""
    task, gates = config.data.task, config.gates  # gate metrics: the task's, in the table's direction
    names: dict[str, str | None] = {f"gates.metric[{i}].metric": m.metric for i, m in enumerate(gates.metric)}
    names |= {"gates.champion.metric": gates.champion.metric, "gates.slices.metric": gates.slices.metric}
    for key, name in names.items():
        try:
            if name is not None:
                lookup(name, task)
        except ValueError as exc:
            return f"{key}: {exc}"
    for i, gate in enumerate(gates.metric):
        expected = lookup(gate.metric, task).direction
        if gate.direction is not None and gate.direction != expected:
            return f"gates.metric[{i}].direction is {gate.direction!r}, but {gate.metric} is {expected}-is-better; leave direction out"
    data, labels, floor = config.data, config.schema.labels, config.gates.slices
    for c in config.schema.columns:
        if c.min is not None and c.max is not None and c.max < c.min:
            return f"schema.columns.{c.name}.max must be a number >= min ({c.min:g}), got {c.max:g}"
    if data.target in data.id_columns:
        return f"data.id_columns must not name the target '{data.target}', got {list(data.id_columns)!r}"
    if labels is not None and len(set(labels)) < len(labels):
        return f"schema.labels must be a non-empty list of distinct labels, got {list(labels)!r}"
    if data.positive_label is not None and labels is not None and data.positive_label not in labels:
        listed = ", ".join(map(repr, labels))  # compared as training compares them (1 == True)
        return f"data.positive_label {data.positive_label!r} is not one of schema.labels ({listed})"
    if (floor.metric is None) != (floor.min is None):  # one without the other would skip the gate
        missing = "gates.slices." + ("min" if floor.min is None else "metric")
        return f"missing required key '{missing}' (a slice floor needs both metric and min, or neither)"
    model = config.model
    if model.params and model.kind in model.kinds:
        return f"model.params and model.kinds.{model.kind} both give parameters for kind {model.kind!r}: keep one"
    tables = {"model.params": model.params} | {f"model.kinds.{k}": v for k, v in model.kinds.items()}
    for key, params in tables.items():
        for name, high in WORK_PARAMS.items():
            value = params.get(name)
            if isinstance(value, int) and (isinstance(value, bool) or not 1 <= value <= high):
                return (
                    f"{key}.{name} must be an integer >= 1 and <= {high:,} (it sizes the fit), got {value!r}"
                )
    return None

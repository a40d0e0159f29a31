"""The shape of every JSON file ml-cicd writes: one frozen dataclass per file, and the one verdict type.

Each file's record has its file name (``FILE``) and ``SCHEMA_VERSION``; ``model/codec.py``
reads and writes them strictly. This module lives in ``model/`` (the bottom layer, shipped in
the serving image) because the server reads the model's files too; it imports nothing heavy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

T = TypeVar("T")
Label = str | int | bool
Scalar = str | int | float | bool
Task = Literal["classification", "regression"]
ColumnType = Literal["numeric", "categorical", "boolean"]


class Status(enum.StrEnum):
    """The verdict of one check, gate or smoke test.

    ``inconclusive``: it ran but the evidence cannot decide (too few rows, too wide an interval);
    ``error``: it could not measure what it checks. Neither is ever a pass.
    """

    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    SKIPPED = "skipped"
    ERROR = "error"

    @property
    def decides_against(self) -> bool:
        """Return True for the statuses a required check fails the run with."""
        return self in (Status.FAILED, Status.INCONCLUSIVE, Status.ERROR)


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
        """Return True when this result is required and did not pass (failed, inconclusive, error)."""
        return self.required and self.status.decides_against


class Record:
    """A file's record: ``FILE`` is its name, ``SCHEMA_VERSION`` the version its JSON carries."""

    FILE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1


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
class SplitRule:
    """Which rows a model held out: a row is held out when the salted hash of its key is below ``fraction``.

    ``key`` is the id columns, or every feature when there are none; the side of a row depends on
    nothing else (not the seed, not the sample), so any later model can tell which rows this one saw.
    """

    key: tuple[str, ...]
    salt: str
    fraction: float


@dataclass(frozen=True)
class ModelMetadata(Record):
    """``metadata.json`` beside the model file; the last four fields are filled in by ``save_artifact``."""

    FILE: ClassVar[str] = "metadata.json"
    run: str
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
    split: SplitRule
    validated: bool  # False: trained with --no-validate
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
class Lineage(Record):
    """``lineage.json`` of a registry version: where the model came from and who registered it."""

    FILE: ClassVar[str] = "lineage.json"
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
    """In-process single-row latency, timed in the gate step (varies from run to run)."""

    candidate_p50_ms: float
    candidate_p95_ms: float
    champion_p50_ms: float | None  # timed alternately with the candidate, in the same process
    champion_p95_ms: float | None
    ratio: float | None  # candidate p95 / champion p95
    samples: int
    measured_at: str


@dataclass(frozen=True)
class Confusion:
    """A confusion matrix: rows are true labels, columns predicted ones."""

    labels: tuple[Label, ...]
    matrix: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Metrics(Record):
    """``metrics.json`` from ``evaluate``."""

    FILE: ClassVar[str] = "metrics.json"
    run: str
    task: Task
    model_sha256: str
    rows: int
    overall: dict[str, float | None]
    per_class: dict[str, dict[str, int | float]] | None
    confusion_matrix: Confusion | None
    slices: dict[str, dict[str, dict[str, Any]]]
    prediction_distribution: dict[str, float]


@dataclass(frozen=True)
class Comparison:
    """Candidate versus champion on the same held-out rows, with the paired-bootstrap interval."""

    metric: str
    candidate: dict[str, float | None]
    champion: dict[str, float | None]
    delta: float | None  # positive: the candidate is better
    ci_low: float | None
    ci_high: float | None
    resamples: int
    confidence: float
    rows: int


@dataclass(frozen=True)
class Champion(Comparison):
    """The comparison as ``gates.json`` keeps it: which champion, which rows, the tolerance it was judged by.

    ``rows`` are the candidate's held-out rows the champion never trained on (by its own split
    rule); ``excluded`` are held-out rows the champion did train on, left out of the comparison.
    """

    path: str
    version: int | None
    model_sha256: str
    tolerance: float
    excluded: int


@dataclass(frozen=True)
class Gates(Record):
    """``gates.json`` from ``gate``."""

    FILE: ClassVar[str] = "gates.json"
    run: str
    model_sha256: str
    passed: bool
    gates: tuple[Result, ...]
    champion: Champion | None
    latency: Latency | None

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
class Validation(Record):
    """``validation.json`` from ``validate``."""

    FILE: ClassVar[str] = "validation.json"
    run: str
    data_sha256: str
    passed: bool
    rows: int
    columns: int
    checks: tuple[CheckSummary, ...]
    failures: tuple[Failure, ...]


@dataclass(frozen=True)
class FeatureDrift:
    """Drift measures of one feature; ``unseen`` are categories the reference never had, with their share."""

    feature: str
    kind: str
    psi: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    unseen: dict[str, float]
    drifted: bool


@dataclass(frozen=True)
class DriftLimits:
    """The limits a drift report was judged by."""

    psi_limit: float
    ks_statistic_limit: float
    ks_pvalue_limit: float
    max_drifted_features: int
    max_unseen_share: float
    bins: int


@dataclass(frozen=True)
class Drift(Record):
    """``drift.json`` from ``validate`` or ``drift``."""

    FILE: ClassVar[str] = "drift.json"
    run: str
    data_sha256: str
    reference: str
    source: Literal["csv", "profile"]
    status: Status  # error: not every feature could be compared (``missing``)
    features: tuple[FeatureDrift, ...]
    drifted: tuple[str, ...]
    missing: tuple[str, ...]
    passed: bool
    limits: DriftLimits


@dataclass(frozen=True)
class Smoke(Record):
    """``smoke.json`` from ``smoke``."""

    FILE: ClassVar[str] = "smoke.json"
    run: str
    url: str
    passed: bool
    model_sha256: str
    rows: int
    checks: tuple[Result, ...]


@dataclass(frozen=True)
class Image(Record):
    """``image.json`` from ``image build``."""

    FILE: ClassVar[str] = "image.json"
    run: str
    tag: str
    id: str
    size_bytes: int
    base_image: str
    model_sha256: str
    build_seconds: float


StepStatus = Literal["running", "ok", "cached", "failed", "skipped"]


@dataclass(frozen=True)
class StepOutcome:
    """How one step of a host run ended: ok, cached, failed or skipped, and why."""

    name: str
    status: StepStatus
    code: int
    seconds: float
    note: str  # why it was skipped; the failing command's last error line


@dataclass(frozen=True)
class Run(Record):
    """``run.json`` from the host runner: which run this is and how each step has ended so far."""

    FILE: ClassVar[str] = "run.json"
    run: str
    started_at: str
    steps: tuple[StepOutcome, ...]

    def step(self, name: str) -> StepOutcome | None:
        """Return the outcome of step ``name``, or None when it has not started."""
        return next((s for s in self.steps if s.name == name), None)

"""The shape of the model's own files (metadata, lineage, metrics) and the one verdict type.

Each file's record has its file name (``FILE``) and ``SCHEMA_VERSION``; ``model/codec.py``
reads and writes them strictly. This module lives in ``model/`` (the bottom layer, shipped in
the serving image) because the server reads these files; it imports nothing heavy. The
pipeline's step files (gates, validation, drift, smoke, image, run) are in ``pipeline/records.py``.
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
    """A file's record: ``FILE`` is its name, ``SCHEMA_VERSION`` the version its JSON carries.

    ``OLDER_VERSIONS`` maps an older version still read to the keys added since (optional fields,
    None when read from such a file), so a model registered before an upgrade stays readable.
    """

    FILE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1
    OLDER_VERSIONS: ClassVar[dict[int, tuple[str, ...]]] = {}


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


OutOfRange = Literal["count", "reject"]


@dataclass(frozen=True)
class Parity:
    """ONNX Runtime against scikit-learn on the same held-out rows, fed as the server feeds them.

    ``what`` is ``probability`` (classifiers: the largest difference of any class probability,
    and labels must be identical) or ``prediction`` (regressors). ``limit`` is absolute: for a
    regressor it is the configured limit times the scale of the predictions (at least 1).
    """

    rows: int
    what: Literal["probability", "prediction"]
    label_flips: int | None
    max_abs_diff: float
    limit: float

    @property
    def holds(self) -> bool:
        """Return True when no label differs and the largest difference is within the limit."""
        return not self.label_flips and self.max_abs_diff <= self.limit


@dataclass(frozen=True)
class Compiled:
    """The model's ONNX form as training left it; ``file`` is set only when it is served.

    ``status``: passed (converted, parity held), failed (parity did not hold), error (it did not
    convert), skipped (``serving.onnx = false``). Anything but passed means scikit-learn serves,
    and ``message`` says why.
    """

    status: Status
    file: str | None
    sha256: str | None
    onnxruntime_version: str | None
    parity: Parity | None
    message: str


@dataclass(frozen=True)
class Baseline:
    """The dummy model, fitted by ``train`` on the candidate's own training rows (``pipeline/core/floors.py``).

    scikit-learn's ``DummyClassifier(strategy="prior")``: ``prior`` is the rows' class shares in
    label order (it predicts the commonest class, with those shares as probabilities: ROC AUC 0.5),
    or ``DummyRegressor(strategy="mean")``: ``mean`` is the rows' target mean. ``rows``: how many.
    """

    strategy: Literal["prior", "mean"]
    rows: int
    prior: tuple[float, ...] | None
    mean: float | None


@dataclass(frozen=True)
class CodeFile:
    """One file of the team's code a model needs: its path under the project's root, and its sha256."""

    path: str
    sha256: str


@dataclass(frozen=True)
class Needs:
    """What loading the pickled model needs besides ml-cicd's ``model/`` (``pipeline/steps/needs.py``).

    ``factory``: the ``[model] factory`` that built it (None: a kind of ml-cicd's); ``modules`` and
    ``files``: the team's modules it imports and their files, as training read them; ``libraries``:
    the installed distributions its classes and the team's code import, with their versions.
    """

    factory: str | None
    modules: tuple[str, ...]
    files: tuple[CodeFile, ...]
    libraries: dict[str, str]


@dataclass(frozen=True)
class ModelMetadata(Record):
    """``metadata.json`` beside the model file; ``save_artifact`` fills in the model file, its sha256 and versions.

    ``compiled`` is the ONNX form (None: not attempted, e.g. an artefact made by hand);
    ``out_of_range`` is what the server does with a value outside the schema's limits;
    ``baseline`` the dummy model of the same training rows (None: an artefact made by hand);
    ``needs`` the code and libraries loading it takes.
    """

    FILE: ClassVar[str] = "metadata.json"
    SCHEMA_VERSION: ClassVar[int] = 4
    OLDER_VERSIONS: ClassVar[dict[int, tuple[str, ...]]] = {2: ("baseline", "needs"), 3: ("needs",)}
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
    compiled: Compiled | None
    out_of_range: OutOfRange
    baseline: Baseline | None = None
    model_file: str = ""
    model_sha256: str = ""
    sklearn_version: str = ""
    python_version: str = ""
    needs: Needs | None = None  # None: an artefact made before ml-cicd recorded it, or by hand

    @property
    def estimator(self) -> str:
        """Return the kind as reports show it: a factory's names its function."""
        factory = self.needs.factory if self.needs is not None else None
        return f"{self.kind} {factory}" if factory else self.kind

    @property
    def feature_names(self) -> list[str]:
        """Return the feature names in training order."""
        return [f.name for f in self.features]

    @property
    def label_list(self) -> list[Label]:
        """Return the class labels (empty for a regressor)."""
        return list(self.labels or ())


@dataclass(frozen=True)
class Signature(Record):
    """``signature.json`` of an artefact: each file's sha256, authenticated with a key kept elsewhere.

    ``mac`` is HMAC-SHA256 over ``key_id`` and ``files`` (``model/signing.py``); ``key_id`` is the
    first 16 hex digits of the key's own sha256, so a mismatch can say which key signed it.
    """

    FILE: ClassVar[str] = "signature.json"
    key_id: str
    files: dict[str, str]
    mac: str


@dataclass(frozen=True)
class GateRecord:
    """The gate outcome a registered version carries (from its ``gates.json``, of that very model)."""

    passed: bool
    file: str
    model_sha256: str  # the model gates.json judged: register and promote refuse any other
    results: tuple[Result, ...]


@dataclass(frozen=True)
class Lineage(Record):
    """``lineage.json`` of a registry version: where the model came from and who registered it."""

    FILE: ClassVar[str] = "lineage.json"
    SCHEMA_VERSION: ClassVar[int] = 2
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
# The evaluation the server reports with the model (metrics.json; other step files: pipeline/records.py).


@dataclass(frozen=True)
class Confusion:
    """A confusion matrix: rows are true labels, columns predicted ones."""

    labels: tuple[Label, ...]
    matrix: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class BaselineMetrics:
    """The model's :class:`Baseline` scored on the same rows, by the same metric functions, as the model."""

    fitted: Baseline
    overall: dict[str, float | None]


@dataclass(frozen=True)
class Metrics(Record):
    """``metrics.json`` from ``evaluate``; ``baseline`` is None when the model's metadata records none."""

    FILE: ClassVar[str] = "metrics.json"
    SCHEMA_VERSION: ClassVar[int] = 2
    OLDER_VERSIONS: ClassVar[dict[int, tuple[str, ...]]] = {1: ("baseline",)}
    run: str
    task: Task
    model_sha256: str
    rows: int
    overall: dict[str, float | None]
    per_class: dict[str, dict[str, int | float]] | None
    confusion_matrix: Confusion | None
    slices: dict[str, dict[str, dict[str, Any]]]
    prediction_distribution: dict[str, float]
    baseline: BaselineMetrics | None = None

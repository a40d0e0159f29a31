"""The shape of the pipeline's step files in the out directory: one frozen dataclass per file.

``gates.json``, ``validation.json``, ``drift.json``, ``smoke.json``, ``image.json`` and
``run.json``; ``model/codec.py`` reads and writes them strictly, as it does the model's own files
(``model/records.py``, which also holds the verdict types they use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from model.records import Record, Result, Status


@dataclass(frozen=True)
class Latency:
    """In-process single-record latency of each model as it is served (its runtime), timed in the gate step.

    Varies from run to run; the ratio of two models timed alternately, with its 95% interval (a
    bootstrap of the paired samples, ``pipeline/core/latency.py``), is what the gate judges.
    """

    candidate_runtime: str  # onnx or sklearn: what the server would run
    champion_runtime: str | None
    candidate_p50_ms: float
    candidate_p95_ms: float
    champion_p50_ms: float | None  # timed alternately with the candidate, in the same process
    champion_p95_ms: float | None
    ratio: float | None  # candidate p95 / champion p95
    samples: int
    measured_at: str
    ratio_low: float | None = None  # the ratio's 95% interval (None: no champion timed)
    ratio_high: float | None = None


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
    ``tolerance`` is in the metric's units (``relative_tolerance`` of the champion's value, when
    the config states it so); ``detectable`` is the smallest difference these rows resolve: half
    the interval's width.
    """

    path: str
    version: int | None
    model_sha256: str
    tolerance: float | None  # None: relative, and the champion's value is undefined
    excluded: int
    relative_tolerance: float | None
    detectable: float | None


@dataclass(frozen=True)
class ReliabilityBin:
    """One probability bin of a reliability curve: its range, rows, mean stated probability, rate it came true."""

    low: float
    high: float
    rows: int
    predicted: float
    observed: float


@dataclass(frozen=True)
class Calibration:
    """Both models' reliability curves on the rows the champion gate compared (``pipeline/core/calibration.py``)."""

    candidate: tuple[ReliabilityBin, ...]
    champion: tuple[ReliabilityBin, ...]


@dataclass(frozen=True)
class Gates(Record):
    """``gates.json`` from ``gate``.

    ``passed`` is the check's verdict (``gate`` exits by it): under ``inconclusive_rule`` "warn"
    an inconclusive no-regression passes it with a warning. ``publishable`` is stricter: every
    required gate passed (or was skipped), none inconclusive; registering as staging, promoting and
    retrain's publish need it (``pipeline/core/gates.py`` decides both).
    """

    FILE: ClassVar[str] = "gates.json"
    SCHEMA_VERSION: ClassVar[int] = 3
    OLDER_VERSIONS: ClassVar[dict[int, tuple[str, ...]]] = {2: ("calibration",)}
    run: str
    model_sha256: str
    passed: bool
    gates: tuple[Result, ...]
    champion: Champion | None
    latency: Latency | None
    publishable: bool = False  # `gate` always writes it; the default is the safe side
    inconclusive_rule: Literal["warn", "fail"] = "fail"  # gates.champion.inconclusive, as applied
    calibration: Calibration | None = None  # a classifier compared with a champion

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
    """One column's drift: the statistic its type and sample size call for, against its limit.

    ``method``: ``ks`` or ``chi2`` (tests: ``p_adjusted`` is compared with ``limit``, alpha) or
    ``wasserstein`` (normalised by the reference's standard deviation) or ``jensen_shannon``
    (distances: ``statistic`` is compared with ``limit``). PSI is reported for every column;
    ``unseen`` are categories the reference never had, with their share.
    """

    feature: str
    kind: str
    method: Literal["ks", "chi2", "wasserstein", "jensen_shannon"]
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None  # Benjamini-Hochberg across the features tested together
    limit: float
    reference_rows: int
    current_rows: int
    psi: float | None
    unseen: dict[str, float]
    drifted: bool


@dataclass(frozen=True)
class DriftLimits:
    """The settings a drift report was judged by (``[drift]``)."""

    method: str
    test_max_rows: int
    alpha: float
    wasserstein_limit: float
    jensen_shannon_limit: float
    psi_limit: float | None
    max_drifted_features: int
    max_unseen_share: float
    bins: int
    label_jensen_shannon_limit: float | None = None  # None: written before the label had a limit of its own


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
    passed: bool  # the features' verdict; the label and the predictions have gates of their own
    label: FeatureDrift | None  # the target, when both sides have it
    prediction: FeatureDrift | None  # the model's predictions (``drift --model``)
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
    flavour: str  # onnx (lean) or sklearn
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

"""The ``[gates]`` section of the config: one frozen, strict dataclass per gate (``pipeline/core/gates.py`` judges them).

Each gate is reported; required ones decide the exit code. Types and bounds come from
``pipeline/config_types.py``; ``pipeline/config.py`` holds the whole config and checks gate metrics
against the metric table.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from annotated_types import Ge, Le
from pydantic.dataclasses import dataclass

from pipeline.config_types import (
    MAX_BATCH_REQUESTS,
    MAX_BOOTSTRAP,
    MAX_CONCURRENCY,
    MAX_LATENCY_SAMPLES,
    MAX_LOAD_BATCHES,
    MODEL_SETTINGS,
    Flag,
    Fraction,
    Name,
    Number,
    Positive,
    Rows,
    Share,
    Whole,
)
from pipeline.core.metrics import Direction


@dataclass(frozen=True, config=MODEL_SETTINGS)
class MetricGate:
    """A floor on a metric: ``threshold`` (absolute) or ``above_baseline`` (a margin, in the metric's
    units, by which it must beat the dummy baseline on the same rows: ``pipeline/core/floors.py``).

    Exactly one of the two. ``direction`` may be left out: the metric table knows it.
    """

    metric: Name
    threshold: Number | None = None
    above_baseline: Annotated[Number, Ge(0)] | None = None
    direction: Direction | None = None
    required: Flag = True

    def __post_init__(self) -> None:
        if (self.threshold is None) == (self.above_baseline is None):
            got = "neither" if self.threshold is None else "both"
            raise ValueError(
                f"needs exactly one of threshold (a floor) or above_baseline (a margin over the dummy), got {got}"
            )


@dataclass(frozen=True, config=MODEL_SETTINGS)
class ChampionGate:
    """No regression against the champion, judged by a paired bootstrap.

    ``tolerance`` is in the metric's units; ``relative_tolerance``, when set, replaces it with that
    share of the champion's value (0.01: a drop of 1% of it is a tie). ``inconclusive`` is what an
    undecided comparison does to the check: ``warn`` passes it with a warning, ``fail`` fails it.
    Either way an inconclusive candidate is never published (registered as staging, promoted,
    published by retrain): that needs every required gate passed.
    """

    metric: Name | None = None
    tolerance: Annotated[Number, Ge(0)] = 0.01
    relative_tolerance: Fraction | None = None  # a share of the champion's value; replaces tolerance
    confidence: Share = 0.95
    bootstrap: Annotated[Whole, Ge(100), Le(MAX_BOOTSTRAP)] = 1000
    required: Flag = True
    min_rows: Rows = 100  # fewer rows the champion never trained on: inconclusive
    inconclusive: Literal["warn", "fail"] = "warn"  # for the check; publishing always needs passed


@dataclass(frozen=True, config=MODEL_SETTINGS)
class CalibrationGate(ChampionGate):
    """Probabilities that still mean what they say: the candidate's expected calibration error (``ece``,
    or ``brier``) against the champion's on the same rows, judged as ``no_regression`` is (classifiers).

    Advisory by default (``required = false``): reported, and it fails nothing. ``tolerance`` 0.02 is two
    points of ECE (a model whose 70% predictions come true 68% of the time gives about that).
    """

    metric: Name | None = "ece"
    tolerance: Annotated[Number, Ge(0)] = 0.02
    required: Flag = False


@dataclass(frozen=True, config=MODEL_SETTINGS)
class LatencyGate:
    """Single-record latency of each model as served, against the champion's (``pipeline/core/latency.py``).

    ``gate`` times both in-process, ``samples`` predicts each, alternately (``required``); ``smoke
    --champion-url`` drives both servers alternately, ``batches`` of ``requests`` with
    ``concurrency`` in flight (``served_required``). Either fails a candidate only when the ratio's
    95% interval lies above ``max_ratio`` and the difference exceeds ``min_difference_ms``; with no
    champion, ``gate`` applies the absolute ``p95_ms``.
    """

    p95_ms: Positive = 50.0
    max_ratio: Positive = 1.5
    # Smaller differences do not count: one request to a server costs ~1 ms on loopback (~900/s a worker)
    min_difference_ms: Annotated[Number, Ge(0)] = 1.0
    required: Flag = False
    samples: Annotated[Whole, Ge(1), Le(MAX_LATENCY_SAMPLES)] = 200
    concurrency: Annotated[Whole, Ge(1), Le(MAX_CONCURRENCY)] = 8
    batches: Annotated[Whole, Ge(6), Le(MAX_LOAD_BATCHES)] = 10  # a server's timed ones; 6 for a 95% interval
    requests: Annotated[Whole, Ge(20), Le(MAX_BATCH_REQUESTS)] = 50  # a batch's; a p95 needs 20
    served_required: Flag = True  # identical servers pass reliably (measured); a surely slower one fails


@dataclass(frozen=True, config=MODEL_SETTINGS)
class SliceGate:
    """A floor on a metric in every slice with enough rows (``metric`` and ``min`` go together)."""

    metric: Name | None = None
    min: Number | None = None
    required: Flag = False


@dataclass(frozen=True, config=MODEL_SETTINGS)
class CollapseGate:
    """Every class must keep at least this share of the predictions."""

    min_class_fraction: Fraction = 0.01
    required: Flag = True


@dataclass(frozen=True, config=MODEL_SETTINGS)
class DriftGate:
    """Whether drift beyond the drift limits fails the run."""

    required: Flag = True


@dataclass(frozen=True, config=MODEL_SETTINGS)
class LabelDriftGate:
    """The target's distribution in the data against the drift reference's ([drift] decides what drifts)."""

    required: Flag = True


@dataclass(frozen=True, config=MODEL_SETTINGS)
class PredictionDriftGate:
    """The candidate's predictions on the drift reference's rows against those on its held-out rows."""

    required: Flag = False


@dataclass(frozen=True, config=MODEL_SETTINGS)
class ParityGate:
    """The served ONNX model must answer as the scikit-learn model does, on the held-out rows."""

    required: Flag = True


@dataclass(frozen=True, config=MODEL_SETTINGS)
class GatesConfig:
    """All quality gates; each is reported, required ones decide the exit code."""

    metric: tuple[MetricGate, ...] = ()
    champion: ChampionGate = dataclasses.field(default_factory=ChampionGate)
    calibration: CalibrationGate = dataclasses.field(default_factory=CalibrationGate)
    latency: LatencyGate = dataclasses.field(default_factory=LatencyGate)
    slices: SliceGate = dataclasses.field(default_factory=SliceGate)
    collapse: CollapseGate = dataclasses.field(default_factory=CollapseGate)
    drift: DriftGate = dataclasses.field(default_factory=DriftGate)
    label_drift: LabelDriftGate = dataclasses.field(default_factory=LabelDriftGate)
    prediction_drift: PredictionDriftGate = dataclasses.field(default_factory=PredictionDriftGate)
    parity: ParityGate = dataclasses.field(default_factory=ParityGate)

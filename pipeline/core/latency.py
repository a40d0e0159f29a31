"""Latency compared as a ratio with a confidence interval: a candidate fails only when it is surely slower.

Two measurements, one rule. In the gate step the two models are timed in one process, single
records alternately (A, B, A, B): sample ``i`` of each was taken at nearly the same moment, so a
bootstrap that resamples those pairs gives an interval on the ratio of their p95s
(:func:`paired_ratio`). In the smoke step the two servers are driven under load, batch by
batch alternately (``pipeline/io/http.py::drive``): batch ``i`` of each met the same machine, so
the per-batch ratios give a distribution-free interval on their median, between two of their
order statistics (:func:`batch_ratio`): with ten batch pairs, the candidate fails only when it was
slower than the limit in at least nine. A load burst that hits a few batches of one server does
not fail it (a t interval on the logs of six batch ratios reached 1.2 for identical servers on a
loaded machine: one 10x pair moves their mean).

:func:`slower` is the rule for both: the interval's low end is above ``max_ratio`` and the
absolute difference is above ``min_difference_ms``. Identical models straddle 1 and pass; a
slowdown fails only when it is beyond the limit and large enough to matter. Nothing here is
inconclusive: "not shown to be slower" is a pass. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from model.records import Result, Status
from pipeline.config_gates import LatencyGate

CONFIDENCE = 0.95  # two-sided; failing on the low end makes it a 97.5% one-sided test
RESAMPLES = 1000  # bootstrap resamples of the paired in-process samples
SEED = 0  # the bootstrap is seeded: the same timings give the same interval
CHUNK = 1_000_000  # resampled values held at once (10,000 samples: 100 resamples a chunk)
PERCENTILE = 95.0
SERVED = "served_latency"
MIN_BATCHES = 6  # fewer batch pairs cannot give a 95% interval on their median (5: 94%)


@dataclass(frozen=True)
class Ratio:
    """A ratio (candidate / champion) with the ends of its confidence interval, and its confidence."""

    value: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    def shown(self) -> str:
        """Return ``1.02 (95% CI 0.95-1.09)``."""
        return f"{self.value:.2f} ({self.confidence:.0%} CI {self.low:.2f}-{self.high:.2f})"


class Timed(Protocol):
    """One timed batch of requests to one server (``pipeline.io.http.Batch`` is one)."""

    @property
    def latencies_ms(self) -> tuple[float, ...]: ...

    @property
    def seconds(self) -> float: ...

    @property
    def errors(self) -> int: ...

    @property
    def first_error(self) -> str: ...


def p95(values: Sequence[float] | np.ndarray) -> float:
    """Return the 95th percentile of ``values`` (linear interpolation, as NumPy does)."""
    return float(np.percentile(np.asarray(values, dtype=float), PERCENTILE))


def paired_ratio(candidate: np.ndarray, champion: np.ndarray, resamples: int = RESAMPLES) -> Ratio | None:
    """Return p95(candidate) / p95(champion) with a percentile-bootstrap interval over the paired samples.

    ``candidate[i]`` and ``champion[i]`` were timed one after the other, so a resample draws pairs:
    a load spike that slowed both stays in both. None when the champion's p95 is not positive.
    """
    a, b = np.asarray(candidate, dtype=float), np.asarray(champion, dtype=float)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"paired samples of unequal or zero length: {len(a)} and {len(b)}")
    if p95(b) <= 0:
        return None
    rng = np.random.default_rng(SEED)
    step = max(1, CHUNK // len(a))
    ratios: list[np.ndarray] = []
    for start in range(0, resamples, step):
        index = rng.integers(0, len(a), size=(min(step, resamples - start), len(a)))
        top = np.percentile(b[index], PERCENTILE, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(np.percentile(a[index], PERCENTILE, axis=1) / top)
    drawn = np.concatenate(ratios)
    drawn = drawn[np.isfinite(drawn)]
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = (float(v) for v in np.percentile(drawn, [tail, 100 - tail]))
    return Ratio(p95(a) / p95(b), low, high)


def batch_ratio(ratios: Sequence[float]) -> Ratio:
    """Return the median of per-batch ratios with an order-statistic interval of at least 95%.

    The interval is the ``k``-th smallest to the ``k``-th largest ratio, for the largest ``k``
    that still covers the median with probability ``CONFIDENCE`` or more (a binomial count of the
    ratios on either side of it; its exact coverage is returned): with six to eight ratios the
    smallest and the largest, with ten the second of each end. Needs at least ``MIN_BATCHES``.
    """
    values = np.sort(np.asarray(ratios, dtype=float))
    if len(values) < MIN_BATCHES or not (np.isfinite(values) & (values > 0)).all():
        raise ValueError(f"need {MIN_BATCHES} or more positive batch ratios, got {list(ratios)}")
    k, coverage = order_interval(len(values))
    return Ratio(float(np.median(values)), float(values[k - 1]), float(values[-k]), coverage)


def order_interval(n: int) -> tuple[int, float]:
    """Return the largest ``k`` whose order statistics ``k`` and ``n + 1 - k`` cover the median at
    ``CONFIDENCE`` (1 when none does), and their coverage."""
    best = (1, 1 - 2 * 0.5**n)
    for k in range(1, n // 2 + 1):
        coverage = 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n
        if coverage >= CONFIDENCE:
            best = (k, coverage)
    return best


def slower(ratio: Ratio, difference_ms: float, gate: LatencyGate) -> bool:
    """Return True when the candidate is surely slower beyond the limit, by a difference that counts."""
    return ratio.low > gate.max_ratio and difference_ms > gate.min_difference_ms


def reason(
    ratio: Ratio,
    difference_ms: float,
    gate: LatencyGate,
    failed: bool,
    what: str = "difference",
    of: str = "the interval's",
) -> str:
    """Say why a ratio (with its interval) and an absolute difference fail the gate or do not."""
    if failed:
        return (
            f"{of} low end {ratio.low:.2f} > {gate.max_ratio:g} and the {what} "
            f"{difference_ms:.3f} ms > {gate.min_difference_ms:g} ms"
        )
    if ratio.low <= gate.max_ratio:
        return f"not surely slower: {of} low end {ratio.low:.2f} <= {gate.max_ratio:g}"
    return (
        f"{of} interval is above {gate.max_ratio:g}, but the {what} {difference_ms:.3f} ms is within "
        f"the {gate.min_difference_ms:g} ms floor (smaller differences do not count)"
    )


def served_latency(
    gate: LatencyGate,
    candidate: Sequence[Timed],
    champion: Sequence[Timed],
    concurrency: int,
    rows: int,
    champion_url: str,
) -> Result:
    """Judge the candidate server against the champion's, both driven batch by batch alternately.

    Per batch pair, two ratios: p95 latency (candidate / champion) and throughput as a slowdown
    (the champion's answered requests per second / the candidate's). The candidate fails when
    either is surely above ``max_ratio`` (:func:`slower`, on the median's interval): p95 by more
    than ``min_difference_ms``, or throughput by a mean latency that much longer (Little's law:
    with ``concurrency`` requests in flight, mean latency = concurrency / throughput). A failed
    request makes the measurement an error: an answer that is wrong or missing has no latency.
    """
    required = gate.served_required
    problem = _unmeasured(candidate, champion)
    if problem:
        message = f"served latency not measured (champion {champion_url}): {problem}"
        return Result(SERVED, Status.ERROR, required, None, gate.max_ratio, message)
    pairs = list(zip(candidate, champion, strict=True))
    latency = batch_ratio([p95(c.latencies_ms) / p95(h.latencies_ms) for c, h in pairs])
    slowdown = batch_ratio([_rate(h) / _rate(c) for c, h in pairs])
    cand_p95, champ_p95 = _pooled_p95(candidate), _pooled_p95(champion)
    cand_rate, champ_rate = _pooled_rate(candidate), _pooled_rate(champion)
    mean_gap = concurrency * 1000.0 * (1 / cand_rate - 1 / champ_rate)
    judged = [
        ("p95", latency, cand_p95 - champ_p95, "difference", "the interval's"),
        ("throughput", slowdown, mean_gap, "mean latency difference", "the slowdown's"),
    ]
    verdicts = [
        (what, slower(r, gap, gate), reason(r, gap, gate, slower(r, gap, gate), *how))
        for what, r, gap, *how in judged
    ]
    failed = [f"{what}: {why}" for what, bad, why in verdicts if bad]
    throughput = Ratio(1 / slowdown.value, 1 / slowdown.high, 1 / slowdown.low, slowdown.confidence)
    message = (
        f"under load, {concurrency} requests in flight, {len(pairs)} timed batches of "
        f"{len(candidate[0].latencies_ms)} single-record requests a server, alternated, from {rows} held-out "
        f"rows, against the champion at {champion_url}: p95 {cand_p95:.2f} vs {champ_p95:.2f} ms, ratio "
        f"(median of the batch pairs') {latency.shown()}; throughput {cand_rate:.1f} vs {champ_rate:.1f} "
        f"requests/s, ratio {throughput.shown()}, a slowdown of {slowdown.shown()}; "
    )
    if failed:
        message += "slower than the champion: " + "; ".join(failed)
    else:
        message += "; ".join(f"{what}: {why}" for what, _, why in verdicts)
    message += f" (limit {gate.max_ratio:g}, floor {gate.min_difference_ms:g} ms)"
    status = Status.FAILED if failed else Status.PASSED
    return Result(SERVED, status, required, latency.value, gate.max_ratio, message)


def _unmeasured(candidate: Sequence[Timed], champion: Sequence[Timed]) -> str:
    """Return why the batches cannot be compared ('' when they can)."""
    if len(candidate) != len(champion) or len(candidate) < MIN_BATCHES:
        return f"{len(candidate)} and {len(champion)} timed batches; {MIN_BATCHES} pairs or more are needed"
    errors = sum(b.errors for b in candidate), sum(b.errors for b in champion)
    if any(errors):
        first = next(b.first_error for b in (*candidate, *champion) if b.errors)
        return f"{errors[0]} candidate and {errors[1]} champion requests failed under load (first: {first})"
    if any(not b.latencies_ms or b.seconds <= 0 for b in (*candidate, *champion)):
        return "a batch answered no request"
    return ""


def no_champion(why: str) -> Result:
    """The served check, skipped: there is no champion server to compare with (so nothing is required)."""
    return Result(SERVED, Status.SKIPPED, False, None, None, why)


def _rate(batch: Timed) -> float:
    return len(batch.latencies_ms) / batch.seconds


def _pooled_p95(batches: Sequence[Timed]) -> float:
    return p95([t for b in batches for t in b.latencies_ms])


def _pooled_rate(batches: Sequence[Timed]) -> float:
    return sum(len(b.latencies_ms) for b in batches) / sum(b.seconds for b in batches)

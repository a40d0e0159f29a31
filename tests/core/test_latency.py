"""The latency rule on fixed timings: identical models pass, a 5x slower one fails, tiny differences do not count."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from model.records import Status
from pipeline.config_gates import LatencyGate
from pipeline.core.gates import latency_gate
from pipeline.core.latency import batch_ratio, order_interval, paired_ratio, served_latency
from pipeline.records import Latency

GATE = LatencyGate()  # max_ratio 1.5, min_difference_ms 1.0
CHAMPION_URL = "http://champion:8080"


def timings(median_ms: float, n: int, seed: int) -> np.ndarray:
    """Return ``n`` right-skewed predict times around ``median_ms`` (a log-normal, as timings are)."""
    return median_ms * np.random.default_rng(seed).lognormal(0.0, 0.3, n)


def latency_of(candidate: np.ndarray, champion: np.ndarray) -> Latency:
    """Return the gate step's record for two paired timing samples."""
    ratio = paired_ratio(candidate, champion)
    assert ratio is not None
    c50, c95 = np.percentile(candidate, [50, 95])
    h50, h95 = np.percentile(champion, [50, 95])
    return Latency(
        "onnx", "onnx", c50, c95, h50, h95, ratio.value, len(candidate), "now", ratio.low, ratio.high
    )


@pytest.mark.parametrize("seed", range(20))
def test_identical_models_pass_the_in_process_gate(seed: int) -> None:
    # given two draws from one distribution, slow enough (20 ms) that the floor cannot save them
    candidate, champion = timings(20.0, 200, seed), timings(20.0, 200, seed + 1000)

    # when
    result = latency_gate(GATE, latency_of(candidate, champion))

    # then
    assert result.status is Status.PASSED, result.message
    assert "not surely slower" in result.message and "CI" in result.message


def test_a_five_times_slower_model_fails_the_in_process_gate_naming_both_p95s() -> None:
    candidate, champion = timings(100.0, 200, 1), timings(20.0, 200, 2)

    latency = latency_of(candidate, champion)
    result = latency_gate(GATE, latency)

    assert result.status is Status.FAILED, result.message
    assert latency.ratio_low is not None and latency.ratio_low > 3, latency
    assert f"{latency.candidate_p95_ms:.3f} ms" in result.message
    assert f"{latency.champion_p95_ms:.3f} ms" in result.message
    assert "floor 1 ms" in result.message and "limit 1.5" in result.message


def test_a_large_ratio_of_tiny_times_passes_by_the_floor() -> None:
    # given a candidate 5x slower, but at 0.05 ms against 0.01 ms a record
    candidate, champion = timings(0.05, 200, 3), timings(0.01, 200, 4)

    latency = latency_of(candidate, champion)
    result = latency_gate(GATE, latency)

    assert latency.ratio_low is not None and latency.ratio_low > GATE.max_ratio
    assert result.status is Status.PASSED, result.message
    assert "within the 1 ms floor" in result.message


def test_the_paired_bootstrap_is_seeded_and_keeps_pairs_together() -> None:
    # a load spike hits both models of a pair: pairing keeps it out of the ratio
    base = timings(5.0, 300, 5)
    spikes = np.where(np.arange(300) % 10 == 0, 20.0, 1.0)
    candidate, champion = base * spikes, base * spikes * 1.01

    first, again = paired_ratio(candidate, champion), paired_ratio(candidate, champion)

    assert first == again, "the same timings must give the same interval"
    assert first is not None and first.low <= first.value <= first.high
    assert first.low > 0.95 and first.high < 1.05, first


@dataclass(frozen=True)
class Batch:
    """A timed batch, as ``pipeline.io.http.drive`` returns one."""

    latencies_ms: tuple[float, ...]
    seconds: float
    errors: int = 0
    first_error: str = ""


def batches(
    service_ms: float, count: int, seed: int, requests: int = 50, concurrency: int = 8
) -> list[Batch]:
    """Return ``count`` batches of a server that answers one request in ``service_ms`` at a time."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(count):
        service = service_ms * rng.lognormal(0.0, 0.2, requests)
        latencies = tuple(float(v) for v in service * concurrency)  # queued behind the others in flight
        result.append(Batch(latencies, float(service.sum()) / 1000.0))
    return result


@pytest.mark.parametrize("seed", range(10))
def test_identical_servers_pass_the_served_gate(seed: int) -> None:
    result = served_latency(GATE, batches(2.0, 10, seed), batches(2.0, 10, seed + 99), 8, 153, CHAMPION_URL)

    assert result.status is Status.PASSED, result.message
    assert result.required and result.threshold == 1.5


def test_a_five_times_slower_server_fails_naming_p95s_throughputs_concurrency_and_rows() -> None:
    candidate, champion = batches(10.0, 10, 1), batches(2.0, 10, 2)

    result = served_latency(GATE, candidate, champion, 8, 153, CHAMPION_URL)

    assert result.status is Status.FAILED, result.message
    assert 4 < result.observed < 6, result.observed
    for part in ("8 requests in flight", "153 held-out rows", "requests/s", "p95", CHAMPION_URL, "slower"):
        assert part in result.message, (part, result.message)
    assert "p95: the interval's low end" in result.message
    assert "throughput: the slowdown's low end" in result.message


def test_a_tiny_served_difference_passes_by_the_floor() -> None:
    # 0.05 ms against 0.01 ms a request: 5x, but 0.3 ms of p95 with 8 in flight
    result = served_latency(GATE, batches(0.05, 10, 1), batches(0.01, 10, 2), 8, 153, CHAMPION_URL)

    assert result.status is Status.PASSED, result.message
    assert "within the 1 ms floor" in result.message


def test_a_burst_in_a_few_batches_does_not_fail_identical_servers() -> None:
    # given identical servers, but two of the candidate's ten batches met a burst 10x slower
    candidate = batches(2.0, 10, 3)
    for i in (2, 7):
        slow = candidate[i]
        candidate[i] = Batch(tuple(t * 10 for t in slow.latencies_ms), slow.seconds * 10)

    result = served_latency(GATE, candidate, batches(2.0, 10, 4), 8, 153, CHAMPION_URL)

    assert result.status is Status.PASSED, result.message


def test_failed_requests_make_the_served_measurement_an_error() -> None:
    candidate = batches(2.0, 10, 5)
    candidate[4] = Batch(candidate[4].latencies_ms[1:], candidate[4].seconds, 1, "status 500")

    result = served_latency(GATE, candidate, batches(2.0, 10, 6), 8, 153, CHAMPION_URL)

    assert result.status is Status.ERROR and result.blocking
    assert "1 candidate and 0 champion requests failed" in result.message and "status 500" in result.message


@pytest.mark.parametrize(("n", "k"), [(6, 1), (8, 1), (9, 2), (10, 2), (12, 3), (20, 6)])
def test_the_order_statistic_interval_covers_the_median_at_95_percent(n: int, k: int) -> None:
    found, coverage = order_interval(n)

    assert found == k and coverage >= 0.95
    ratio = batch_ratio([float(i) for i in range(1, n + 1)])
    assert (ratio.low, ratio.high) == (float(k), float(n + 1 - k))


def test_fewer_than_six_batches_are_refused() -> None:
    with pytest.raises(ValueError, match="6 or more"):
        batch_ratio([1.0, 1.1, 0.9, 1.0, 1.2])

"""Scoring on held-out rows without files: the latency measurement times what it says it times."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from pipeline.core.evaluation import WARMUP_ROWS, measure_latency


class SlowModel:
    """A stand-in estimator whose every predict takes at least 2 ms and is counted."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, X: pd.DataFrame) -> Any:
        """Sleep 2 ms and remember how many rows were asked for."""
        time.sleep(0.002)
        self.calls.append(len(X))
        return [0] * len(X)


def test_latency_times_the_configured_number_of_single_rows_and_one_batch() -> None:
    # given: a model whose single-row predict cannot take less than 2 ms
    model = SlowModel()
    rows = pd.DataFrame({"x": range(7)})

    # when
    latency = measure_latency(model, rows, single_rows=15, batch_rows=50)

    # then: warm-up, then 15 timed single rows, then one batch of at least 50 rows
    assert model.calls[: WARMUP_ROWS + 15] == [1] * (WARMUP_ROWS + 15), model.calls
    assert len(model.calls) == WARMUP_ROWS + 15 + 1 and model.calls[-1] >= 50, model.calls
    assert latency.single_rows == 15 and latency.batch_rows == model.calls[-1]
    assert latency.single_p50_ms >= 2.0, f"a 2 ms predict was timed at {latency.single_p50_ms:.3f} ms"
    assert latency.batch_rows_per_s <= latency.batch_rows / 0.002, "the batch rate ignores the batch's time"

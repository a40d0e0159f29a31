"""Scoring on held-out rows without files: single-row timing times what it says, alternately."""

from __future__ import annotations

import time
from typing import Any

from pipeline.core.evaluation import time_single_rows, warmup


class SlowModel:
    """A stand-in runtime whose every predict takes at least ``ms`` and is logged."""

    def __init__(self, name: str, ms: float, log: list[tuple[str, int]]) -> None:
        self.name, self.seconds, self.log = name, ms / 1000, log

    def predict(self, records: list[dict[str, Any]]) -> Any:
        """Sleep, and remember who was asked for how many records."""
        time.sleep(self.seconds)
        self.log.append((self.name, len(records)))
        return [0] * len(records)


def test_two_models_are_timed_alternately_one_row_at_a_time() -> None:
    # given: a 2 ms and a 4 ms model
    log: list[tuple[str, int]] = []
    fast, slow = SlowModel("a", 2, log), SlowModel("b", 4, log)

    # when
    timings = time_single_rows([fast.predict, slow.predict], [{"x": i} for i in range(7)], samples=15)

    # then: warm-up, then A, B, A, B ... on single rows, 15 timed calls each
    assert log == [("a", 1), ("b", 1)] * (warmup(15) + 15), log[:6]
    assert [len(t) for t in timings] == [15, 15]
    assert min(timings[0]) >= 2.0 and min(timings[1]) >= 4.0, "a predict was timed shorter than it slept"

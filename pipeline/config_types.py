"""The config's building blocks: strict leaf types, the pydantic settings every section shares, and the bounds of every count.

Strict leaves: the dataclasses are lax, so pydantic builds them from TOML tables (a strict one
takes only its own instances), but every scalar in them is strict; ``allow_inf_nan=False`` keeps
floats finite. Every count that sizes work has an upper bound (``MAX_*``), generous for real use:
past it a value is a typo or a hang. ``pipeline/config.py`` and ``pipeline/config_gates.py`` build
the sections from these.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import ConfigDict, Strict

# Upper bounds of the counts, generous for real use: past them a value is a typo or a hang.
MAX_ROWS = 1_000_000_000  # row counts and thresholds: more rows than a table held in memory has


MAX_SEED = 2**32 - 1  # NumPy and scikit-learn take seeds in [0, 2**32)


MAX_BOOTSTRAP = 10_000  # resamples: a 95% interval's ends to ~1% of its width; work = resamples x rows


MAX_LATENCY_SAMPLES = 10_000  # 500 predicts above the p95; at 3 ms each, ~1 min with a champion


MAX_CONCURRENCY = 256  # requests in flight from smoke's one client (a server takes 1,000 connections)


MAX_LOAD_BATCHES = 100  # timed batches a server: an interval on their median gains little past that


MAX_BATCH_REQUESTS = 10_000  # requests a batch: 500 above its p95; at 50 ms each, ~8 min a batch


MAX_LEAKAGE_ROWS = 1_000_000  # rows scored per feature for leakage: an AUC to ~0.001, one sort each


MAX_TEST_ROWS = 50_000  # drift samples a side to DISTANCE_ROWS (core/statistics.py): more means the same


MAX_BINS = 1_000  # 50 of the 50,000 sampled rows a bin, near the chi-squared floor; profiles keep every edge


MAX_FEATURES = 100_000  # features a drift check may let drift: more than any table has columns


MAX_THREADS = 1_024  # threads a model's runtime may use for a prediction: more cores than a machine has


# Strict leaves: the dataclasses are lax, so pydantic builds them from TOML tables (a strict one takes
# only its own instances), but every scalar in them is strict; ``allow_inf_nan=False`` keeps floats finite.
Text = Annotated[str, Strict()]


Name = Annotated[str, Strict(), MinLen(1)]  # a path or a name: never empty


Whole = Annotated[int, Strict()]


Number = Annotated[float, Strict()]


Flag = Annotated[bool, Strict()]


Fraction = Annotated[float, Strict(), Ge(0), Le(1)]


Share = Annotated[float, Strict(), Gt(0), Lt(1)]  # neither 0 nor 1 makes sense


Positive = Annotated[float, Strict(), Gt(0)]


Rows = Annotated[int, Strict(), Ge(1), Le(MAX_ROWS)]


StrictLabel = Text | Whole | Flag


StrictScalar = Text | Whole | Number | Flag


MODEL_SETTINGS = ConfigDict(extra="forbid", allow_inf_nan=False, defer_build=True)

"""Exact duplicate rows: the fast count equals pandas, and a hash collision never counts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.duplicates import _confirmed_duplicates, duplicate_rows
from pipeline.core.synth import churn_frame


def test_duplicate_rows_matches_pandas_on_mixed_data_with_nulls() -> None:
    # given a table with repeated rows, nulls, -0.0 and text
    rng = np.random.default_rng(5)
    rows = 3000
    frame = pd.DataFrame(
        {
            "a": rng.integers(0, 3, rows).astype(float),
            "b": rng.choice(np.array(["x", "y", None], dtype=object), rows),
            "c": rng.integers(0, 2, rows),
            "d": rng.random(rows) < 0.5,
        }
    )
    frame.loc[::7, "a"] = np.nan
    frame.loc[::11, "a"] = -0.0

    # when
    counted = duplicate_rows(frame)

    # then
    expected = int(frame.duplicated().sum())
    assert expected > 0, "the fixture should contain duplicates"
    assert counted == expected, f"duplicate_rows says {counted}, pandas says {expected}"


def test_duplicate_rows_finds_copies_in_a_table_with_an_id_column() -> None:
    # given unique ids, then 25 exact copies of earlier rows
    frame = churn_frame(500, 4)
    frame = pd.concat([frame, frame.iloc[100:125]], ignore_index=True)

    assert duplicate_rows(frame) == 25
    assert duplicate_rows(frame.drop_duplicates()) == 0


def test_hash_collisions_never_count_as_duplicates() -> None:
    # given four candidate rows forced into one hash group: values A, B, B, A
    frame = pd.DataFrame({"v": ["A", "B", "B", "A"], "w": [1.0, np.nan, np.nan, 1.0]})
    candidates = np.arange(4)
    same_hash = np.zeros(4, dtype=np.uint64)

    # when
    counted = _confirmed_duplicates(frame, candidates, same_hash)

    # then: only the second B and the second A repeat an earlier row
    assert counted == 2, f"expected 2 exact duplicates among colliding rows, got {counted}"
    distinct = pd.DataFrame({"v": ["A", "B", "C"]})
    assert _confirmed_duplicates(distinct, np.arange(3), np.zeros(3, dtype=np.uint64)) == 0


def test_the_count_matches_pandas_whenever_unique_rows_are_dropped() -> None:
    # given: more rows than the sample that decides when to drop unique partial hashes, once with
    # a continuous column first (dropped after it) and once with eight 3-valued columns (dropped late)
    rng = np.random.default_rng(11)
    rows = 40_000
    few = pd.DataFrame({f"c{i}": rng.integers(0, 3, rows) for i in range(8)})
    few["label"] = rng.choice(np.array(["yes", "no"], dtype=object), rows)
    spread = pd.DataFrame({"x": rng.normal(size=rows).round(2), "k": rng.choice(["a", "b"], rows)})
    spread = pd.concat([spread, spread.iloc[:300]], ignore_index=True)

    for frame in (few, spread):
        expected = int(frame.duplicated().sum())
        assert expected > 0, "the fixture should contain duplicates"
        assert duplicate_rows(frame) == expected

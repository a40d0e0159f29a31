"""Schema inference rules on plain data: ranges, id-like columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.schema import is_id_like, widen


def test_ranges_widen_outwards_and_stay_non_negative() -> None:
    assert widen(0.0, 100.0, 0.1, integer=True) == (0, 110)
    assert widen(-10.0, 10.0, 0.1, integer=False) == (-12.0, 12.0)
    low, high = widen(0.12345, 0.5, 0.0, integer=False)
    assert low <= 0.12345 and high >= 0.5 and low == 0.1234, (low, high)


def test_id_like_columns() -> None:
    rows = 50
    assert is_id_like("customer_id", pd.Series(range(rows))), "unique values under an id name"
    assert is_id_like("customerID", pd.Series([f"c{i}" for i in range(rows)]))
    assert is_id_like("row", pd.Series(range(1, rows + 1))), "a row counter"
    assert is_id_like("email", pd.Series([f"u{i}@x.org" for i in range(rows)])), "unique text"
    assert not is_id_like("paid", pd.Series(np.arange(rows) * 3)), "unique numbers are not ids by themselves"
    assert not is_id_like("bmi", pd.Series(np.linspace(0, 1, rows))), "unique floats are measurements"
    assert not is_id_like("user_id", pd.Series([1, 1, 2] * 10)), "repeated values are not ids"

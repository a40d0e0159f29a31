"""Schema inference rules on plain data: ranges, id-like columns, and the limits fresh data passes."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from pipeline.core.fresh import HEAVY_TAIL_CAP, fresh_range, null_limit, widen
from pipeline.core.schema import InferOptions, infer_sections, is_id_like


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


# ---------------------------------------------------------------------------------------------
# Limits fresh data from the same source passes (what `init` writes: InferOptions(fresh=True)).


def _quantiles(rows: int, law: str) -> np.ndarray:
    """Return ``rows`` evenly spaced quantiles of a standard normal or exponential law (a sample without luck)."""
    levels = (np.arange(rows) + 0.5) / rows
    if law == "normal":
        return np.array([NormalDist().inv_cdf(float(p)) for p in levels])
    return -np.log(1 - levels)


def test_fresh_ranges_extend_past_the_extremes_by_the_tails_scale_more_on_fewer_rows() -> None:
    # given a normal law seen on 100 and on 10,000 rows, and an exponential one on 10,000
    few, many = _quantiles(100, "normal"), _quantiles(10_000, "normal")
    exponential = _quantiles(10_000, "exponential")

    # when
    few_range, many_range = fresh_range(few, integer=False), fresh_range(many, integer=False)
    low, high = fresh_range(exponential, integer=False)

    # then: room past both extremes, in standard deviations, more for fewer rows
    assert few_range[0] < few.min() - 2 and few_range[1] > few.max() + 2, few_range
    assert few_range[1] - few.max() > many_range[1] - many.max() > 1, (few_range, many_range)
    # no negatives seen, none allowed; a fresh sample ten times larger stays within
    fresh = np.random.default_rng(0).exponential(1.0, 100_000)
    assert low == 0 and fresh.max() < high, (low, high, fresh.max())


def test_fresh_ranges_step_past_tied_extremes_round_outwards_and_cap_heavy_tails() -> None:
    clipped = np.minimum(np.round(_quantiles(2000, "exponential") * 20), 72)  # 56 rows at the clip
    coarse = np.array([0.2] * 30 + [0.3] * 5 + [1.0] * 20 + [1.5] * 10 + [2.0] * 6)
    heavy = np.exp(np.random.default_rng(0).normal(0.0, 1.0, 300))
    negative = np.linspace(-3.0, 3.0, 500)

    assert fresh_range(clipped, integer=True) == (0, 73), "one step past a clip, whole numbers"
    assert fresh_range(coarse, integer=False)[0] == 0.1, "one step below tied minima"
    low, high = fresh_range(heavy, integer=False)
    assert 3 * heavy.max() < high <= HEAVY_TAIL_CAP * heavy.max() + 1e-4 and low == 0, (low, high)
    low, high = fresh_range(negative, integer=False)
    assert low < -4 and high > 4, "a column with negatives extends both ways"
    assert fresh_range(np.full(10, 5.0), integer=True) == (4, 6), "one value: 10% of it, at least 1"


def test_fresh_null_limits_leave_room_for_sampling_noise_and_still_catch_a_surge() -> None:
    assert [null_limit(0, rows) for rows in (75, 285, 2000, 25_000)] == [0.12, 0.04, 0.01, 0.01]
    assert null_limit(6, 285) == 0.08, "2% nulls in 285 rows"
    assert all(null_limit(round(0.02 * rows), rows) < 0.2 for rows in (75, 285, 2000)), "a 20% surge fails"


def _table(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": np.round(rng.lognormal(3.0, 1.0, rows), 2),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "city": [f"c{i}" for i in rng.integers(0, 40, rows)],  # 40 values, some seen once or twice
            "label": rng.choice(["no", "yes"], rows, p=[0.8, 0.2]),
        }
    )
    frame.loc[:4, "city"] = ["rare-a", "rare-b", "rare-c", "rare-d", "rare-e"]
    return frame


def test_fresh_limits_infer_no_nullable_false_and_list_values_only_when_each_was_seen_enough() -> None:
    # given a table without nulls, a categorical with well-seen values and one with values seen once
    frame = _table()

    # when read as limits for fresh data, and as a description of this table (schema infer)
    fresh = infer_sections(frame, "t.csv", "label", InferOptions(fresh=True, max_categories=100))
    described = infer_sections(frame, "t.csv", "label", InferOptions(max_categories=100))

    # then: no column is declared free of nulls from a sample that happened to have none
    columns = fresh.schema["columns"]
    limit = null_limit(0, len(frame))
    assert limit == 0.02 and all(
        "nullable" not in s and s["max_null_fraction"] == limit for s in columns.values()
    )
    assert columns["plan"]["allowed"] == ["basic", "plus", "pro"]
    assert "allowed" not in columns["city"], "values seen once say others went unseen: no allowed list"
    assert fresh.schema["max_conflicting_fraction"] == 0.002 and fresh.schema["leakage_limit"] == 0.97
    assert described.schema["columns"]["amount"]["nullable"] is False, "schema infer describes this table"
    assert "allowed" in described.schema["columns"]["city"]


def test_each_table_limit_loosened_to_fit_the_table_is_noted() -> None:
    # given 40 rows, a fifth of them repeated, and a rare class
    frame = _table(rows=32, seed=1)
    frame["label"] = ["yes"] + ["no"] * 31
    frame = pd.concat([frame, frame.iloc[:8]], ignore_index=True)

    # when
    inferred = infer_sections(frame, "t.csv", "label", InferOptions(fresh=True))

    # then: each limit moved to fit the table says from what, to what, and why
    notes = "\n".join(inferred.notes)
    assert "loosened schema.min_rows to 40 (from 50): the table has 40 rows" in notes, notes
    limit = inferred.schema["max_duplicate_fraction"]
    assert limit > 0.2 and f"loosened schema.max_duplicate_fraction to {limit:g} (from 0.05): 20.0%" in notes
    assert inferred.schema["min_class_fraction"] == 0.0
    assert "loosened schema.min_class_fraction to 0 (from 0.05): the rarest class ('yes')" in notes, notes


def test_conflicting_labels_beyond_the_default_loosen_it_with_a_note() -> None:
    # given 1,000 rows with distinct features, 1% of them copied with the other label
    frame = _table(rows=1000, seed=2)
    copies = frame.iloc[:5].assign(label=lambda f: np.where(f["label"] == "yes", "no", "yes"))
    frame = pd.concat([frame, copies], ignore_index=True)

    # when
    inferred = infer_sections(frame, "t.csv", "label", InferOptions(fresh=True))

    # then
    limit = inferred.schema["max_conflicting_fraction"]
    assert limit > 0.01, limit
    assert any(
        note.startswith(
            f"loosened schema.max_conflicting_fraction to {limit:g} (from 0.002): 1.0% of the rows"
        )
        for note in inferred.notes
    ), inferred.notes

"""Drift decisions on plain data: which statistic each column gets, corrected tests, label, profile, free categoricals."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline.config import ColumnSchema, DriftConfig, load_config
from pipeline.core.drift import against_reference, compare_one, label_drift
from pipeline.core.profile import data_profile, profile_entry
from pipeline.core.synth import churn_frame
from tests.conftest import DEFAULT_CONFIG

LIMITS = DriftConfig()


def _numeric(rows: int, shift: float, seed: int = 0) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    return pd.Series(rng.normal(0, 1, rows)), pd.Series(rng.normal(shift, 1, rows))


def _compared(reference: pd.Series, current: pd.Series, limits: DriftConfig = LIMITS, kind: str = "numeric"):  # type: ignore[no-untyped-def]
    return compare_one("x", kind, current, profile_entry(reference, kind, limits.bins), limits, reference)


def test_small_samples_get_a_test_and_large_ones_a_distance() -> None:
    small = _compared(*_numeric(500, 0.0))
    large = _compared(*_numeric(50_000, 0.0))
    small_cat = _compared(pd.Series(list("ab") * 200), pd.Series(list("ab") * 200), kind="categorical")
    large_cat = _compared(pd.Series(list("ab") * 5000), pd.Series(list("ab") * 5000), kind="categorical")
    assert (small.method, large.method) == ("ks", "wasserstein")
    assert (small_cat.method, large_cat.method) == ("chi2", "jensen_shannon")
    assert small.limit == LIMITS.alpha and large.limit == LIMITS.wasserstein_limit


def test_a_trivial_shift_in_a_large_sample_fails_a_test_but_not_the_distance() -> None:
    # given 200,000 rows shifted by 0.03 standard deviations (nothing a model would notice)
    reference, current = _numeric(200_000, 0.03)

    # when judged by a test and by the default for this size
    tested = _compared(reference, current, replace(LIMITS, method="test"))
    measured = _compared(reference, current)

    # then the test "finds" drift, the distance does not
    assert tested.drifted and tested.p_adjusted is not None and tested.p_adjusted < 1e-6
    assert not measured.drifted and measured.statistic is not None and measured.statistic < 0.05


def test_a_real_shift_in_a_large_sample_is_drift_by_distance() -> None:
    measured = _compared(*_numeric(200_000, 0.3))
    assert measured.method == "wasserstein" and measured.drifted
    assert measured.statistic == pytest.approx(0.3, abs=0.02)


def test_noise_in_many_features_is_not_drift_once_p_values_are_corrected() -> None:
    # given 30 features with no shift at all, 400 rows each side (tests)
    rng = np.random.default_rng(5)  # a seed where two raw p-values fall under 0.05 by chance
    reference = pd.DataFrame({f"f{i}": rng.normal(0, 1, 400) for i in range(30)})
    current = pd.DataFrame({f"f{i}": rng.normal(0, 1, 400) for i in range(30)})
    config = load_config(DEFAULT_CONFIG)
    config = replace(
        config,
        schema=replace(config.schema, columns=tuple(ColumnSchema(c, "numeric") for c in reference)),
        data=replace(config.data, id_columns=()),
    )

    # when
    report = against_reference(current, reference, "noise", config)

    # then some raw p-value is below 0.05 by chance alone, and no feature is called drifted
    assert min(f.p_value or 1.0 for f in report.features) < 0.05, "pick a seed where chance strikes"
    assert report.drifted == () and report.passed


def test_psi_is_reported_and_counts_only_with_a_limit() -> None:
    reference, current = _numeric(50_000, 0.05)
    quiet = _compared(reference, current)
    strict = _compared(reference, current, replace(LIMITS, psi_limit=0.001))
    assert quiet.psi is not None and quiet.psi > 0.001 and not quiet.drifted
    assert strict.drifted


def test_the_label_mix_is_compared_when_both_sides_have_the_target() -> None:
    config = load_config(DEFAULT_CONFIG)
    reference = churn_frame(3000, 1)
    same = label_drift(churn_frame(3000, 2), reference, config)
    moved_frame = churn_frame(3000, 2)
    moved_frame["churned"] = (np.random.default_rng(3).random(3000) < 0.6).astype(int)
    moved = label_drift(moved_frame, reference, config)
    assert same is not None and moved is not None and same.method == "jensen_shannon"
    assert not same.drifted and moved.drifted
    assert label_drift(churn_frame(300, 2).drop(columns=["churned"]), reference, config) is None


def test_data_profile_keeps_row_counts_and_survives_json() -> None:
    frame = churn_frame(500, 1)
    columns: list[ColumnSchema | str] = [
        ColumnSchema("tenure_months", "numeric"),
        ColumnSchema("has_partner", "boolean"),
        "region",
    ]
    profile = data_profile(frame, columns, bins=5)
    tenure = profile["numeric"]["tenure_months"]
    assert len(tenure["fractions"]) == len(tenure["edges"]) - 1 and tenure["rows"] == 500
    assert set(profile["categorical"]["has_partner"]["fractions"]) == {"true", "false"}
    assert set(profile["categorical"]["region"]["fractions"]) == {"north", "south", "east", "west"}
    assert json.loads(json.dumps(profile)) == profile, "the profile must survive JSON (model metadata)"


# ---------------------------------------------------------------------------------------------
# Free categoricals (too many values for an allowed list) and the label's own limit.


def _states(rows: int, seed: int, new: float = 0.0) -> pd.Series:
    """Return a free categorical: 51 values, the commonest 70 times the rarest; ``new`` of rows never seen."""
    rng = np.random.default_rng(seed)
    weights = 0.918 ** np.arange(51)
    values = rng.choice([f"S{i:02d}" for i in range(51)], rows, p=weights / weights.sum()).astype(object)
    moved = rng.random(rows) < new
    values[moved] = rng.choice([f"N{i:02d}" for i in range(51)], int(moved.sum()))
    return pd.Series(values)


def test_never_seen_values_of_a_free_categorical_drift_only_beyond_what_its_rare_values_predict() -> None:
    # given 300 rows a side of a free categorical: the reference missed some of its rarer values
    reference = _states(300, seed=1)
    same, half_new = _states(300, seed=13), _states(300, seed=13, new=0.5)

    # when
    unchanged, planted = (
        _compared(reference, same, kind="categorical"),
        _compared(reference, half_new, kind="categorical"),
    )

    # then: the never-seen values of the same source pass, half the rows never seen drift
    assert sum(unchanged.unseen.values()) > LIMITS.max_unseen_share, (
        "pick seeds where chance brings new values"
    )
    assert not unchanged.drifted, unchanged
    assert planted.drifted and sum(planted.unseen.values()) > 0.4, planted


def test_many_categories_on_few_rows_are_held_to_their_noise_floor_and_a_long_tail_is_pooled() -> None:
    # given 51 values on 2,000 rows a side, and a long tail of 1,000 values on 5,000 rows a side
    rng = np.random.default_rng(4)
    zipf = 1 / np.arange(1, 1001)
    tail = [pd.Series(rng.choice(1000, 5000, p=zipf / zipf.sum()).astype(str)) for _ in range(2)]
    moved = _states(2000, seed=6).replace({f"S{i:02d}": "S00" for i in range(10)})

    # when
    same = _compared(_states(2000, seed=3), _states(2000, seed=5), kind="categorical")
    shifted = _compared(_states(2000, seed=3), moved, kind="categorical")
    long_tail = _compared(tail[0], tail[1], kind="categorical")

    # then: chance alone is not drift; ten values folded into one is
    assert (
        same.method == "jensen_shannon" and same.limit > LIMITS.jensen_shannon_limit and not same.drifted
    ), same
    assert shifted.drifted, shifted
    assert not long_tail.drifted, long_tail


def test_the_label_has_its_own_lower_limit_and_a_ten_point_move_drifts() -> None:
    # given churn at 26.5% and at 36.5%, 25,000 rows a side
    config = load_config(DEFAULT_CONFIG)
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"churned": (rng.random(25_000) < 0.265).astype(int)})
    moved = pd.DataFrame({"churned": (rng.random(25_000) < 0.365).astype(int)})

    # when
    label = label_drift(moved, reference, config)
    as_feature = _compared(reference["churned"], moved["churned"], kind="categorical")

    # then: a distance the features' 0.1 lets through is drift for the label
    assert label is not None and label.limit == 0.05 and label.drifted, label
    assert as_feature.statistic is not None and 0.05 < as_feature.statistic < 0.1 and not as_feature.drifted

"""Drift decisions on plain data: which statistic each column gets, corrected tests, label, profile."""

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

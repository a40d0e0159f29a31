"""Drift statistics on plain data: PSI, quantile bins, category keys, the drift rule, the profile."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.config import ColumnSchema, DriftConfig
from pipeline.core.drift import (
    EPSILON,
    bin_fractions,
    category_fractions,
    category_psi,
    data_profile,
    is_drifted,
    psi,
    quantile_edges,
)
from pipeline.core.synth import churn_frame


def test_psi_is_zero_for_equal_distributions_and_matches_the_formula() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0

    value = psi([0.5, 0.5], [0.2, 0.8])

    expected = (0.2 - 0.5) * np.log(0.2 / 0.5) + (0.8 - 0.5) * np.log(0.8 / 0.5)
    assert value == pytest.approx(expected), f"PSI {value} differs from the textbook formula {expected}"


def test_empty_bins_count_as_epsilon_so_psi_stays_finite() -> None:
    value = psi([1.0, 0.0], [0.0, 1.0])

    expected = 2 * (1 - EPSILON) * np.log(1 / EPSILON)
    assert np.isfinite(value) and value == pytest.approx(expected), value


def test_quantile_edges_give_equal_bins_and_open_outer_bins() -> None:
    # given 0..999 and 4 bins
    values = np.arange(1000, dtype=float)

    # when
    edges = quantile_edges(values, 4)

    # then: quartiles; values beyond the reference range fall into the outer bins
    assert bin_fractions(values, edges).tolist() == [0.25, 0.25, 0.25, 0.25]
    assert bin_fractions(np.array([-50.0, 5000.0]), edges).tolist() == [0.5, 0.0, 0.0, 0.5]


def test_discrete_values_collapse_duplicate_edges() -> None:
    values = np.array([0, 0, 0, 0, 1, 1, 2, 5], dtype=float)

    edges = quantile_edges(values, 10)

    assert len(set(edges.tolist())) == len(edges), f"edges must be distinct: {edges}"
    assert bin_fractions(values, edges).sum() == pytest.approx(1.0)


def test_category_psi_counts_new_and_vanished_categories() -> None:
    reference = {"a": 0.5, "b": 0.5}

    assert category_psi(reference, {"a": 0.5, "b": 0.5}) == 0.0
    assert category_psi(reference, {"a": 0.5, "c": 0.5}) > 1.0, "a new category replacing an old one is drift"


def test_category_keys_agree_across_spellings() -> None:
    # given the same categories as ints, floats (a column with nulls) and booleans
    ints = category_fractions(pd.Series([1, 2, 2, 1]))
    floats = category_fractions(pd.Series([1.0, 2.0, np.nan, 2.0, 1.0]))
    words = category_fractions(pd.Series(["yes", "no", "Yes", None]), boolean=True)
    flags = category_fractions(pd.Series([True, False, True]), boolean=True)

    assert ints == floats == {"1": 0.5, "2": 0.5}
    assert set(words) == set(flags) == {"true", "false"}


def test_is_drifted_needs_both_ks_statistic_and_p_value() -> None:
    limits = DriftConfig(psi_limit=0.2, ks_statistic_limit=0.1, ks_pvalue_limit=0.001)

    assert is_drifted(0.3, None, None, limits), "PSI above its limit drifts"
    assert is_drifted(0.01, 0.2, 1e-6, limits), "a large and significant KS drifts"
    assert not is_drifted(0.01, 0.2, 0.01, limits), "a large but insignificant KS does not"
    assert not is_drifted(0.01, 0.05, 1e-9, limits), "a tiny but significant KS does not"


def test_data_profile_shape_is_json_ready_for_columns_and_names() -> None:
    # given
    frame = churn_frame(500, 1)
    columns: list[ColumnSchema | str] = [
        ColumnSchema("tenure_months", "numeric"),
        ColumnSchema("has_partner", "boolean"),
        "region",
    ]

    # when
    profile = data_profile(frame, columns, bins=5)

    # then
    assert set(profile) == {"numeric", "categorical"}
    tenure = profile["numeric"]["tenure_months"]
    assert len(tenure["fractions"]) == len(tenure["edges"]) - 1 and sum(tenure["fractions"]) == pytest.approx(
        1.0
    )
    assert set(profile["categorical"]["has_partner"]) == {"true", "false"}
    assert set(profile["categorical"]["region"]) == {"north", "south", "east", "west"}
    assert json.loads(json.dumps(profile)) == profile, "the profile must survive JSON (model metadata)"

"""The statistics drift is judged by, on plain data: PSI, bins, category keys, tests and distances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.config import DriftConfig
from pipeline.core.drift import compare_one
from pipeline.core.profile import profile_entry
from pipeline.core.statistics import (
    EPSILON,
    bin_fractions,
    category_fractions,
    category_psi,
    chi2_test,
    jensen_shannon,
    normalised_wasserstein,
    psi,
    quantile_edges,
)


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
    values = np.arange(1000, dtype=float)
    edges = quantile_edges(values, 4)
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
    ints = category_fractions(pd.Series([1, 2, 2, 1]))
    floats = category_fractions(pd.Series([1.0, 2.0, np.nan, 2.0, 1.0]))
    words = category_fractions(pd.Series(["yes", "no", "Yes", None]), boolean=True)
    flags = category_fractions(pd.Series([True, False, True]), boolean=True)
    assert ints == floats == {"1": 0.5, "2": 0.5}
    assert set(words) == set(flags) == {"true", "false"}


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.5, 2.0])
def test_normalised_wasserstein_equals_scipy_over_the_reference_spread(shift: float) -> None:
    # given two equal-size samples, the second shifted by ``shift`` standard deviations
    rng = np.random.default_rng(1)
    reference = rng.normal(10.0, 3.0, 5000)
    current = rng.normal(10.0 + 3.0 * shift, 3.0, 5000)

    # then it is SciPy's Wasserstein distance over the reference's standard deviation
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert normalised_wasserstein(reference, current) == pytest.approx(expected, rel=1e-12)
    assert normalised_wasserstein(reference, current) == pytest.approx(shift, abs=0.06)


def test_normalised_wasserstein_of_unequal_sizes_with_nulls_is_scipys_exact_value() -> None:
    # given two sides of one distribution, of unequal sizes and with different shares of nulls
    rng = np.random.default_rng(2)
    reference = pd.Series(rng.lognormal(3.0, 0.6, 3000))
    current = pd.Series(rng.lognormal(3.0, 0.6, 1700))
    reference[rng.random(3000) < 0.10] = np.nan
    current[rng.random(1700) < 0.25] = np.nan
    limits = DriftConfig(method="distance")
    entry = profile_entry(reference, "numeric", limits.bins)
    # when the drift comparison measures them
    feature = compare_one("income", "numeric", current, entry, limits, reference)
    # then the statistic is SciPy's exact Wasserstein distance of the non-null values over the reference spread
    a, b = reference.dropna().to_numpy(), current.dropna().to_numpy()
    exact = stats.wasserstein_distance(a, b) / np.std(a)
    assert feature.method == "wasserstein" and feature.statistic == pytest.approx(exact, rel=1e-12)
    assert feature.reference_rows == a.size and feature.current_rows == b.size


def test_a_side_above_the_distance_rows_is_sampled_without_replacement() -> None:
    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 300_000), rng.normal(0.2, 1, 40_000)
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert normalised_wasserstein(reference, current) == pytest.approx(expected, abs=0.01)


def test_jensen_shannon_is_zero_for_equal_shares_and_one_for_disjoint_ones() -> None:
    assert jensen_shannon({"a": 30, "b": 70}, {"a": 3, "b": 7}) == pytest.approx(0.0, abs=1e-12)
    assert jensen_shannon({"a": 10}, {"b": 10}) == pytest.approx(1.0)


def test_chi2_tests_homogeneity_of_counts() -> None:
    same = chi2_test({"a": 50, "b": 50}, {"a": 48, "b": 52})
    moved = chi2_test({"a": 50, "b": 50}, {"a": 20, "b": 80})
    assert same[1] is not None and same[1] > 0.5
    assert moved[1] is not None and moved[1] < 1e-4
    assert chi2_test({"a": 5}, {"a": 9}) == (0.0, 1.0), "one category on both sides: nothing moved"

"""Drift: PSI and KS per feature against a reference CSV or a model's stored profile."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from model.artifact import save_artifact
from pipeline.cli import main
from pipeline.config import ColumnSchema, DriftConfig, load_config
from pipeline.drift import (
    EPSILON,
    bin_fractions,
    category_fractions,
    category_psi,
    data_profile,
    is_drifted,
    psi,
    quantile_edges,
)
from pipeline.synth import churn_frame
from tests.conftest import Project

MakeProject = Callable[..., Project]
SHIFTED = {"tenure_months", "monthly_charges", "total_charges"}  # what synth's shift moves


# --- pure functions ---------------------------------------------------------------------------


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


# --- the command ------------------------------------------------------------------------------


def _drift(
    project: Project, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, dict[str, Any]]:
    capsys.readouterr()
    code = main(project.cli("drift", *extra))
    err = capsys.readouterr().err
    path = project.out / "drift.json"
    return code, err, json.loads(path.read_text()) if path.is_file() else {}


def test_same_distribution_passes(make_project: MakeProject, capsys: pytest.CaptureFixture[str]) -> None:
    # given data and reference from the same generator (different seeds)
    project = make_project(rows=2000)

    # when
    code, err, report = _drift(project, capsys, "--reference", str(project.reference))

    # then
    assert code == 0, f"same-distribution data must not drift; drifted {report.get('drifted')}: {err}"
    assert report["passed"] is True and report["drifted"] == [] and report["source"] == "csv"
    features = {f["feature"]: f for f in report["features"]}
    assert set(features) == set(load_config(project.config).feature_columns)
    assert features["tenure_months"]["ks_pvalue"] is not None, "KS runs on numerics against a CSV"
    assert features["contract"]["ks_statistic"] is None, "no KS on categoricals"


def test_shifted_data_fails_with_exit_1(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given shifted data (charges and tenure moved)
    project = make_project(rows=2000, frame=churn_frame(2000, 3, shift=0.5))

    # when: the reference comes from drift.reference in the config
    code, err, report = _drift(project, capsys)

    # then
    assert code == 1, f"drift beyond the limits must exit 1, got {code}"
    assert err.count("\n") == 1 and "drift check failed" in err, f"expected one error line: {err}"
    assert set(report["drifted"]) >= SHIFTED, f"expected {SHIFTED} among drifted, got {report['drifted']}"
    assert "region" not in report["drifted"], "region carries no shift"
    assert report["passed"] is False and report["limits"]["max_drifted_features"] == 0


def test_max_drifted_features_tolerates_that_many(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(
        rows=2000,
        frame=churn_frame(2000, 3, shift=0.5),
        config=lambda c: c["drift"].update(max_drifted_features=9),
    )

    code, _, report = _drift(project, capsys)

    assert code == 0 and report["passed"] is True and report["drifted"], report


def _artefact(directory: Path, frame: pd.DataFrame, project: Project) -> None:
    """Save a real (dummy) model artefact whose metadata carries the profile of ``frame``."""
    config = load_config(project.config)
    columns = [c for c in config.schema.columns if c.name in config.feature_columns]
    profile = data_profile(frame, columns, config.drift.bins)
    features = [{"name": c.name, "type": c.type} for c in columns]
    estimator = DummyClassifier().fit(np.zeros((len(frame), 1)), frame["churned"])
    save_artifact(directory, estimator, {"profile": profile, "features": features})


def test_model_profile_source_uses_psi_only(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # given a model trained on the reference distribution, and shifted data
    project = make_project(rows=2000, frame=churn_frame(2000, 3, shift=0.5))
    model = tmp_path / "model"
    _artefact(model, churn_frame(2000, 50), project)

    # when
    code, _, report = _drift(project, capsys, "--model", str(model))

    # then
    assert code == 1, f"shifted data must drift against the model's profile, got exit {code}"
    assert report["source"] == "profile" and report["reference"] == str(model)
    assert all(f["ks_statistic"] is None for f in report["features"]), "no raw reference rows, so no KS"
    assert {"tenure_months", "total_charges"} <= set(report["drifted"]), report["drifted"]


def test_model_profile_source_passes_same_distribution(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = make_project(rows=2000)
    model = tmp_path / "model"
    _artefact(model, churn_frame(2000, 50), project)

    code, _, report = _drift(project, capsys, "--model", str(model))

    assert code == 0, f"same distribution must pass against a profile; drifted {report['drifted']}"
    assert {f["feature"] for f in report["features"]} >= {"has_partner", "contract", "tenure_months"}


def test_model_without_profile_is_bad_input(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # given an artefact without a profile
    project = make_project(rows=200)
    model = tmp_path / "model"
    save_artifact(model, DummyClassifier().fit([[0], [1]], [0, 1]), {})

    # when
    code, err, _ = _drift(project, capsys, "--model", str(model))

    # then
    assert code == 2 and "no data profile" in err, f"expected exit 2 naming the missing profile: {code} {err}"
    assert not (project.out / "drift.json").exists()


def test_missing_reference_is_bad_input(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(rows=200)

    code, err, _ = _drift(project, capsys, "--reference", str(project.root / "nope.csv"))

    assert code == 2 and "data file not found" in err, f"{code} {err}"
    assert not project.out.exists(), "nothing may be written on bad input"

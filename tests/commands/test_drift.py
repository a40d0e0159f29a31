"""The drift command: a table against a reference CSV or a model's stored profile, drift.json, exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from model.artifact import save_artifact
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.core.synth import churn_frame
from tests.conftest import Project, model_metadata, run_cli, write_project

MakeProject = Callable[..., Project]
SHIFTED = {"tenure_months", "monthly_charges", "total_charges"}  # what synth's shift moves


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


def _artefact(root: Path, frame: pd.DataFrame) -> Path:
    """Train a real model on ``frame`` (the reference distribution); return its artefact directory."""
    project = write_project(root, frame=frame)
    return run_cli(project, "train") / "model"


def test_model_profile_source_uses_psi_only(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # given a model trained on the reference distribution, and shifted data
    project = make_project(rows=2000, frame=churn_frame(2000, 3, shift=0.5))
    model = _artefact(tmp_path / "reference-model", churn_frame(2000, 50))

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
    model = _artefact(tmp_path / "reference-model", churn_frame(2000, 50))

    code, _, report = _drift(project, capsys, "--model", str(model))

    assert code == 0, f"same distribution must pass against a profile; drifted {report['drifted']}"
    assert {f["feature"] for f in report["features"]} >= {"has_partner", "contract", "tenure_months"}


def test_model_without_profile_is_bad_input(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # given an artefact without a profile
    project = make_project(rows=200)
    model = tmp_path / "model"
    save_artifact(model, DummyClassifier().fit([[0], [1]], [0, 1]), model_metadata(profile={}))

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

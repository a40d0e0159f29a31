"""The drift command: a table against a reference CSV or a model's stored profile, drift.json, exit codes."""

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
    assert features["tenure_months"]["method"] == "wasserstein", "large numeric samples get a distance"
    assert features["contract"]["method"] == "jensen_shannon", features["contract"]
    assert report["label"]["feature"] == "churned" and report["label"]["drifted"] is False


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


def test_model_profile_source_compares_numbers_over_the_profile_bins(
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
    numeric = [f for f in report["features"] if f["kind"] == "numeric"]
    assert all(f["method"] in ("chi2", "jensen_shannon") for f in numeric), "no raw reference rows: bins"
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


def test_small_samples_are_tested_with_corrected_p_values(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given 300 shifted rows against a 300-row reference: each side small enough for a test
    shifted = make_project(rows=300, frame=churn_frame(300, 3, shift=0.5), name="shifted")
    same = make_project(rows=300, name="same")

    code, err, report = _drift(shifted, capsys)
    same_code, _, same_report = _drift(same, capsys)

    # then KS / chi-squared decide, on adjusted p-values, and name what moved
    methods = {f["feature"]: f["method"] for f in report["features"]}
    assert methods["tenure_months"] == "ks" and methods["contract"] == "chi2", methods
    assert code == 1 and {"tenure_months", "monthly_charges"} <= set(report["drifted"]), report["drifted"]
    assert "tenure_months (KS p" in err and "adjusted" in err, err
    assert same_code == 0 and same_report["drifted"] == [], same_report["drifted"]
    assert all(f["p_adjusted"] >= f["p_value"] for f in same_report["features"]), "BH never lowers a p-value"


def _churn_rate(frame: pd.DataFrame, rate: float, seed: int = 9) -> pd.DataFrame:
    frame = frame.copy()
    frame["churned"] = (np.random.default_rng(seed).random(len(frame)) < rate).astype(int)
    return frame


def test_a_shifted_label_mix_fails_and_a_stable_one_passes(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the same features, the churn rate moved from about a quarter to 60%
    moved = make_project(rows=2000, frame=_churn_rate(churn_frame(2000, 3), 0.6), name="moved")
    stable = make_project(rows=2000, name="stable")

    code, err, report = _drift(moved, capsys)
    stable_code, _, stable_report = _drift(stable, capsys)

    assert report["drifted"] == [] and report["label"]["drifted"] is True, report["label"]
    assert code == 1 and err.startswith("error: label drift: 'churned' drifted (Jensen-Shannon"), err
    assert stable_code == 0 and stable_report["label"]["drifted"] is False


def test_the_models_predictions_on_new_data_are_compared_with_its_held_out_ones(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # given a model trained on the reference distribution; new data shifted, and not
    def gate_predictions(raw: dict[str, Any]) -> None:
        raw["gates"]["prediction_drift"] = {"required": True}

    model = _artefact(tmp_path / "reference-model", churn_frame(3000, 50))
    shifted = make_project(
        rows=3000, frame=churn_frame(3000, 3, shift=0.8), config=gate_predictions, name="shifted"
    )
    same = make_project(rows=3000, config=gate_predictions, name="same")

    _, _, report = _drift(shifted, capsys, "--model", str(model))
    same_code, _, same_report = _drift(same, capsys, "--model", str(model))

    assert report["prediction"]["feature"] == "predictions" and report["prediction"]["drifted"] is True
    assert same_report["prediction"]["drifted"] is False and same_code == 0, same_report["prediction"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_overfit_forests_predictions_on_an_unchanged_table_are_stable(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    # given a forest grown to pure leaves (it answers its training rows with near certainty), trained
    # on the whole table; the drift reference is that same table, as init writes it
    def overfit(raw: dict[str, Any]) -> None:
        raw["model"] = {"kind": "random_forest", "params": {"n_estimators": 100, "min_samples_leaf": 1}}
        raw["gates"]["prediction_drift"] = {"required": True}

    project = make_project(rows=4000, seed=seed, config=overfit, name=f"overfit-{seed}")
    project.reference.write_bytes(project.data.read_bytes())
    run_cli(project, "validate", "train", "evaluate")

    # when: the model's predictions on an identical copy of its table, and the gate's comparison
    code, err, report = _drift(project, capsys, "--model", str(project.out / "model"))
    gate_code = main(project.cli("gate", "--champion", str(project.root / "no-champion")))
    gates = {g["name"]: g for g in json.loads((project.out / "gates.json").read_text())["gates"]}

    # then: like with like (rows it never trained on), no drift; before, both said it drifted
    assert report["prediction"]["drifted"] is False and code == 0, report["prediction"]
    assert "training side left out" in err
    assert gates["prediction_drift"]["status"] == "passed", gates["prediction_drift"]
    assert gate_code == 0, [g for g in gates.values() if g["status"] != "passed"]


def test_a_required_prediction_drift_that_could_not_be_compared_fails_and_an_advisory_one_says_why(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a model split by customer_id, and new data without that column: no row's side is known
    def required(raw: dict[str, Any]) -> None:
        raw["gates"]["prediction_drift"] = {"required": True}

    project = make_project(rows=800, config=required, name="required")
    run_cli(project, "train")
    pd.read_csv(project.data).drop(columns="customer_id").to_csv(project.root / "no-ids.csv", index=False)

    # when
    code, err, report = _drift(
        project, capsys, "--model", str(project.out / "model"), "--data", str(project.root / "no-ids.csv")
    )
    advisory = make_project(rows=800, name="advisory")
    run_cli(advisory, "train")
    advisory_code, advisory_err, _ = _drift(
        advisory, capsys, "--model", str(advisory.out / "model"), "--data", str(project.root / "no-ids.csv")
    )

    # then: nothing compared is never "within limits" for a required check
    assert code == 1 and report["prediction"] is None, err
    assert "prediction drift (required) not compared: cannot tell which rows" in err
    assert advisory_code == 0 and "predictions not compared: cannot tell which rows" in advisory_err

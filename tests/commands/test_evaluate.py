"""Evaluation: metrics.json for binary, string-labelled, multiclass and regression models."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

from pipeline.cli import main
from pipeline.core.metrics import metric_names
from pipeline.core.synth import churn_frame
from tests.conftest import Project, default_config_dict, dump_toml, metadata_json

CLASSIFICATION = metric_names("classification")
REGRESSION = metric_names("regression")

MakeProject = Callable[..., Project]


def train_and_evaluate(project: Project, *evaluate_args: str) -> dict[str, Any]:
    """Train and evaluate ``project``; return metrics.json."""
    assert main(project.cli("train")) == 0, "train failed"
    assert main(project.cli("evaluate", *evaluate_args)) == 0, "evaluate failed"
    return json.loads((project.out / "metrics.json").read_text())


def test_binary_metrics_cover_overall_classes_slices_latency_and_distribution(
    make_project: MakeProject,
) -> None:
    # given a churn project whose slices need 40 rows (so some region values are skipped)
    project = make_project(rows=600, config=lambda c: c["slices"].update(min_rows=40))

    # when
    metrics = train_and_evaluate(project)

    # then: every held-out row is scored
    held_out = metadata_json(project.out / "model")["holdout_rows"]
    assert metrics["task"] == "classification" and metrics["rows"] == held_out
    assert set(metrics["overall"]) == set(CLASSIFICATION)
    assert all(v is not None for v in metrics["overall"].values()), f"undefined metric: {metrics['overall']}"
    assert set(metrics["per_class"]) == {"0", "1"}
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == held_out
    assert set(metrics["slices"]) == {"contract", "region"}
    for column, groups in metrics["slices"].items():
        assert sum(g["rows"] for g in groups.values()) == held_out, (
            f"slices of {column} do not cover every row"
        )
        for value, group in groups.items():
            if group["rows"] < 40:
                assert "skipped" in group and "accuracy" not in group, f"{column}={value} was scored"
            else:
                assert "roc_auc" in group and "skipped" not in group, f"{column}={value} was not scored"
    assert "latency" not in metrics, "latency varies from run to run: the gate step times it, not evaluate"
    assert set(metrics["prediction_distribution"]) == {"0", "1"}
    assert sum(metrics["prediction_distribution"].values()) == pytest.approx(1.0)


def test_string_target_and_text_categoricals_train_and_evaluate(make_project: MakeProject) -> None:
    # given a "Yes"/"No" target and a "Yes"/"No" boolean column, as in the Telco churn data
    frame = churn_frame(600, 8)
    frame["churned"] = frame["churned"].map({1: "Yes", 0: "No"})
    frame["has_partner"] = frame["has_partner"].map({True: "Yes", False: "No"})

    def edit(c: dict[str, Any]) -> None:
        c["data"]["positive_label"] = "Yes"
        c["schema"]["labels"] = ["No", "Yes"]
        c["schema"]["columns"]["churned"] = {
            "type": "categorical",
            "allowed": ["No", "Yes"],
            "nullable": False,
        }

    project = make_project(frame=frame, config=edit)

    # when
    metrics = train_and_evaluate(project)

    # then
    metadata = json.loads((project.out / "model" / "metadata.json").read_text())
    assert metadata["labels"] == ["No", "Yes"] and metadata["positive_label"] == "Yes"
    assert set(metrics["per_class"]) == {"No", "Yes"}
    assert metrics["overall"]["roc_auc"] > 0.7, (
        f"the string-labelled model learned little: {metrics['overall']}"
    )


def test_multiclass_target(make_project: MakeProject) -> None:
    # given the contract type (three classes) as the target
    def edit(c: dict[str, Any]) -> None:
        c["data"]["target"] = "contract"
        del c["data"]["positive_label"]
        del c["schema"]["labels"]
        c["slices"]["columns"] = ["region"]

    project = make_project(rows=600, config=edit)

    # when
    metrics = train_and_evaluate(project)

    # then
    labels = ["month_to_month", "one_year", "two_year"]
    assert metrics["confusion_matrix"]["labels"] == labels
    assert len(metrics["confusion_matrix"]["matrix"]) == 3
    assert set(metrics["per_class"]) == set(labels)
    assert metrics["overall"]["roc_auc"] is not None, "multiclass ROC AUC (one-vs-rest) is missing"
    assert set(metrics["prediction_distribution"]) == set(labels)


@pytest.mark.parametrize("kind", ["linear_regression", "ridge"])
def test_regression_on_the_diabetes_data(tmp_path: Path, kind: str) -> None:
    # given sklearn's diabetes table with a hand-written all-numeric schema
    frame = load_diabetes(as_frame=True).frame
    data = tmp_path / "diabetes.csv"
    frame.to_csv(data, index=False)
    columns = {name: {"type": "numeric", "nullable": False} for name in frame.columns}
    config = {
        "data": {"path": str(data), "target": "target", "task": "regression"},
        "schema": {"min_rows": 50, "columns": columns},
        "model": {"kind": kind},
        "training": {"sample_rows": 0, "seed": 1},
        "slices": {"columns": ["sex"], "min_rows": 30},
        "gates": {"latency": {"samples": 20}},
    }
    path = tmp_path / "diabetes.toml"
    path.write_text(dump_toml(config))
    out = tmp_path / "out"

    # when
    trained = main(["train", "--config", str(path), "--out", str(out)])
    evaluated = main(["evaluate", "--config", str(path), "--out", str(out)])

    # then
    assert trained == 0 and evaluated == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["overall"]) == set(REGRESSION)
    assert metrics["overall"]["r2"] > 0.3, (
        f"a linear model should explain the diabetes target: {metrics['overall']}"
    )
    assert metrics["per_class"] is None and metrics["confusion_matrix"] is None
    assert set(metrics["prediction_distribution"]) == {"mean", "std", "p05", "p50", "p95"}
    assert len(metrics["slices"]["sex"]) == 2 and all("mae" in g for g in metrics["slices"]["sex"].values())


def test_evaluate_scores_another_table_given_with_data(make_project: MakeProject) -> None:
    # given a trained model and a fresh table with the target
    project = make_project(rows=400)
    other = project.root / "fresh.csv"
    churn_frame(300, 21).to_csv(other, index=False)

    # when
    metrics = train_and_evaluate(project, "--data", str(other))

    # then
    assert metrics["rows"] == 300


def test_missing_model_is_exit_2_without_metrics(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a project that was never trained
    project = make_project(rows=200)

    # when
    code = main(project.cli("evaluate"))

    # then
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "Traceback" not in err, err
    assert not (project.out / "metrics.json").exists()


def test_tampered_model_is_refused(make_project: MakeProject, capsys: pytest.CaptureFixture[str]) -> None:
    # given a trained model whose file was changed afterwards
    project = make_project(rows=300)
    assert main(project.cli("train")) == 0
    model_file = project.out / "model" / "model.joblib"
    model_file.write_bytes(model_file.read_bytes() + b"x")

    # when
    code = main(project.cli("evaluate"))

    # then
    assert code == 2 and "sha256" in capsys.readouterr().err
    assert not (project.out / "metrics.json").exists()


def test_held_out_rows_from_another_run_are_refused(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a model next to held-out rows of a different size
    project = make_project(rows=400)
    assert main(project.cli("train")) == 0
    holdout = pd.read_parquet(project.out / "holdout.parquet")
    holdout.iloc[:50].to_parquet(project.out / "holdout.parquet", index=False)

    # when
    code = main(project.cli("evaluate"))

    # then
    assert code == 2 and "held-out rows" in capsys.readouterr().err
    assert not (project.out / "metrics.json").exists()


def test_unknown_slice_column_is_named(make_project: MakeProject, capsys: pytest.CaptureFixture[str]) -> None:
    # given a trained model and a config slicing by a column that does not exist
    project = make_project(rows=300)
    assert main(project.cli("train")) == 0
    raw = default_config_dict()
    raw["data"]["path"] = str(project.data)
    raw["slices"]["columns"] = ["planet"]
    raw["gates"]["latency"].update(samples=20)
    project.config.write_text(dump_toml(raw))

    # when
    code = main(project.cli("evaluate"))

    # then
    assert code == 2 and "'planet'" in capsys.readouterr().err
    assert not (project.out / "metrics.json").exists()

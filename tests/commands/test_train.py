"""Training: artefact contents, sampling and splitting, reproducibility, input checks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from model.artifact import load_artifact
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.core.synth import churn_frame
from tests.conftest import Project, metadata_json

MakeProject = Callable[..., Project]

METADATA_KEYS = {
    "schema_version",
    "needs",
    "compiled",
    "out_of_range",
    "baseline",
    "run",
    "split",
    "validated",
    "task",
    "target",
    "labels",
    "positive_label",
    "features",
    "id_columns",
    "kind",
    "params",
    "data_sha256",
    "config_sha256",
    "git_commit",
    "created_at",
    "train_rows",
    "holdout_rows",
    "seed",
    "profile",
    "model_sha256",
    "sklearn_version",
    "python_version",
    "model_file",
}


def train(project: Project, *extra: str, out: Path | None = None) -> int:
    """Run ``train`` for ``project`` (into ``out`` when given) and return its exit code."""
    argv = project.cli("train", *extra)
    if out is not None:
        argv[-1] = str(out)
    return main(argv)


def evaluated(project: Project, out: Path) -> dict[str, Any]:
    """Run ``evaluate`` on ``out`` and return metrics.json."""
    argv = ["evaluate", "--config", str(project.config), "--out", str(out)]
    assert main(argv) == 0, "evaluate failed"
    return json.loads((out / "metrics.json").read_text())


def test_train_writes_the_artefact_and_the_held_out_rows(make_project: MakeProject) -> None:
    # given a seeded 800-row churn project that trains on all rows
    project = make_project(rows=800)

    # when
    code = train(project)

    # then
    assert code == 0, "train failed on valid input"
    metadata = metadata_json(project.out / "model")
    assert set(metadata) == METADATA_KEYS, (
        f"metadata keys differ from the contract: {set(metadata) ^ METADATA_KEYS}"
    )
    config = load_config(project.config)
    assert [f["name"] for f in metadata["features"]] == list(config.feature_columns)
    assert metadata["labels"] == [0, 1] and metadata["positive_label"] == 1
    assert metadata["train_rows"] + metadata["holdout_rows"] == 800, "every row must be train or held out"
    assert 160 <= metadata["holdout_rows"] <= 240, "test_fraction 0.25 of 800 rows should hold out about 200"
    assert metadata["split"] == {"key": ["customer_id"], "salt": "ml-cicd", "fraction": 0.25}, metadata[
        "split"
    ]
    assert metadata["validated"] is True
    assert metadata["id_columns"] == ["customer_id"] and metadata["kind"] == "logistic_regression"
    profile = metadata["profile"]
    assert {"tenure_months", "monthly_charges", "support_calls"} <= set(profile["numeric"]), "numeric profile"
    assert {"contract", "region"} <= set(profile["categorical"]), "categorical profile is missing"
    assert "customer_id" not in profile["categorical"], "the id column must not be profiled as a feature"
    holdout = pd.read_parquet(project.out / "holdout.parquet")
    assert len(holdout) == metadata["holdout_rows"]
    assert {"customer_id", "churned"} <= set(holdout.columns), "held-out rows must keep ids and the target"
    assert not any(str(c).startswith("__index") for c in holdout.columns), "the index must not be written"
    estimator, _ = load_artifact(project.out / "model")
    assert list(estimator.classes_) == [0, 1]
    assert metadata["out_of_range"] == "count"
    compiled = metadata["compiled"]
    assert compiled["status"] == "passed" and compiled["file"] == "model.onnx", compiled
    onnx = (project.out / "model" / "model.onnx").read_bytes()
    assert compiled["sha256"] == hashlib.sha256(onnx).hexdigest()
    parity = compiled["parity"]
    assert parity["rows"] == metadata["holdout_rows"] and parity["label_flips"] == 0
    assert parity["max_abs_diff"] <= parity["limit"] == 1e-5


def test_sample_rows_samples_the_train_side_and_keeps_the_whole_held_out_side(
    make_project: MakeProject,
) -> None:
    # given a project sampling 400 of 800 rows (test_fraction 0.25)
    project = make_project(rows=800, config=lambda c: c["training"].update(sample_rows=400))

    # when
    assert train(project) == 0
    sampled = metadata_json(project.out / "model")
    held = pd.read_parquet(project.out / "holdout.parquet")
    assert train(project, "--full") == 0
    full = metadata_json(project.out / "model")
    held_full = pd.read_parquet(project.out / "holdout.parquet")

    # then: the train side is its share of the sample; the held-out side is whole, the same rows either way
    assert sampled["train_rows"] == 300, "sample_rows=400 should train on 400 * 0.75 rows"
    assert full["train_rows"] + full["holdout_rows"] == 800, "--full should use every row"
    assert sampled["holdout_rows"] == full["holdout_rows"] == len(held), (
        "the held-out side must be kept whole"
    )
    assert held["customer_id"].tolist() == held_full["customer_id"].tolist()


def test_same_inputs_give_the_same_model_file_and_metrics(make_project: MakeProject) -> None:
    # given one project (a random forest, so seeds matter) trained into two directories
    project = make_project(
        rows=600,
        config=lambda c: c.update(model={"kind": "random_forest", "params": {"n_estimators": 20}}),
    )
    first, second = project.root / "first", project.root / "second"

    # when
    assert train(project, out=first) == 0
    assert train(project, out=second) == 0
    one, two = evaluated(project, first), evaluated(project, second)

    # then
    sha_one = metadata_json(first / "model")["model_sha256"]
    assert sha_one == metadata_json(second / "model")["model_sha256"], (
        "same inputs gave different model files"
    )
    assert (first / "model" / "model.joblib").read_bytes() == (second / "model" / "model.joblib").read_bytes()
    assert one.pop("run") != two.pop("run"), "each evaluate names its own run"
    assert one == two, "same inputs gave different metrics"
    assert (first / "holdout.parquet").read_bytes() == (second / "holdout.parquet").read_bytes()


def test_another_seed_gives_another_model(make_project: MakeProject) -> None:
    # given the same project with two seeds
    def forest(seed: int) -> Callable[[dict[str, Any]], None]:
        def edit(c: dict[str, Any]) -> None:
            c["model"] = {"kind": "random_forest", "params": {"n_estimators": 10}}
            c["training"]["seed"] = seed

        return edit

    one = make_project(rows=400, config=forest(1), name="one")
    two = make_project(rows=400, config=forest(2), name="two")

    # when
    assert train(one) == 0 and train(two) == 0

    # then
    sha = {metadata_json(p.out / "model")["model_sha256"] for p in (one, two)}
    assert len(sha) == 2, "the seed had no effect on the model, so the reproducibility test proves nothing"


def test_rows_with_a_null_target_are_dropped_with_a_note(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given 10 of 400 rows without a target
    frame = churn_frame(400, 5)
    frame["churned"] = frame["churned"].astype(float)
    frame.loc[:9, "churned"] = np.nan
    project = make_project(
        frame=frame,
        config=lambda c: c["schema"]["columns"]["churned"].update(nullable=True, max_null_fraction=0.05),
    )

    # when
    code = train(project)

    # then
    assert code == 0
    metadata = metadata_json(project.out / "model")
    assert metadata["train_rows"] + metadata["holdout_rows"] == 390
    assert metadata["labels"] == [0, 1], "a target with nulls read as float must keep integer labels"
    assert "dropped 10 rows with a null target 'churned'" in capsys.readouterr().err


def test_git_commit_comes_from_the_environment_or_is_null_outside_git(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given a project, trained once with GIT_COMMIT set and once outside any git work tree
    project = make_project(rows=300)
    monkeypatch.setenv("GIT_COMMIT", "abc123")
    assert train(project) == 0
    from_env = metadata_json(project.out / "model")["git_commit"]
    monkeypatch.delenv("GIT_COMMIT")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.chdir(tmp_path)

    # when
    assert train(project) == 0

    # then
    assert from_env == "abc123"
    assert metadata_json(project.out / "model")["git_commit"] is None


def test_columns_outside_the_schema_are_an_error_unless_allowed(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a table with a column the schema does not list
    frame = churn_frame(300, 4).assign(favourite_colour="blue")
    strict = make_project(frame=frame, name="strict")
    lenient = make_project(
        frame=frame, name="lenient", config=lambda c: c["schema"].update(allow_unexpected_columns=True)
    )

    # when
    strict_code = train(strict)
    strict_err = capsys.readouterr().err
    lenient_code = train(lenient)
    lenient_err = capsys.readouterr().err

    # then
    assert strict_code == 2 and "favourite_colour" in strict_err, strict_err
    assert not strict.out.exists()
    assert lenient_code == 0, lenient_err
    assert "ignoring column(s) not in the schema: favourite_colour" in lenient_err
    names = [f["name"] for f in metadata_json(lenient.out / "model")["features"]]
    assert "favourite_colour" not in names


@pytest.mark.parametrize(
    ("params", "named"),
    [({"C": -1.0}, "'C'"), ({"colour": "red"}, "colour"), ({"max_iter": "many"}, "'max_iter'")],
)
def test_invalid_model_params_are_config_errors_naming_the_param(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], params: dict[str, Any], named: str
) -> None:
    # given a logistic regression with a bad parameter
    project = make_project(rows=300, config=lambda c: c["model"].update(params=params))

    # when
    code = train(project)

    # then
    err = capsys.readouterr().err
    assert code == 2, err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "model.params" in error_lines[0] and named in error_lines[0], err
    assert not project.out.exists(), "a failed train must not create the output directory"


def test_a_failed_train_keeps_the_previous_outputs(make_project: MakeProject) -> None:
    # given a successful train, then a config with an unknown model kind
    project = make_project(rows=300)
    assert train(project) == 0
    before = metadata_json(project.out / "model")["model_sha256"]
    holdout = (project.out / "holdout.parquet").read_bytes()
    text = project.config.read_text().replace('kind = "logistic_regression"', 'kind = "oracle"')
    project.config.write_text(text)

    # when
    code = train(project)

    # then
    assert code == 2
    assert metadata_json(project.out / "model")["model_sha256"] == before, "the previous model was replaced"
    assert (project.out / "holdout.parquet").read_bytes() == holdout, "the previous held-out rows changed"


def test_data_option_overrides_the_configured_table(make_project: MakeProject) -> None:
    # given a second, smaller table next to the configured one
    project = make_project(rows=600)
    other = project.root / "other.csv"
    churn_frame(200, 9).to_csv(other, index=False)

    # when
    code = train(project, "--data", str(other))

    # then
    assert code == 0
    metadata = metadata_json(project.out / "model")
    assert metadata["train_rows"] + metadata["holdout_rows"] == 200, "--data was not used"


def test_text_in_a_numeric_feature_names_the_column(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a numeric column with a word in it
    frame = churn_frame(300, 4)
    frame["support_calls"] = frame["support_calls"].astype(object)
    frame.loc[3, "support_calls"] = "several"
    project = make_project(frame=frame)

    # when
    code = train(project)

    # then
    err = capsys.readouterr().err
    assert code == 2 and "'support_calls'" in err and "'several'" in err, err
    assert not project.out.exists()


def test_positive_label_must_be_a_target_value(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given positive_label "yes" for a 0/1 target
    project = make_project(rows=300, config=lambda c: c["data"].update(positive_label="yes"))

    # when
    code = train(project)

    # then
    err = capsys.readouterr().err
    assert code == 2 and "data.positive_label 'yes'" in err, err
    assert not project.out.exists()

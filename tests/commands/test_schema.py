"""``schema infer``: TOML that loads with the config parser and makes ``validate`` pass on its table."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

from pipeline.cli import main
from pipeline.commands.schema import infer_toml
from pipeline.config import Config, parse_config
from pipeline.core.schema import InferOptions
from pipeline.core.synth import churn_frame
from pipeline.render.toml import toml_key
from tests.conftest import REPO


def _infer(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[str, Config]:
    """Run ``schema infer`` and return its stdout and the parsed config."""
    capsys.readouterr()
    code = main(["schema", "infer", str(data), *args])
    captured = capsys.readouterr()
    assert code == 0, f"schema infer failed with {code}: {captured.err}"
    return captured.out, parse_config(tomllib.loads(captured.out), origin="inferred")


def _validate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, toml: str
) -> tuple[int, dict[str, Any], str]:
    config = tmp_path / "inferred.toml"
    config.write_text(toml)
    out = tmp_path / "out"
    capsys.readouterr()
    code = main(["validate", "--config", str(config), "--out", str(out)])
    err = capsys.readouterr().err
    return code, json.loads((out / "validation.json").read_text()), err


def test_string_target_and_text_categoricals(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # given a table with a Yes/No target, text flags and text categoricals
    frame = churn_frame(600, 21)
    frame["churned"] = frame["churned"].map({1: "Yes", 0: "No"})
    frame["has_partner"] = frame["has_partner"].map({True: "yes", False: "no"})
    data = tmp_path / "telco.csv"
    frame.to_csv(data, index=False)

    # when
    toml, config = _infer(capsys, data, "--target", "churned")

    # then: a classification config that the same table passes
    assert config.data.task == "classification" and config.data.target == "churned"
    assert config.schema.labels == ("No", "Yes") and config.data.positive_label == "Yes", config.schema.labels
    assert config.data.id_columns == ("customer_id",), "unique text ids must be suggested as id columns"
    contract = config.schema.column("contract")
    assert contract is not None and contract.type == "categorical"
    assert contract.allowed == ("month_to_month", "one_year", "two_year"), contract
    total = config.schema.column("total_charges")
    assert total is not None and total.type == "numeric" and total.nullable and total.max_null_fraction < 0.1
    tenure = config.schema.column("tenure_months")
    assert tenure is not None and tenure.nullable is False and tenure.min == 0, tenure
    code, report, err = _validate(capsys, tmp_path, toml)
    assert code == 0 and report["passed"], (
        f"the inferred schema must pass its own table: {report['failures']} {err}"
    )


def test_diabetes_regression(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # given sklearn's diabetes data (shipped with sklearn, no download)
    frame = load_diabetes(as_frame=True).frame
    data = tmp_path / "diabetes.csv"
    frame.to_csv(data, index=False)

    # when
    toml, config = _infer(capsys, data, "--target", "target", "--task", "regression")

    # then
    assert config.data.task == "regression" and config.schema.labels is None
    assert config.data.id_columns == (), "no diabetes column is an id"
    assert len(config.feature_columns) == 10, config.feature_columns
    for column in config.schema.columns:
        assert column.type == "numeric" and column.min is not None and column.max is not None, column
        assert column.min <= frame[column.name].min() and column.max >= frame[column.name].max(), column
    code, report, err = _validate(capsys, tmp_path, toml)
    assert code == 0 and report["passed"], (
        f"the inferred schema must pass its own table: {report['failures']} {err}"
    )


def test_task_is_guessed_from_the_target(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    frame = load_diabetes(as_frame=True).frame
    data = tmp_path / "diabetes.csv"
    frame.to_csv(data, index=False)

    _, regression = _infer(capsys, data, "--target", "target")
    _, classification = _infer(capsys, REPO / "data" / "churn.csv", "--target", "churned")

    assert regression.data.task == "regression"
    assert classification.data.task == "classification" and classification.schema.labels == (0, 1)


def test_awkward_column_names_and_values_round_trip_through_toml() -> None:
    # given names and categories that need quoting
    frame = pd.DataFrame(
        {
            'plan "name"': ['a"b', "c\\d", "é"] * 10,
            "monthly fee": np.linspace(1.5, 30.0, 30),
            "y": [0, 1, 1] * 10,
        }
    )

    # when
    toml = infer_toml(frame, "data/odd table.csv", "y", InferOptions(margin=0))
    config = parse_config(tomllib.loads(toml))

    # then
    plan = config.schema.column('plan "name"')
    assert plan is not None and plan.allowed == ('a"b', "c\\d", "é"), plan
    fee = config.schema.column("monthly fee")
    assert fee is not None and (fee.min, fee.max) == (1.5, 30.0), "margin 0 keeps the observed range"
    assert config.data.path == "data/odd table.csv"
    assert toml_key("ok_name-1") == "ok_name-1" and toml_key("a b") == '"a b"'


def test_missing_target_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "t.csv"
    churn_frame(50, 1).to_csv(data, index=False)

    code = main(["schema", "infer", str(data), "--target", "nope"])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "target column 'nope' not found" in err, (code, err)


def test_infer_requires_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["schema"])

    assert exited.value.code == 2, "argparse must reject `schema` without `infer`"
    assert "infer" in capsys.readouterr().err

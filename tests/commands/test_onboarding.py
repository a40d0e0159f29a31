"""Onboarding a new table end to end: ``init`` (or ``schema infer`` and a hand-made config) -> ``run`` passes.

Beyond the bundled churn table: a string target ("Yes"/"No") with text categoricals,
and a regression (scikit-learn's diabetes data, shipped inside the package). ``init`` writes
limits for fresh data and names each one it loosened to fit the table; whether fresh data
passes them is ``tests/commands/test_defaults.py``'s.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.core.synth import churn_frame
from tests.conftest import diabetes_table, realistic_cancer, telco_table, wine_table


def _onboard(
    data: Path, target: str, extra_toml: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, Path, str]:
    """Infer the schema of ``data``, append ``extra_toml``, run the pipeline; return (code, out, stderr)."""
    assert main(["schema", "infer", str(data), "--target", target]) == 0
    inferred = capsys.readouterr().out
    config = tmp_path / "pipeline.toml"
    config.write_text(inferred + "\n" + extra_toml + f'\n[registry]\npath = "{tmp_path / "registry"}"\n')
    out = tmp_path / "out"
    argv = ["run", "--config", str(config), "--out", str(out), "--skip", "lint,test", "--image", "never"]
    code = main([*argv, "--cache-dir", str(tmp_path / "cache")])
    return code, out, capsys.readouterr().err


@pytest.mark.slow
def test_string_target_and_text_categoricals_onboard_and_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: a churn table whose target and flags are text
    frame = churn_frame(1500, seed=21)
    frame["churned"] = frame["churned"].map({1: "Yes", 0: "No"})
    frame["has_partner"] = frame["has_partner"].map({True: "yes", False: "no"})
    data = tmp_path / "telco.csv"
    frame.to_csv(data, index=False)
    extra = """
[model]
kind = "random_forest"
[model.params]
n_estimators = 60
min_samples_leaf = 5

[[gates.metric]]
metric = "roc_auc"
threshold = 0.7

[slices]
columns = ["contract"]
"""

    # when
    code, out, err = _onboard(data, "churned", extra, tmp_path, capsys)

    # then
    assert code == 0, err
    metadata = json.loads((out / "model" / "metadata.json").read_text())
    assert metadata["labels"] == ["No", "Yes"]
    assert metadata["positive_label"] == "Yes", "the inferred positive label should be 'Yes'"
    gates = json.loads((out / "gates.json").read_text())
    assert gates["passed"] and any(
        g["name"] == "metric:roc_auc" and g["status"] == "passed" for g in gates["gates"]
    )


@pytest.mark.slow
def testdiabetes_table_regression_onboards_and_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: scikit-learn's diabetes table (regression)
    from sklearn.datasets import load_diabetes

    frame: pd.DataFrame = load_diabetes(as_frame=True).frame
    data = tmp_path / "diabetes.csv"
    frame.to_csv(data, index=False)
    extra = """
[model]
kind = "ridge"
[model.params]
alpha = 1.0

[training]
sample_rows = 0
test_fraction = 0.3
stratify = false

[[gates.metric]]
metric = "r2"
threshold = 0.3

[[gates.metric]]
metric = "rmse"
threshold = 70
direction = "lower"
"""

    # when
    code, out, err = _onboard(data, "target", extra, tmp_path, capsys)

    # then
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "regression"
    assert metrics["overall"]["r2"] > 0.3
    assert (out / "residuals.png").read_bytes().startswith(b"\x89PNG"), (
        "regression report needs a residual plot"
    )


# ---------------------------------------------------------------------------------------------
# `init` then `run`, with no hand edits, on tables made from datasets scikit-learn ships.


@pytest.mark.slow
@pytest.mark.parametrize(
    ("table", "target", "task"),
    [
        (realistic_cancer, "diagnosis", "classification"),
        (wine_table, "cultivar", "classification"),
        (diabetes_table, "target", "regression"),
        (telco_table, "churned", "classification"),
    ],
    ids=["breast-cancer-text-target", "wine-multiclass", "diabetes-regression", "telco-yes-no"],
)
def test_init_then_run_passes_with_no_edits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: Any, target: str, task: str
) -> None:
    # given: a table written as a user has it, and nothing else
    frame = table()
    data = tmp_path / "table.csv"
    frame.to_csv(data, index=False)
    config = tmp_path / "configs" / "model.toml"
    config.parent.mkdir()

    # when: init writes the config, and run runs it as written
    assert main(["init", str(data), "--target", target, "--config", str(config)]) == 0
    init_err = capsys.readouterr().err
    out = tmp_path / "out"
    argv = ["run", "--config", str(config), "--out", str(out), "--skip", "lint,test", "--image", "never"]
    code = main([*argv, "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err

    # then: it passes, the task is right, and the drift gate compared every feature
    assert code == 0, err
    assert f"task: {task}" in init_err
    metadata = json.loads((out / "model" / "metadata.json").read_text())
    drift = json.loads((out / "drift.json").read_text())
    assert drift["status"] == "passed" and drift["missing"] == []
    assert {f["feature"] for f in drift["features"]} == {f["name"] for f in metadata["features"]}
    assert (config.parent / "model_reference.csv").is_file() and (config.parent / "model_registry").is_dir()


def test_init_says_which_positive_label_and_why_and_types_flags_as_boolean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = realistic_cancer()
    data = tmp_path / "cancer.csv"
    frame.to_csv(data, index=False)

    assert main(["init", str(data), "--target", "diagnosis", "--config", str(tmp_path / "c.toml")]) == 0

    err = capsys.readouterr().err
    written = tomllib.loads((tmp_path / "c.toml").read_text())
    assert written["data"]["positive_label"] == "malignant" and written["data"]["id_columns"] == [
        "patient_id"
    ]
    assert "positive label: 'malignant' (no label reads as yes/1/true; the rarer class (37.3% of rows)" in err
    assert written["schema"]["columns"]["smoker"]["type"] == "boolean", "a 0/1 flag is a boolean"
    assert "boolean (two values spelled as yes/no, true/false or 1/0): smoker" in err


def test_init_warns_when_the_table_is_too_small_for_a_champion_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small, large = tmp_path / "wine.csv", tmp_path / "cancer.csv"
    wine_table().to_csv(small, index=False)
    realistic_cancer().to_csv(large, index=False)

    assert main(["init", str(small), "--target", "cultivar", "--config", str(tmp_path / "w.toml")]) == 0
    small_err = capsys.readouterr().err
    assert main(["init", str(large), "--target", "diagnosis", "--config", str(tmp_path / "c.toml")]) == 0
    large_err = capsys.readouterr().err

    assert "init: warning: about 44 held-out rows (0.25 of 178), fewer than the 100" in small_err, small_err
    assert "warning" not in large_err, large_err


def test_init_refuses_to_overwrite_a_config_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "t.csv"
    churn_frame(300, 1).to_csv(data, index=False)
    config = tmp_path / "c.toml"
    config.write_text("# mine\n")
    argv = ["init", str(data), "--target", "churned", "--config", str(config)]

    refused = main(argv)
    err = capsys.readouterr().err
    forced = main([*argv, "--force"])

    assert refused == 2 and "exists; pass --force" in err and err.count("\n") == 1, err
    assert forced == 0 and config.read_text() != "# mine\n"


def test_init_writes_limits_that_fresh_data_from_the_same_source_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a churn table without nulls in most columns
    data = tmp_path / "churn.csv"
    churn_frame(600, 4).to_csv(data, index=False)

    # when
    assert main(["init", str(data), "--target", "churned", "--config", str(tmp_path / "c.toml")]) == 0

    # then: no column is declared free of nulls from a sample, and the measured defaults are written
    written = tomllib.loads((tmp_path / "c.toml").read_text())
    columns = written["schema"]["columns"]
    assert all("nullable" not in spec for spec in columns.values()), columns
    assert columns["tenure_months"]["max_null_fraction"] == 0.02 and columns["tenure_months"]["min"] == 0
    assert (
        written["schema"]["max_conflicting_fraction"] == 0.002 and written["schema"]["leakage_limit"] == 0.97
    )
    assert written["drift"]["alpha"] == 0.01 and written["drift"]["max_unseen_share"] == 0.01


def test_init_names_every_limit_it_loosened_to_fit_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a table with a rare class and a tenth of its rows repeated, and one with conflicting labels
    rng = np.random.default_rng(6)
    repeated = churn_frame(900, 5).assign(churned=lambda f: (rng.random(len(f)) < 0.03).astype(int))
    repeated = pd.concat([repeated, repeated.iloc[:100]], ignore_index=True)
    conflicting = churn_frame(1000, 7)
    flipped = conflicting.iloc[:10].assign(
        churned=lambda f: 1 - f["churned"], customer_id=lambda f: f["customer_id"] + "x"
    )
    conflicting = pd.concat([conflicting, flipped], ignore_index=True)
    repeated.to_csv(tmp_path / "repeated.csv", index=False)
    conflicting.to_csv(tmp_path / "conflicting.csv", index=False)

    # when
    for name in ("repeated", "conflicting"):
        argv = [
            "init",
            str(tmp_path / f"{name}.csv"),
            "--target",
            "churned",
            "--config",
            str(tmp_path / f"{name}.toml"),
        ]
        assert main(argv) == 0
    errs = capsys.readouterr().err

    # then: each limit moved to fit the table is named, with where it went from and why
    schema = tomllib.loads((tmp_path / "repeated.toml").read_text())["schema"]
    gates = tomllib.loads((tmp_path / "repeated.toml").read_text())["gates"]
    expected = [
        f"init: loosened schema.max_duplicate_fraction to {schema['max_duplicate_fraction']:g} (from 0.05): "
        "10.0% of the rows (100 of 1000) repeat an earlier row exactly",
        f"init: loosened schema.min_class_fraction to {schema['min_class_fraction']:g} (from 0.05): "
        "the rarest class ('1')",
        f"init: loosened gates.collapse.min_class_fraction to {gates['collapse']['min_class_fraction']:g} (from 0.01): "
        "the rarest class ('1') is 2.4% of the rows",
        "init: loosened schema.max_conflicting_fraction to ",
        "(from 0.002): 2.0% of the rows (20 of 1010) have another row's features and another 'churned'",
    ]
    missing = [line for line in expected if line not in errs]
    assert not missing, f"{missing} not in:\n{errs}"
    assert schema["max_duplicate_fraction"] > 0.1 and schema["min_class_fraction"] < 0.05


def test_init_states_the_smallest_difference_the_champion_comparison_will_resolve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a 7,000-row classification table and a 442-row regression one
    churn, diabetes = tmp_path / "churn.csv", tmp_path / "diabetes.csv"
    churn_frame(7000, 11).to_csv(churn, index=False)
    diabetes_table().to_csv(diabetes, index=False)

    # when
    assert main(["init", str(churn), "--target", "churned", "--config", str(tmp_path / "c.toml")]) == 0
    classification = capsys.readouterr().err
    assert main(["init", str(diabetes), "--target", "target", "--config", str(tmp_path / "d.toml")]) == 0
    regression = capsys.readouterr().err

    # then: 1,750 held-out rows resolve about 1.96 * 0.28 / sqrt(1750) = 0.013 ROC AUC, more than 1% of 0.8
    assert "no_regression will compare on about 1,750 held-out rows" in classification, classification
    assert "ROC AUC differences of about 0.013" in classification
    assert "may come out inconclusive" in classification
    assert "no_regression will compare" not in regression  # no spread is known for a regression metric

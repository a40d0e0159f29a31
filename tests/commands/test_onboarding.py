"""Onboarding a new table end to end: ``schema infer`` -> config -> ``run`` passes.

Beyond the bundled churn table: a string target ("Yes"/"No") with text categoricals,
and a regression (scikit-learn's diabetes data, shipped inside the package).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.core.synth import churn_frame


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
def test_diabetes_regression_onboards_and_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
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

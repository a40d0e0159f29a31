"""XGBoost and LightGBM as ``model.kind``: trained, compiled with parity (or refused), gated, served.

Real tables with numeric, boolean (a 0/1 flag) and categorical features and nulls: breast cancer as
a clinic exports it (text labels), and diabetes with a free 51-value categorical (regression). Each
is onboarded with ``init`` and trained through the real CLI; unseen categories reach the compiled
form in the parity check, the gate compares against a random forest champion, and the real server
answers over HTTP what the model answers offline (``smoke``'s predict check).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from model.artifact import load_artifact, read_metadata
from model.compiled import ONNX_FILE, load_compiled
from model.errors import ArtifactError
from pipeline.cli import main
from pipeline.core.compile import measure_parity
from tests.commands.test_smoke import running, serve_model
from tests.conftest import diabetes_table, dump_toml, realistic_cancer, with_states

KINDS = ("xgboost", "lightgbm")


def _diabetes() -> pd.DataFrame:
    frame = with_states(diabetes_table())
    frame.loc[np.random.default_rng(4).random(len(frame)) < 0.03, "bmi"] = np.nan
    return frame


TABLES: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "classification": (realistic_cancer, "diagnosis"),
    "regression": (_diabetes, "target"),
}


def _project(root: Path, task: str, kind: str, params: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Onboard the task's table under ``root`` with ``init`` and set ``model.kind``; return (config, out)."""
    make, target = TABLES[task]
    root.mkdir(parents=True, exist_ok=True)
    make().to_csv(root / "table.csv", index=False)
    config = root / "ml-cicd.toml"
    assert (
        main(["init", str(root / "table.csv"), "--target", target, "--config", str(config), "--ci", "none"])
        == 0
    )
    raw = tomllib.loads(config.read_text())
    raw["model"] = {"kind": kind, "params": params or {"n_estimators": 60}}
    raw["gates"]["latency"]["samples"] = 20
    config.write_text(dump_toml(raw))
    return config, root / "out"


@pytest.mark.parametrize("task", sorted(TABLES))
@pytest.mark.parametrize("kind", KINDS)
def test_a_boosted_model_trains_compiles_with_parity_and_answers_unseen_categories_alike(
    tmp_path: Path, kind: str, task: str
) -> None:
    # given a real table onboarded with init and a boosted kind
    config, out = _project(tmp_path, task, kind)
    # when it is trained and evaluated through the CLI
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    assert main(["evaluate", "--config", str(config), "--out", str(out)]) == 0
    # then its ONNX form passed the parity check on the held-out rows, or was refused with the figures
    # (LightGBM regression on a 51-value one-hot column: onnxmltools' trees answer up to 11 away)
    metadata = read_metadata(out / "model")
    assert metadata.kind == kind and metadata.compiled is not None
    pipeline, _ = load_artifact(out / "model")
    if metadata.compiled.status != "passed":
        assert metadata.compiled.status == "failed" and metadata.compiled.file is None, metadata.compiled
        assert "does not answer alike, scikit-learn serves" in metadata.compiled.message
        assert not (out / "model" / ONNX_FILE).exists()
        return
    assert metadata.compiled.file == ONNX_FILE
    # and on held-out rows whose categories training never saw (and nulls), ONNX answers as the model does
    compiled = load_compiled((out / "model" / ONNX_FILE).read_bytes(), metadata.features, metadata.labels)
    rows = pd.read_parquet(out / "holdout.parquet")[metadata.feature_names].copy()
    text = "clinic" if task == "classification" else "state"
    rows[text] = "never-seen"
    rows.iloc[::3, 0] = np.nan
    parity = measure_parity(
        pipeline, compiled, rows, task == "classification", 1e-5 if task == "classification" else 1e-4
    )
    assert parity.holds, parity
    # and the metrics are a real model's, above its dummy baseline
    metrics = json.loads((out / "metrics.json").read_text())["overall"]
    assert (metrics["roc_auc"] > 0.9) if task == "classification" else (metrics["r2"] > 0.2), metrics


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TABLES))
@pytest.mark.parametrize("kind", KINDS)
def test_a_boosted_candidate_is_gated_against_a_forest_champion_and_served_as_offline(
    tmp_path: Path, kind: str, task: str
) -> None:
    # given a random forest champion and a boosted candidate of the same table
    config, out = _project(tmp_path / "candidate", task, kind)
    forest, champion = _project(tmp_path / "champion", task, "random_forest", {"n_estimators": 60})
    assert main(["train", "--config", str(forest), "--out", str(champion)]) == 0
    for step in ("validate", "train", "evaluate"):
        assert main([step, "--config", str(config), "--out", str(out)]) == 0
    # when the gate compares them
    code = main(["gate", "--config", str(config), "--out", str(out), "--champion", str(champion / "model")])
    # then the comparison decided on the rows the champion never trained on, naming both kinds' scores
    gates = {g["name"]: g for g in json.loads((out / "gates.json").read_text())["gates"]}
    regression = gates["no_regression"]
    assert regression["status"] in ("passed", "failed", "inconclusive"), regression
    assert "vs champion" in regression["message"] or "at least 100 are needed" in regression["message"]
    assert code == (0 if json.loads((out / "gates.json").read_text())["passed"] else 1)
    assert gates["serving_parity"]["status"] in ("passed", "skipped"), gates["serving_parity"]
    # and the real server (its ONNX form, else the native model) answers over HTTP what the model answers offline
    with running(serve_model(out / "model"), tmp_path / "server.log") as server:
        smoke = main(["smoke", "--config", str(config), "--out", str(out), "--url", server.url])
    checks = {c["name"]: c for c in json.loads((out / "smoke.json").read_text())["checks"]}
    assert smoke == 0 and checks["predict"]["status"] == "passed", checks["predict"]


def _ticks(root: Path) -> Path:
    """Onboard a table whose label is decided by a difference float32 cannot represent (2**24 vs 2**24 + 1)
    with a LightGBM model; return the config."""
    rng = np.random.default_rng(0)
    rows = 600
    frame = pd.DataFrame(
        {
            "account": [f"A{i:05d}" for i in range(rows)],
            "tick": 2.0**24 + rng.integers(0, 2, rows),
            "noise": rng.normal(size=rows),
        }
    )
    frame["late"] = np.where(frame["tick"] > 2.0**24, "yes", "no")
    root.mkdir(parents=True, exist_ok=True)
    (root / "ticks.csv").write_text(frame.to_csv(index=False))
    config = root / "ml-cicd.toml"
    argv = ["init", str(root / "ticks.csv"), "--target", "late", "--config", str(config), "--ci", "none"]
    assert main(argv) == 0
    raw = tomllib.loads(config.read_text())
    raw["model"] = {"kind": "lightgbm", "params": {"n_estimators": 20}}
    raw["schema"]["skip_checks"] = ["leakage"]  # the tick decides the label by design
    config.write_text(dump_toml(raw))
    return config


def test_floats_the_onnx_form_cannot_tell_apart_are_refused_by_parity_and_served_natively(
    tmp_path: Path,
) -> None:
    # given a table whose label is decided by a difference float32 cannot represent
    config = _ticks(tmp_path)
    # when it is trained
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "out")]) == 0
    # then parity refused the ONNX form, the reason is recorded, and the native model is what serves
    metadata = read_metadata(tmp_path / "out" / "model")
    assert metadata.compiled is not None and metadata.compiled.status == "failed", metadata.compiled
    assert "label flips" in metadata.compiled.message and "scikit-learn serves" in metadata.compiled.message
    assert not (tmp_path / "out" / "model" / ONNX_FILE).exists()
    assert metadata.needs is not None and metadata.needs.libraries["lightgbm"] == "4.7.0"


@pytest.mark.docker
@pytest.mark.slow
def test_a_lightgbm_model_parity_refused_is_served_natively_from_its_sklearn_image(tmp_path: Path) -> None:
    # given a Docker engine and the LightGBM model whose ONNX form parity refuses
    from tests.commands.test_factory import STAND_IN, _ml
    from tests.commands.test_image import _require_engine

    _require_engine()
    config = _ticks(tmp_path)
    # when the whole pipeline runs, the serving image built (the team's checks left out: it has none)
    base = os.environ.get("ML_CICD_BASE_IMAGE") or STAND_IN
    done = _ml(
        tmp_path,
        "run",
        "--config",
        config.name,
        "--image",
        "always",
        "--skip",
        "lint,test",
        env={"ML_CICD_BASE_IMAGE": base},
    )
    # then the image is the sklearn flavour with LightGBM (and its OpenMP runtime) installed, and the
    # smoke test found its answers equal to the offline model's
    assert done.returncode == 0, done.stderr[-4000:]
    built = json.loads((tmp_path / "out" / "image.json").read_text())
    build_log = (tmp_path / "out" / "logs" / "build_image.log").read_text()
    assert built["flavour"] == "sklearn" and "the model needs lightgbm==4.7.0" in build_log
    smoke = (tmp_path / "out" / "logs" / "smoke_test.log").read_text()
    assert "served by sklearn: labels equal and probabilities equal the offline model's" in smoke
    # and the report says why the ONNX form is not what serves
    assert "label flips" in (tmp_path / "out" / "report.md").read_text()


def test_a_boosted_model_where_its_library_is_missing_is_one_line_naming_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a trained XGBoost model, loaded where the xgboost package cannot be imported
    config, out = _project(tmp_path, "classification", "xgboost", {"n_estimators": 10})
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    import sys

    for name in [m for m in sys.modules if m == "xgboost" or m.startswith(("xgboost.", "model.xgb_labels"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "xgboost", None)  # an import of it now raises ModuleNotFoundError
    # when it is loaded, then one line names the model's kind, the missing module and how to install it
    with pytest.raises(ArtifactError) as caught:
        load_artifact(out / "model")
    message = str(caught.value)
    assert "\n" not in message and "needs the Python module 'xgboost'" in message
    assert "(xgboost)" in message and "pip install 'ml-cicd[boost]'" in message


def test_a_boosted_kind_without_its_library_is_refused_when_the_config_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given LightGBM not importable
    config, out = _project(tmp_path, "classification", "lightgbm")
    monkeypatch.setitem(__import__("sys").modules, "lightgbm", None)
    # when train starts, then exit 2 with one line naming the kind, the package and the extra
    assert main(["train", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "error: model.kind: model kind 'lightgbm' needs the lightgbm package, an optional extra: "
        "pip install 'ml-cicd[boost]'"
    )


@pytest.mark.parametrize("task", sorted(TABLES))
def test_init_writes_every_kinds_parameters_so_changing_kind_is_one_edit(tmp_path: Path, task: str) -> None:
    # given a config written by init (a random forest, every other kind's table beside it)
    make, target = TABLES[task]
    make().to_csv(tmp_path / "table.csv", index=False)
    config = tmp_path / "ml-cicd.toml"
    assert (
        main(
            ["init", str(tmp_path / "table.csv"), "--target", target, "--config", str(config), "--ci", "none"]
        )
        == 0
    )
    text = config.read_text()
    written = tomllib.loads(text)["model"]
    assert written["kind"] == "random_forest" and "params" not in written
    assert {"random_forest", "hist_gradient_boosting", "xgboost", "lightgbm"} <= set(written["kinds"])
    for kind, params in written["kinds"].items():
        # when only the kind line changes
        config.write_text(text.replace('kind = "random_forest"', f'kind = "{kind}"', 1))
        out = tmp_path / f"out-{kind}"
        # then that kind trains with its own table's parameters
        assert main(["train", "--config", str(config), "--out", str(out)]) == 0, kind
        metadata = read_metadata(out / "model")
        assert (metadata.kind, metadata.params) == (kind, params)

"""pipeline/core/compile.py through ``train``: the ONNX form ships only when it answers as scikit-learn does.

Tables are made from scikit-learn's own datasets as users have them (text targets, a 0/1
flag, a text category, nulls; see ``tests/conftest.py``), configured by ``init`` and trained by
the real CLI. The probe rows then add what the training rows never had: unseen categories and
nulls in every feature, fed to both runtimes as JSON records.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from model.artifact import load_artifact, read_metadata
from model.records import Status
from model.runtime import load_model
from pipeline.cli import main
from pipeline.core.values import json_records
from tests.conftest import diabetes_table, dump_toml, realistic_cancer, wine_table

Edit = Callable[[dict[str, Any]], None]


def trained(
    root: Path, frame: pd.DataFrame, target: str, model: dict[str, Any], edit: Edit | None = None
) -> Path:
    """``init`` a config for ``frame``, set its model (and ``edit``), ``train`` with every row; return the model dir."""
    root.mkdir(parents=True)
    data, config = root / "table.csv", root / "model.toml"
    frame.to_csv(data, index=False)
    assert main(["init", str(data), "--target", target, "--config", str(config)]) == 0
    raw = tomllib.loads(config.read_text())
    raw["model"] = model
    if edit is not None:
        edit(raw)
    config.write_text(dump_toml(raw))
    assert main(["train", "--config", str(config), "--out", str(root / "out"), "--full"]) == 0
    return root / "out" / "model"


def probe(model_dir: Path, rows: int = 60) -> pd.DataFrame:
    """Held-out rows with an unseen category in every categorical, and a null in every feature, in turn."""
    metadata = read_metadata(model_dir)
    frame = pd.read_parquet(model_dir.parent / "holdout.parquet")[metadata.feature_names].head(rows).copy()
    frame = frame.astype(object)
    for i, feature in enumerate(metadata.features):
        frame.iloc[i % rows, i] = None  # a null in each feature
        if feature.type == "categorical":
            frame.iloc[(i + 7) % rows, i] = "never-seen-in-training"
    return frame


def assert_runtimes_agree(model_dir: Path, frame: pd.DataFrame) -> float:
    """ONNX Runtime and scikit-learn on the same records: identical labels, close probabilities; return the gap."""
    records = json_records(frame)
    onnx, sklearn = load_model(model_dir, "onnx"), load_model(model_dir, "sklearn")
    (labels, proba), (expected, expected_proba) = onnx.predict(records), sklearn.predict(records)
    metadata = read_metadata(model_dir)
    assert metadata.compiled is not None and metadata.compiled.parity is not None
    if proba is None:
        assert expected_proba is None
        gap = float(np.max(np.abs(labels.astype(float) - expected.astype(float))))
    else:
        assert expected_proba is not None
        assert labels.tolist() == expected.tolist(), "a label differs between ONNX Runtime and scikit-learn"
        gap = float(np.max(np.abs(proba - expected_proba)))
    assert gap <= metadata.compiled.parity.limit, f"runtimes differ by {gap:.3g} on the probe rows"
    return gap


CASES = [
    (
        "cancer-logistic",
        realistic_cancer,
        "diagnosis",
        {"kind": "logistic_regression", "params": {"max_iter": 2000}},
    ),
    (
        "cancer-forest",
        realistic_cancer,
        "diagnosis",
        {"kind": "random_forest", "params": {"n_estimators": 60}},
    ),
    (
        "wine-forest-multiclass",
        wine_table,
        "cultivar",
        {"kind": "random_forest", "params": {"n_estimators": 40}},
    ),
    (
        "diabetes-forest-regression",
        diabetes_table,
        "target",
        {"kind": "random_forest", "params": {"n_estimators": 40}},
    ),
    ("diabetes-ridge", diabetes_table, "target", {"kind": "ridge", "params": {"alpha": 1.0}}),
]


@pytest.mark.parametrize(("table", "target", "model"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_converts_with_parity_on_held_out_and_probe_rows(
    tmp_path: Path, table: Callable[[], pd.DataFrame], target: str, model: dict[str, Any]
) -> None:
    # given a model trained on a table as users have it
    model_dir = trained(tmp_path / "project", table(), target, model)

    # then the ONNX form ships, with its hash and the parity it was checked to
    metadata = read_metadata(model_dir)
    compiled = metadata.compiled
    assert compiled is not None and compiled.status is Status.PASSED, compiled
    assert compiled.file == "model.onnx" and (model_dir / "model.onnx").is_file()
    assert compiled.parity is not None and compiled.parity.rows == metadata.holdout_rows
    if metadata.task == "classification":
        assert compiled.parity.label_flips == 0 and compiled.parity.what == "probability"
    else:
        assert compiled.parity.label_flips is None and compiled.parity.what == "prediction"
        assert compiled.parity.limit > 1e-5, "a regressor's limit is relative to its predictions' scale"
    assert compiled.parity.max_abs_diff <= compiled.parity.limit
    # and it still agrees on rows with unseen categories and nulls everywhere
    assert_runtimes_agree(model_dir, probe(model_dir))
    # and the server picks it
    assert load_model(model_dir).runtime == "onnx"


def test_boolean_and_text_features_reach_onnx_as_the_pipeline_reads_them(tmp_path: Path) -> None:
    # given the cancer table, whose 0/1 'smoker' init types as boolean and 'clinic' as categorical
    model_dir = trained(
        tmp_path / "project", realistic_cancer(), "diagnosis", {"kind": "logistic_regression", "params": {}}
    )
    kinds = {f.name: f.type for f in read_metadata(model_dir).features}
    assert kinds["smoker"] == "boolean" and kinds["clinic"] == "categorical"
    frame = probe(model_dir)
    # when booleans arrive as JSON true/false and categories as text
    records = json_records(frame, booleans={"smoker"})
    assert {r["smoker"] for r in records} <= {True, False, None}
    # then both runtimes answer the same
    onnx, sklearn = load_model(model_dir, "onnx"), load_model(model_dir, "sklearn")
    assert onnx.predict(records)[0].tolist() == sklearn.predict(records)[0].tolist()


def test_hist_gradient_boosting_does_not_convert_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # when a boosting model is trained
    model = {"kind": "hist_gradient_boosting", "params": {"max_iter": 30}}
    model_dir = trained(tmp_path / "project", realistic_cancer(), "diagnosis", model)

    # then no ONNX file ships, the metadata and stderr say why, and scikit-learn serves
    compiled = read_metadata(model_dir).compiled
    assert compiled is not None and compiled.status is Status.ERROR and compiled.file is None
    assert "skl2onnx cannot convert HistGradientBoostingClassifier" in compiled.message
    assert "scikit-learn serves" in compiled.message
    assert not (model_dir / "model.onnx").exists()
    assert "train: onnx: error: skl2onnx cannot convert" in capsys.readouterr().err
    assert load_model(model_dir).runtime == "sklearn"


def test_parity_beyond_the_limit_ships_no_onnx_file(tmp_path: Path) -> None:
    # given a limit no float32 computation can meet
    def tight(raw: dict[str, Any]) -> None:
        raw["serving"] = {"parity_limit": 1e-12}

    model_dir = trained(
        tmp_path / "project",
        realistic_cancer(),
        "diagnosis",
        {"kind": "logistic_regression", "params": {}},
        tight,
    )

    # then the comparison is recorded as failed and scikit-learn serves
    compiled = read_metadata(model_dir).compiled
    assert compiled is not None and compiled.status is Status.FAILED, compiled
    assert compiled.parity is not None and compiled.parity.max_abs_diff > compiled.parity.limit == 1e-12
    assert "does not answer alike, scikit-learn serves" in compiled.message
    assert compiled.file is None and not (model_dir / "model.onnx").exists()
    assert load_model(model_dir).runtime == "sklearn"


def test_serving_onnx_false_skips_the_conversion(tmp_path: Path) -> None:
    def off(raw: dict[str, Any]) -> None:
        raw["serving"] = {"onnx": False}

    model_dir = trained(
        tmp_path / "project",
        wine_table(),
        "cultivar",
        {"kind": "logistic_regression", "params": {"max_iter": 3000}},
        off,
    )
    compiled = read_metadata(model_dir).compiled
    assert compiled is not None and compiled.status is Status.SKIPPED and compiled.file is None


def test_the_onnx_file_records_the_classes_the_server_checks(tmp_path: Path) -> None:
    # given a multiclass model with text labels
    model_dir = trained(
        tmp_path / "project",
        wine_table(),
        "cultivar",
        {"kind": "random_forest", "params": {"n_estimators": 20}},
    )
    estimator, metadata = load_artifact(model_dir)
    # when the metadata's labels are reordered (metadata.json is not covered by any hash)
    raw = json.loads((model_dir / "metadata.json").read_text())
    raw["labels"] = list(reversed(raw["labels"]))
    (model_dir / "metadata.json").write_text(json.dumps(raw))
    # then the ONNX runtime refuses to serve answers under the wrong names
    with pytest.raises(Exception, match="differ from the metadata labels"):
        load_model(model_dir, "onnx")
    assert list(estimator.classes_) == list(metadata.labels or ())

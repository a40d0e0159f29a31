"""The gate command: real candidates and champions through the CLI, gates.json and exit codes."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.records import Status
from pipeline.cli import main
from pipeline.core.synth import churn_frame
from tests.conftest import Project, build_out, copy_of, resign

PASSED, FAILED, SKIPPED = Status.PASSED, Status.FAILED, Status.SKIPPED


def gate(project: Project, *extra: str) -> int:
    """Run ``python -m pipeline gate`` on the project's --out and return the exit code."""
    return main(project.cli("gate", *extra))


def read_gates(out: Path) -> dict[str, Any]:
    """Return ``gates.json`` with gates indexed by name."""
    data = json.loads((out / "gates.json").read_text())
    data["by_name"] = {g["name"]: g for g in data["gates"]}
    return data


@pytest.fixture
def candidate(trained: dict[str, Project], tmp_path: Path) -> Project:
    """A private copy of the good, evaluated candidate."""
    return copy_of(trained["good"], tmp_path)


def test_dummy_model_fails_the_threshold_gate(make_project: Callable[..., Project]) -> None:
    # given: a config whose model is a dummy (predicts the prior)
    project = make_project(rows=600, config=lambda c: c["model"].update(kind="dummy", params={}))
    build_out(project)

    # when
    code = gate(project, "--champion", str(project.root / "none"))

    # then
    gates = read_gates(project.out)
    assert code == 1, "a failed required gate must exit 1"
    assert gates["passed"] is False
    assert gates["by_name"]["metric:roc_auc"]["status"] == FAILED, gates["by_name"]["metric:roc_auc"]


def test_good_candidate_without_champion_passes_and_says_no_champion(candidate: Project) -> None:
    missing = candidate.root / "no-champion-here"

    code = gate(candidate, "--champion", str(missing))

    gates = read_gates(candidate.out)
    assert code == 0, f"a good model must pass: {gates['gates']}"
    assert gates["champion"] is None
    entry = gates["by_name"]["no_regression"]
    assert entry["status"] == SKIPPED and entry["message"].startswith(
        f"no champion at {missing}: nothing to compare"
    )
    assert {g["name"] for g in gates["gates"]} >= {"latency_p95", "slice_floor", "class_collapse", "drift"}


def test_better_champion_fails_the_no_regression_gate(trained: dict[str, Project], tmp_path: Path) -> None:
    # given: the good logistic regression as champion, a candidate that sees no real signal
    weak, champion = copy_of(trained["weak"], tmp_path), trained["good"]

    # when
    code = gate(weak, "--champion", str(champion.out / "model"))

    # then
    gates = read_gates(weak.out)
    entry, section = gates["by_name"]["no_regression"], gates["champion"]
    assert code == 1, f"a clearly worse candidate must exit 1: {entry}"
    assert entry["status"] == FAILED, entry["message"]
    assert section["delta"] < -0.01 and section["ci_high"] < 0, f"expected a significant drop: {section}"
    assert section["metric"] == "roc_auc"
    assert section["champion"]["roc_auc"] > section["candidate"]["roc_auc"], "champion must be re-scored"
    assert section["path"] == str(champion.out / "model")


def test_same_model_as_champion_is_a_tie_and_passes(candidate: Project) -> None:
    champion_dir = candidate.root / "champion"
    shutil.copytree(candidate.out / "model", champion_dir)

    code = gate(candidate, "--champion", str(champion_dir))

    gates = read_gates(candidate.out)
    assert code == 0, gates["by_name"]["no_regression"]
    assert gates["by_name"]["no_regression"]["status"] == PASSED
    assert gates["champion"]["delta"] == 0.0 and gates["champion"]["ci_low"] == 0.0


def test_drift_json_that_did_not_pass_fails_the_drift_gate(candidate: Project) -> None:
    # given: the drift check of a shifted table, written into the candidate's --out
    shifted = candidate.root / "shifted.csv"
    churn_frame(800, 11, shift=0.6).to_csv(shifted, index=False)
    argv = ["drift", "--config", str(candidate.config), "--data", str(shifted), "--out", str(candidate.out)]
    assert main(argv) == 1, "a shifted table must drift"

    code = gate(candidate, "--champion", str(candidate.root / "none"))

    entry = read_gates(candidate.out)["by_name"]["drift"]
    assert code == 1 and entry["status"] == FAILED, entry
    assert "monthly_charges" in entry["message"]


def test_tampered_champion_is_bad_input(candidate: Project, capsys: pytest.CaptureFixture[str]) -> None:
    # given: a champion whose model file no longer matches its recorded sha256
    champion_dir = candidate.root / "champion"
    shutil.copytree(candidate.out / "model", champion_dir)
    with (champion_dir / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")

    # when
    code = gate(candidate, "--champion", str(champion_dir))

    # then
    err = capsys.readouterr().err
    assert code == 2, "a tampered champion is bad input (exit 2)"
    assert "sha256" in err and err.count("\n") == 1, f"expected one clear line, got {err!r}"
    assert not (candidate.out / "gates.json").exists(), "no gates.json may be written on bad input"


def test_missing_metrics_is_bad_input(candidate: Project, capsys: pytest.CaptureFixture[str]) -> None:
    (candidate.out / "metrics.json").unlink()

    code = gate(candidate, "--champion", str(candidate.root / "none"))

    assert code == 2
    assert "metrics.json" in capsys.readouterr().err


def test_without_production_alias_the_champion_gate_is_skipped(candidate: Project) -> None:
    # given: the project's registry has no production alias (it does not even exist)

    code = gate(candidate)

    entry = read_gates(candidate.out)["by_name"]["no_regression"]
    assert code == 0 and entry["status"] == SKIPPED, entry
    assert entry["message"].startswith("no champion: first model, nothing to compare"), entry["message"]


def test_default_champion_is_the_registry_production_alias(
    trained: dict[str, Project], tmp_path: Path
) -> None:
    # given: the good model registered with its passing gates and promoted to production
    good = copy_of(trained["good"], tmp_path / "good")
    assert gate(good) == 0
    registry = ("--config", str(good.config))
    assert (
        main(
            [
                "registry",
                "register",
                str(good.out / "model"),
                *registry,
                "--gates",
                str(good.out / "gates.json"),
            ]
        )
        == 0
    )
    assert main(["registry", "promote", "1", "--to", "production", "--approve", *registry]) == 0
    weak = copy_of(trained["weak"], tmp_path / "weak", registry=good.root / "registry")

    # when: the weak candidate is gated without --champion
    code = gate(weak)

    # then: production (version 1) was the champion and the regression is caught
    gates = read_gates(weak.out)
    assert code == 1 and gates["by_name"]["no_regression"]["status"] == FAILED, gates["by_name"][
        "no_regression"
    ]
    assert gates["champion"]["version"] == 1, (
        f"champion version must come from the registry: {gates['champion']}"
    )


# ---------------------------------------------------------------------------------------------
# Serving parity: the ONNX model the server runs must answer as the scikit-learn model does.


def _rewrite_onnx(model_dir: Path, change: Callable[[Any], None]) -> None:
    """Edit the ONNX graph with ``change`` and record the new file's sha256 and signature, as a careless rebuild would."""
    import onnx

    path = model_dir / "model.onnx"
    graph = onnx.load(str(path))
    change(graph)
    onnx.save(graph, str(path))
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["compiled"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    resign(model_dir)


def _scale_coefficients(graph: Any) -> None:
    """Make the linear classifier's weights 10% larger: a different model under the same file name."""
    node = next(n for n in graph.graph.node if n.op_type == "LinearClassifier")
    weights = next(a for a in node.attribute if a.name == "coefficients")
    weights.floats[:] = [w * 1.1 for w in weights.floats]


def test_serving_parity_passes_for_the_onnx_model_training_shipped(candidate: Project) -> None:
    code = gate(candidate, "--champion", str(candidate.root / "none"))

    parity = read_gates(candidate.out)["by_name"]["serving_parity"]
    assert code == 0 and parity["status"] == PASSED and parity["required"] is True, parity
    assert "ONNX Runtime vs scikit-learn on" in parity["message"] and "0 label flips" in parity["message"]
    assert parity["observed"] <= parity["threshold"] == 1e-5


def test_serving_parity_fails_for_an_onnx_model_that_answers_differently(candidate: Project) -> None:
    # given a served ONNX file whose weights were changed, with a matching sha256 in the metadata
    _rewrite_onnx(candidate.out / "model", _scale_coefficients)

    # when
    code = gate(candidate, "--champion", str(candidate.root / "none"))

    # then the metric gates still pass (scikit-learn is unchanged), but the served model does not
    gates = read_gates(candidate.out)
    parity = gates["by_name"]["serving_parity"]
    assert code == 1 and parity["status"] == FAILED, parity
    assert parity["observed"] > parity["threshold"], parity
    assert gates["by_name"]["metric:roc_auc"]["status"] == PASSED


def test_a_corrupt_onnx_file_makes_the_candidate_a_tampered_artefact(
    candidate: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    # given bytes of the ONNX file changed after training (neither its metadata hash nor its signature match)
    path = candidate.out / "model" / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    # when
    code = gate(candidate, "--champion", str(candidate.root / "none"))

    # then the artefact is refused before anything is loaded: one line naming the file, exit 2, no gates.json
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "model.onnx is not the file that was signed" in err[0] and "refusing a tampered artefact" in err[0]
    assert not (candidate.out / "gates.json").exists()


def test_serving_parity_is_skipped_when_scikit_learn_serves(make_project: Callable[..., Project]) -> None:
    # given a boosting model, which does not convert
    def boosting(config: dict[str, Any]) -> None:
        config["model"].update(kind="hist_gradient_boosting", params={"max_iter": 20})

    project = make_project(rows=600, config=boosting)
    build_out(project)

    # when
    code = gate(project, "--champion", str(project.root / "none"))

    # then
    gates = read_gates(project.out)
    parity = gates["by_name"]["serving_parity"]
    assert (
        parity["status"] == SKIPPED
        and "skl2onnx cannot convert HistGradientBoostingClassifier" in parity["message"]
    )
    assert gates["latency"]["candidate_runtime"] == "sklearn"
    assert code == 0 or any(
        g["status"] != PASSED and g["required"] for g in gates["gates"] if g["name"] != "serving_parity"
    )


# ---------------------------------------------------------------------------------------------
# Label drift and prediction drift, as gates.


def test_a_moved_label_mix_fails_the_label_drift_gate(make_project: Callable[..., Project]) -> None:
    # given data whose churn rate is about 60% against a reference at about 25%
    frame = churn_frame(1500, 3)
    frame["churned"] = (np.random.default_rng(4).random(len(frame)) < 0.6).astype(int)
    project = make_project(rows=1500, frame=frame)
    build_out(project)

    # when
    code = gate(project, "--champion", str(project.root / "none"))

    # then
    result = read_gates(project.out)["by_name"]["label_drift"]
    assert code == 1 and result["status"] == FAILED and result["required"] is True, result
    assert "label 'churned' against" in result["message"] and "Jensen-Shannon" in result["message"]


def test_the_label_drift_gate_passes_a_stable_mix(candidate: Project) -> None:
    gate(candidate, "--champion", str(candidate.root / "none"))
    result = read_gates(candidate.out)["by_name"]["label_drift"]
    assert result["status"] == PASSED and "stable" in result["message"], result


def test_predictions_that_move_on_the_reference_rows_fail_a_required_prediction_drift_gate(
    make_project: Callable[..., Project],
) -> None:
    # given a reference of shifted customers, the feature drift gate advisory, predictions required
    def watch_predictions(raw: dict[str, Any]) -> None:
        raw["gates"]["prediction_drift"] = {"required": True}
        raw["gates"]["drift"] = {"required": False}

    project = make_project(rows=1500, config=watch_predictions)
    churn_frame(1500, 77, shift=0.8).to_csv(project.reference, index=False)
    build_out(project)
    stable = make_project(rows=1500, config=watch_predictions, name="stable")
    build_out(stable)

    # when
    code = gate(project, "--champion", str(project.root / "none"))
    stable_code = gate(stable, "--champion", str(stable.root / "none"))

    # then
    moved = read_gates(project.out)["by_name"]["prediction_drift"]
    kept = read_gates(stable.out)["by_name"]["prediction_drift"]
    assert code == 1 and moved["status"] == FAILED, moved
    assert "predictions on the reference rows" in moved["message"]
    assert stable_code == 0 and kept["status"] == PASSED, kept

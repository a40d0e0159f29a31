"""Quality gates: pure gate rules, the paired bootstrap, and gates failing through the CLI."""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.config import ChampionGate, CollapseGate, DriftGate, MetricGate, SliceGate
from pipeline.gates import (
    FAILED,
    PASSED,
    SKIPPED,
    Comparison,
    Predictions,
    champion_gate,
    collapse_gate,
    drift_gate,
    metric_gate,
    paired_bootstrap,
    slice_gate,
    weighted_metric,
)
from pipeline.metrics import CLASSIFICATION, REGRESSION, score
from pipeline.synth import churn_frame
from tests.conftest import Project, default_config_dict, dump_toml

# ---------------------------------------------------------------------------------------------
# Building an evaluated candidate in ``--out``.


def write_project(
    root: Path, edit: Callable[[dict[str, Any]], None] | None = None, rows: int = 800
) -> Project:
    """Write a seeded churn table and its config under ``root`` (like ``make_project``, any scope)."""
    root.mkdir(parents=True)
    project = Project(root, root / "pipeline.toml", root / "data.csv", root / "reference.csv", root / "out")
    churn_frame(rows, 3).to_csv(project.data, index=False)
    churn_frame(rows, 103).to_csv(project.reference, index=False)
    raw = default_config_dict()
    raw["data"]["path"] = str(project.data)
    raw["drift"]["reference"] = str(project.reference)
    raw["registry"]["path"] = str(root / "registry")
    raw["schema"]["min_rows"] = 50
    raw["training"]["sample_rows"] = 0
    if edit is not None:
        edit(raw)
    project.config.write_text(dump_toml(raw))
    return project


def build_out(project: Project, out: Path | None = None) -> Path:
    """Train and evaluate ``project`` into ``out`` (default ``project.out``) with the real commands."""
    out = out or project.out
    for command in ("train", "evaluate"):
        argv = [command, "--config", str(project.config), "--out", str(out)]
        assert main(argv) == 0, f"`{command}` failed while preparing a gate test"
    return out


def copy_of(project: Project, root: Path, registry: Path | None = None) -> Project:
    """Return ``project`` with its trained --out copied under ``root`` and its registry (default ``root/registry``)."""
    raw = tomllib.loads(project.config.read_text())
    raw["registry"]["path"] = str(registry or root / "registry")
    root.mkdir(parents=True, exist_ok=True)
    config = root / "pipeline.toml"
    config.write_text(dump_toml(raw))
    shutil.copytree(project.out, root / "out")
    return replace(project, root=root, config=config, out=root / "out")


def gate(project: Project, *extra: str) -> int:
    """Run ``python -m pipeline gate`` on the project's --out and return the exit code."""
    return main(project.cli("gate", *extra))


def read_gates(out: Path) -> dict[str, Any]:
    """Return ``gates.json`` with gates indexed by name."""
    data = json.loads((out / "gates.json").read_text())
    data["by_name"] = {g["name"]: g for g in data["gates"]}
    return data


def weak_features(raw: dict[str, Any]) -> None:
    """Config edit: the model sees only ``region`` and ``has_partner`` (no churn signal to speak of)."""
    keep = {"customer_id", "region", "has_partner", "churned"}
    raw["schema"]["columns"] = {k: v for k, v in raw["schema"]["columns"].items() if k in keep}
    raw["schema"]["allow_unexpected_columns"] = True
    raw["gates"]["metric"] = []


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Project]:
    """Train and evaluate once per module: ``good`` (logistic regression, all features) and ``weak``."""
    root = tmp_path_factory.mktemp("trained")
    projects = {"good": write_project(root / "good"), "weak": write_project(root / "weak", weak_features)}
    for project in projects.values():
        build_out(project)
    return projects


@pytest.fixture
def candidate(trained: dict[str, Project], tmp_path: Path) -> Project:
    """A private copy of the good, evaluated candidate."""
    return copy_of(trained["good"], tmp_path)


# ---------------------------------------------------------------------------------------------
# Pure rules.


def _random_classification(classes: int, rows: int = 400, seed: int = 0) -> tuple[np.ndarray, Predictions]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    proba = rng.dirichlet(np.ones(classes), rows)
    proba[np.arange(rows), y] += 0.4
    proba /= proba.sum(axis=1, keepdims=True)
    if classes == 2:  # ties in the scores exercise the half-credit of the AUC
        proba = np.round(proba, 2)
    return y, Predictions(proba.argmax(axis=1), proba)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("metric", CLASSIFICATION)
def test_weighted_metric_with_unit_weights_equals_score(classes: int, metric: str) -> None:
    # given: predictions of a decent classifier
    y, predictions = _random_classification(classes)
    labels = list(range(classes))

    # when: the bootstrap's weighted form is evaluated with every row counted once
    value = weighted_metric(metric, "classification", y, predictions, labels, 1)(np.ones((1, len(y))))[0]

    # then: it equals the reference implementation
    expected = score("classification", y, predictions.y_pred, predictions.proba, labels, 1)[metric]
    assert value == pytest.approx(expected, abs=1e-9), f"{metric}: bootstrap form {value} != score {expected}"


@pytest.mark.parametrize("metric", REGRESSION)
def test_weighted_regression_metric_with_unit_weights_equals_score(metric: str) -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    pred = y + rng.normal(scale=0.5, size=300)

    value = weighted_metric(metric, "regression", y, Predictions(pred, None))(np.ones((1, 300)))[0]

    assert value == pytest.approx(score("regression", y, pred)[metric], abs=1e-9), metric


def test_bootstrap_of_identical_models_is_a_zero_interval() -> None:
    y, predictions = _random_classification(2)

    low, high = paired_bootstrap("roc_auc", "classification", y, predictions, predictions, [0, 1], 1, 200)

    assert (low, high) == (0.0, 0.0), f"same model on the same resamples must give delta 0, got {low}..{high}"


def test_bootstrap_interval_excludes_zero_for_a_clearly_worse_candidate() -> None:
    # given: a good model (champion) and the same with its scores scrambled (candidate)
    y, good = _random_classification(2, rows=600)
    assert good.proba is not None
    order = np.random.default_rng(5).permutation(len(y))
    bad = Predictions(good.y_pred[order], good.proba[order])

    low, high = paired_bootstrap("roc_auc", "classification", y, bad, good, [0, 1], 1, 500)

    assert low is not None and high is not None
    assert high < 0, f"a scrambled candidate must be significantly worse, CI {low:.3f}..{high:.3f}"


def _comparison(delta: float, low: float, high: float) -> Comparison:
    return Comparison(
        "roc_auc", {"roc_auc": 0.8 + delta}, {"roc_auc": 0.8}, delta, low, high, 1000, 0.95, 500
    )


@pytest.mark.parametrize(
    ("delta", "low", "high", "status", "why"),
    [
        (-0.05, -0.08, -0.02, FAILED, "a drop beyond tolerance whose CI is below zero is a real regression"),
        (-0.05, -0.10, 0.01, PASSED, "a drop whose CI reaches zero may be noise"),
        (-0.005, -0.009, -0.001, PASSED, "a significant drop within tolerance is a tie"),
        (0.0, 0.0, 0.0, PASSED, "the same model is a tie"),
        (0.03, 0.01, 0.05, PASSED, "a better candidate passes"),
    ],
)
def test_champion_rule(delta: float, low: float, high: float, status: str, why: str) -> None:
    result = champion_gate(ChampionGate(tolerance=0.01), _comparison(delta, low, high))

    assert result.status == status, f"{why}: got {result.status} ({result.message})"


def test_champion_gate_without_champion_is_skipped_and_says_why() -> None:
    result = champion_gate(ChampionGate(), None, "no champion: first model, nothing to compare")

    assert result.status == SKIPPED
    assert "first model" in result.message


@pytest.mark.parametrize(
    ("gate", "value", "status"),
    [
        (MetricGate("roc_auc", 0.75), 0.80, PASSED),
        (MetricGate("roc_auc", 0.75), 0.70, FAILED),
        (MetricGate("log_loss", 0.6, direction="lower"), 0.5, PASSED),
        (MetricGate("log_loss", 0.6, direction="lower"), 0.7, FAILED),
    ],
)
def test_metric_gate_respects_direction(gate: MetricGate, value: float, status: str) -> None:
    assert metric_gate(gate, {gate.metric: value}).status == status, f"{gate} with {value}"


def test_metric_gate_fails_on_a_metric_that_was_not_evaluated() -> None:
    result = metric_gate(MetricGate("roc_auc", 0.75), {"accuracy": 0.9})

    assert result.status == FAILED and "not evaluated" in result.message


def test_collapse_gate_fails_when_a_class_is_never_predicted() -> None:
    result = collapse_gate(CollapseGate(0.02), "classification", [0, 1], {"0": 0.995, "1": 0.005})

    assert result.status == FAILED, result.message
    assert "1 0.5%" in result.message, f"the message must name the rare class: {result.message}"


def test_collapse_gate_fails_on_constant_regression_predictions() -> None:
    collapsed = collapse_gate(CollapseGate(), "regression", [], {"mean": 3.0, "std": 0.0})
    healthy = collapse_gate(CollapseGate(), "regression", [], {"mean": 3.0, "std": 1.2})

    assert (collapsed.status, healthy.status) == (FAILED, PASSED)


def test_slice_gate_names_the_slice_below_the_floor() -> None:
    slices = {
        "region": {
            "north": {"rows": 60, "roc_auc": 0.8},
            "south": {"rows": 55, "roc_auc": 0.6},
            "east": {"rows": 3, "skipped": "fewer than slices.min_rows = 30 rows"},
        }
    }

    result = slice_gate(SliceGate("roc_auc", 0.65), slices)
    unconfigured = slice_gate(SliceGate(), slices)

    assert result.status == FAILED and "region=south" in result.message, result.message
    assert unconfigured.status == SKIPPED


def test_drift_gate_fails_when_drift_did_not_pass() -> None:
    failed = drift_gate(DriftGate(), {"passed": False, "drifted": ["tenure_months"]})
    missing = drift_gate(DriftGate(), None, "no drift.json: drift.reference is not configured")

    assert failed.status == FAILED and "tenure_months" in failed.message
    assert missing.status == SKIPPED and "not configured" in missing.message


# ---------------------------------------------------------------------------------------------
# Through the CLI.


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
    assert entry["status"] == SKIPPED and entry["message"] == f"no champion at {missing}"
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
    (candidate.out / "drift.json").write_text(json.dumps({"passed": False, "drifted": ["monthly_charges"]}))

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

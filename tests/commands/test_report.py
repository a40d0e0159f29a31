"""The markdown report: gate table, deltas, plots, and a report even when things went wrong."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model.codec import write_record
from model.records import Status
from pipeline.cli import main
from pipeline.records import CheckSummary, Drift, Failure, Validation
from tests.conftest import Project, build_out, copy_of, drift_limits, feature_drift

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def report(project: Project) -> str:
    """Run ``python -m pipeline report`` and return report.md."""
    assert main(project.cli("report")) == 0, "report must exit 0 whatever the gates said"
    return (project.out / "report.md").read_text()


def test_report_after_a_failed_gate_shows_the_gate_table_and_deltas(
    trained: dict[str, Project], tmp_path: Path
) -> None:
    # given: a good champion and a weak candidate that fails the no-regression gate
    champion, weak = trained["good"], copy_of(trained["weak"], tmp_path)
    assert main(weak.cli("gate", "--champion", str(champion.out / "model"))) == 1

    # when
    text = report(weak)

    # then
    assert text.startswith("# Model report: FAILED"), text.splitlines()[0]
    assert "no_regression" in text.splitlines()[2], "the headline must name the failed gate"
    gate_rows = [line for line in text.splitlines() if line.startswith("| no_regression ")]
    assert gate_rows and "FAILED" in gate_rows[0], "the gate table needs a no_regression row marked FAILED"
    assert any(line.startswith("| class_collapse ") for line in text.splitlines()), "every gate gets a row"
    auc_row = next(line for line in text.splitlines() if line.startswith("| roc_auc (gate)"))
    assert "worse" in auc_row and " -0." in auc_row, f"the delta row must show a drop: {auc_row}"
    assert "paired-bootstrap CI" in text
    png = weak.out / "confusion_matrix.png"
    assert png.read_bytes()[:8] == PNG_MAGIC, "confusion_matrix.png must be a real PNG"
    assert "](confusion_matrix.png)" in text, "the plot must be referenced by relative path"


def test_report_without_champion_says_so(trained: dict[str, Project], tmp_path: Path) -> None:
    project = copy_of(trained["good"], tmp_path)
    assert main(project.cli("gate", "--champion", str(project.root / "none"))) == 0

    text = report(project)

    assert text.startswith("# Model report: PASSED")
    assert f"No champion at {project.root / 'none'}: nothing to compare (first model" in text
    first = text.split("\n\n")[1]
    assert "Required gate(s) skipped: no_regression: no champion at" in first, "the headline hides a skip"
    assert "| roc_auc " in text, "candidate metrics are still listed"


def test_report_with_nothing_produced_names_the_missing_inputs(
    make_project: Callable[..., Project],
) -> None:
    # given: the pipeline stopped before train (empty --out)
    project = make_project(rows=100)

    text = report(project)

    assert "gates not run" in text.splitlines()[0]
    for name in ("gates.json", "metrics.json", "validation.json", "model/metadata.json"):
        assert f"`{name}`" in text, f"the report must say {name} was not produced"


def test_report_summarises_validation_and_drift(trained: dict[str, Project], tmp_path: Path) -> None:
    project = copy_of(trained["good"], tmp_path)
    failure = Failure("nulls", "tenure_months", "20.0% nulls, limit 5.0%", 0.2, 0.05)
    validation = Validation("r1", "d" * 64, False, 800, 11, (CheckSummary("nulls", 9, 1, False),), (failure,))
    features = (
        feature_drift("region", "categorical", 0.01, False, psi=0.001),
        feature_drift("monthly_charges", "numeric", 0.3, True, psi=0.9),
    )
    drift = Drift(
        "r1",
        "d" * 64,
        "reference.csv",
        "csv",
        Status.FAILED,
        features,
        ("monthly_charges",),
        (),
        False,
        None,
        None,
        drift_limits(),
    )
    write_record(project.out / "validation.json", validation)
    write_record(project.out / "drift.json", drift)

    text = report(project)

    assert "tenure_months: 20.0% nulls, limit 5.0%" in text
    drift_rows = [line for line in text.splitlines() if line.startswith(("| monthly_charges", "| region"))]
    assert drift_rows[0].startswith("| monthly_charges"), "drifted features come first"
    assert "every feature, drifted first" in text


def test_report_says_how_many_drift_rows_it_leaves_out(trained: dict[str, Project], tmp_path: Path) -> None:
    project = copy_of(trained["good"], tmp_path)
    features = tuple(feature_drift(f"f{i}", "numeric", 0.01 * i, False, psi=0.01 * i) for i in range(12))
    drift = Drift(
        "r1",
        "d" * 64,
        "reference.csv",
        "csv",
        Status.PASSED,
        features,
        (),
        (),
        False,
        None,
        None,
        drift_limits(),
    )
    write_record(project.out / "drift.json", drift)

    text = report(project)

    assert "0 of 12 features drifted" in text
    assert "8 of 12 features, drifted first, then by PSI (all in drift.json)" in text
    assert "| f11 " in text and "| f3 " not in text, "the rows kept are those with the highest PSI"


def test_report_on_a_regression_task_draws_residuals(make_project: Callable[..., Project]) -> None:
    # given: sklearn's diabetes data as a regression project
    datasets = pytest.importorskip("sklearn.datasets")
    frame = datasets.load_diabetes(as_frame=True).frame.iloc[:300]

    def regression(raw: dict[str, Any]) -> None:
        raw["data"].update(target="target", task="regression", id_columns=[])
        raw["data"].pop("positive_label", None)
        raw["schema"] = {"min_rows": 50, "columns": {c: {"type": "numeric"} for c in frame.columns}}
        raw["model"] = {"kind": "ridge", "params": {}}
        raw["gates"] = {"metric": [{"metric": "r2", "threshold": 0.1}], "slices": {}}
        raw["slices"] = {"columns": []}
        raw["drift"].pop("reference")

    project = make_project(frame=frame, config=regression)
    build_out(project)
    assert main(project.cli("gate", "--champion", str(project.root / "none"))) == 0

    # when
    text = report(project)

    # then
    assert (project.out / "residuals.png").read_bytes()[:8] == PNG_MAGIC, "residuals.png must be a real PNG"
    assert "](residuals.png)" in text
    assert "| r2 " in text and "confusion" not in text.lower()


def test_report_cli_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--help"])

    assert exit_.value.code == 0
    assert "report.md" in capsys.readouterr().out


def test_outcomes_given_by_the_caller_head_the_report_and_land_in_run_json(
    trained: dict[str, Project], tmp_path: Path
) -> None:
    # given a gated model whose gates passed, and a caller (the Dagger module) that saw lint fail
    project = copy_of(trained["good"], tmp_path)
    assert main(project.cli("gate", "--champion", str(project.root / "none"))) == 0
    steps = [
        "lint=failed:1:pipeline/cli.py:3:1: F401 `os` imported but unused",
        "test=ok:0:",
        "validate=ok:0:",
        "train=ok:0:",
        "evaluate=ok:0:",
        "gate=ok:0:",
        "build_image=skipped:0:stopped after a failure",
        "smoke_test=skipped:0:stopped after a failure",
    ]

    # when the report is written with those outcomes
    assert main(project.cli("report", *[arg for step in steps for arg in ("--step", step)])) == 0
    text = (project.out / "report.md").read_text()

    # then it is headed FAILED by the failing step (never PASSED on a red run), every step's outcome is
    # listed, and run.json records them for the job summary
    assert text.startswith("# Model report: FAILED"), text.splitlines()[0]
    assert "Step **lint** failed (exit 1): pipeline/cli.py:3:1: F401" in text
    assert "build_image skipped (stopped after a failure)" in text
    run = json.loads((project.out / "run.json").read_text())
    assert [(s["name"], s["status"]) for s in run["steps"]][:2] == [("lint", "failed"), ("test", "ok")]


@pytest.mark.parametrize("bad", ["lint", "lint=done:0:", "lint=ok:x:", "=ok:0:"])
def test_a_malformed_step_outcome_is_one_line_and_exit_2(
    trained: dict[str, Project], tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_of(trained["good"], tmp_path)
    before = sorted(p.name for p in project.out.iterdir())
    assert main(project.cli("report", "--step", bad)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected NAME=STATUS:CODE:NOTE" in err[0], err
    assert sorted(p.name for p in project.out.iterdir()) == before, "a refused report wrote something"

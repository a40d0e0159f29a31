"""The report step as a function: report.md and its plot from a real --out, and outcomes given by a caller."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model.codec import read_record
from pipeline.config import load_config
from pipeline.records import Run, StepOutcome
from pipeline.steps.gate import run_gate
from pipeline.steps.report import run_report
from tests.conftest import Project, copy_of

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_run_report_writes_the_report_and_the_plot_and_returns_its_path(
    trained: dict[str, Project], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: the good candidate, gated without a champion
    project = copy_of(trained["good"], tmp_path)
    config = load_config(project.config)
    run_gate(config, project.out, str(project.root / "none"), "run-1")

    # when
    path = run_report(config, project.out, "run-1")

    # then
    assert path == project.out / "report.md"
    text = path.read_text()
    assert text.startswith("# Model report: PASSED"), text.splitlines()[0]
    assert "](confusion_matrix.png)" in text
    assert (project.out / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC
    assert capsys.readouterr() == ("", ""), "a step prints nothing: its command does"


def test_outcomes_given_by_the_caller_make_the_run_reported_on(
    make_project: Callable[..., Project],
) -> None:
    # given: an empty --out and a caller that says lint failed
    project = make_project(rows=100)
    given = (StepOutcome("lint", "failed", 1, 0.0, "F401"), StepOutcome("train", "skipped", 0, 0.0, "lint"))

    # when
    path = run_report(load_config(project.config), project.out, "run-9", given)

    # then: run.json records them under the run reported on, and the headline names the failure
    run = read_record(project.out / Run.FILE, Run)
    assert run.run == "run-9" and run.steps == given
    text = path.read_text()
    assert text.startswith("# Model report: FAILED"), text.splitlines()[0]
    assert "Step **lint** failed (exit 1): F401" in text
    assert "`gates.json` (gate)" in text, "what no step produced is still named"

"""The gate step as a function: real candidates and champions, the record it returns and ``gates.json``."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.codec import read_record
from model.records import Status
from pipeline.config import load_config
from pipeline.records import Gates
from pipeline.steps.gate import evaluate_gates, run_gate
from tests.conftest import Project, copy_of


def test_run_gate_writes_the_record_it_returns_and_prints_nothing(
    trained: dict[str, Project], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: the good, evaluated candidate and no champion
    project = copy_of(trained["good"], tmp_path)

    # when
    record = run_gate(load_config(project.config), project.out, str(project.root / "none"), "run-1")

    # then
    assert read_record(project.out / Gates.FILE, Gates) == record
    assert record.run == "run-1" and record.passed, record.gates
    by_name = {result.name: result for result in record.gates}
    assert by_name["no_regression"].status is Status.SKIPPED, by_name["no_regression"]
    assert record.champion is None
    assert capsys.readouterr() == ("", ""), "a step prints nothing: its command does"


def test_a_failed_gate_is_a_record_not_an_exception(trained: dict[str, Project], tmp_path: Path) -> None:
    # given: a candidate that sees no real signal, the good model as champion
    weak, champion = copy_of(trained["weak"], tmp_path), trained["good"]
    (weak.out / Gates.FILE).unlink(missing_ok=True)

    # when
    record = evaluate_gates(load_config(weak.config), weak.out, str(champion.out / "model"), "run-2")

    # then: the verdict is returned (the command raises on it), and nothing is written
    assert record.passed is False
    by_name = {result.name: result for result in record.gates}
    assert by_name["no_regression"].status is Status.FAILED, by_name["no_regression"]
    assert record.champion is not None and record.champion.path == str(champion.out / "model")
    assert not (weak.out / Gates.FILE).exists(), "evaluate_gates returns the record; run_gate writes it"

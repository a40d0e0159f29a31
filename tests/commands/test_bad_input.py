"""Bad input to ``train``: exit 2, one clear ``error:`` line, no traceback, nothing written."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.core.synth import churn_frame
from tests.conftest import Project

MakeProject = Callable[..., Project]


def missing_file(make: MakeProject) -> Project:
    project = make(rows=100)
    project.data.unlink()
    return project


def empty_file(make: MakeProject) -> Project:
    project = make(rows=100)
    project.data.write_text("")
    return project


def header_only(make: MakeProject) -> Project:
    project = make(rows=100)
    project.data.write_text(project.data.read_text().splitlines()[0] + "\n")
    return project


def binary_garbage(make: MakeProject) -> Project:
    project = make(rows=100)
    project.data.write_bytes(bytes(range(256)) * 8)
    return project


def missing_target(make: MakeProject) -> Project:
    return make(frame=churn_frame(200, 1).drop(columns=["churned"]))


def target_all_null(make: MakeProject) -> Project:
    return make(frame=churn_frame(200, 1).assign(churned=np.nan))


def single_class(make: MakeProject) -> Project:
    return make(frame=churn_frame(200, 1).assign(churned=0))


def unknown_kind(make: MakeProject) -> Project:
    return make(rows=200, config=lambda c: c["model"].update(kind="crystal_ball"))


def malformed_toml(make: MakeProject) -> Project:
    project = make(rows=200)
    project.config.write_text("[data\npath = 'x.csv'\n")
    return project


def unknown_config_key(make: MakeProject) -> Project:
    return make(rows=200, config=lambda c: c["training"].update(colour="red"))


def negative_sample_size(make: MakeProject) -> Project:
    return make(rows=200, config=lambda c: c["training"].update(sample_rows=-5))


CASES: list[tuple[Callable[[MakeProject], Project], str]] = [
    (missing_file, "data file not found"),
    (empty_file, "file is empty"),
    (header_only, "header only"),
    (binary_garbage, "binary content"),
    (missing_target, "target column 'churned' not found"),
    (target_all_null, "target column 'churned' is null in all 200 rows"),
    (single_class, "single class 0"),
    (unknown_kind, "unknown model kind 'crystal_ball'"),
    (malformed_toml, "malformed TOML"),
    (unknown_config_key, "unknown key 'training.colour'"),
    (negative_sample_size, "training.sample_rows must be an integer >= 0"),
]


@pytest.mark.parametrize(("setup", "message"), CASES, ids=[case.__name__ for case, _ in CASES])
def test_bad_input_exits_2_with_one_error_line_and_writes_nothing(
    make_project: MakeProject,
    capsys: pytest.CaptureFixture[str],
    setup: Callable[[MakeProject], Project],
    message: str,
) -> None:
    # given a project broken in one way
    project = setup(make_project)
    capsys.readouterr()

    # when
    code = main(project.cli("train"))

    # then
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, f"expected exit 2, got {code}; stderr:\n{err}"
    assert len(errors) == 1, f"expected one error line, got:\n{err}"
    assert message in errors[0], f"error line does not say {message!r}: {errors[0]}"
    assert "Traceback" not in err, f"a traceback leaked:\n{err}"
    assert not project.out.exists(), "a failed train created its output directory"

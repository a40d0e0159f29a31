"""Bad input to ``train``: exit 2, one clear ``error:`` line, no traceback, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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


def semicolon_separated(make: MakeProject) -> Project:
    project = make(rows=100)
    churn_frame(100, 1).to_csv(project.data, index=False, sep=";")
    return project


def tab_separated(make: MakeProject) -> Project:
    project = make(rows=100)
    churn_frame(100, 1).to_csv(project.data, index=False, sep="\t")
    return project


def duplicate_column_name(make: MakeProject) -> Project:
    project = make(rows=100)
    lines = project.data.read_text().splitlines()
    names = lines[0].split(",")
    names[2] = names[1]
    project.data.write_text("\n".join([",".join(names), *lines[1:]]) + "\n")
    return project


def unnamed_column(make: MakeProject) -> Project:
    project = make(rows=100)
    lines = project.data.read_text().splitlines()
    names = lines[0].split(",")
    names[3] = " "
    project.data.write_text("\n".join([",".join(names), *lines[1:]]) + "\n")
    return project


def written_with_its_index(make: MakeProject) -> Project:
    project = make(rows=100)
    churn_frame(100, 1).to_csv(project.data, index=True)
    return project


def truncated_last_row(make: MakeProject) -> Project:
    project = make(rows=100)
    text = project.data.read_text()
    project.data.write_text(text[: text.rstrip("\n").rfind(",", 0, -20)])
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
    (semicolon_separated, "the header reads as one column and looks ';'-separated; expected commas"),
    (tab_separated, "looks tab-separated; expected commas"),
    (duplicate_column_name, "appears 2 times in the header (columns 2 and 3); expected unique names"),
    (unnamed_column, "column 4 has no name in the header; expected a name for every column"),
    (written_with_its_index, "column 1 has no name in the header; expected a name for every column (a table"),
    (truncated_last_row, "fields; the file looks cut short, expected complete rows"),
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


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_an_out_that_is_a_file_or_a_link_is_one_line_and_exit_2(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an --out that is a file, or a link to a directory elsewhere
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "file":
        out.write_text("not a directory")
    else:
        out.symlink_to(elsewhere)
    # when a step would write there
    code = main(["train", "--out", str(out)])
    # then it is refused in one line, and nothing is written through the link
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"--out {out}" in err[0], err
    assert not any(elsewhere.iterdir())


def test_an_internal_error_is_exit_70_never_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a command that crashes with a bug (an exception no error type covers)
    from pipeline.commands import synth

    def crash(args: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(synth, "run", crash)
    # when it runs, the exit code says "internal error", not "a check failed"
    assert main(["synth", "--rows", "10", "--out", "x.csv"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: internal error in `synth`")

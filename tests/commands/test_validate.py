"""``validate``: every failure reported at once, exit 2 with one line, exact duplicate counting."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.core.synth import churn_frame
from tests.conftest import Project

MakeProject = Callable[..., Project]


def _run(project: Project, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(project.cli("validate", *extra))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _report(project: Project) -> dict[str, Any]:
    return json.loads((project.out / "validation.json").read_text())


def _failed(report: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {(f["check"], f["column"]) for f in report["failures"]}


def test_clean_project_passes_and_writes_validation_and_drift(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a seeded churn project with a drift reference
    project = make_project()

    # when
    code, out, err = _run(project, capsys)

    # then
    assert code == 0, f"clean data should pass; stderr: {err}\nstdout:\n{out}"
    report = _report(project)
    assert report["passed"] is True and report["failures"] == [], f"unexpected failures: {report['failures']}"
    assert report["rows"] == 800 and report["columns"] == 11
    ran = {c["check"] for c in report["checks"]}
    expected = {"min_rows", "required_columns", "unexpected_columns", "target", "labels", "class_balance"}
    expected |= {"type", "range", "allowed", "nulls", "infinite", "duplicates"}
    expected |= {"constant", "category_variants", "mixed_types", "id_like", "conflicting_labels", "leakage"}
    assert ran == expected, f"checks run differ: missing {expected - ran}, extra {ran - expected}"
    assert (project.out / "drift.json").is_file(), (
        "validate must write drift.json when drift.reference is set"
    )
    assert "nulls" in out and "ok" in out, f"stdout should show the check table:\n{out}"
    assert err == "", f"a passing validate should be quiet on stderr, got: {err}"


def test_20_percent_nulls_against_5_percent_limit_exits_2_naming_the_column(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given total_charges (limit 5%) with exactly 20% nulls
    frame = churn_frame(800, 3)
    frame["total_charges"] = frame["total_charges"].fillna(0.0)
    frame.loc[frame.sample(frac=0.2, random_state=0).index, "total_charges"] = np.nan
    project = make_project(frame=frame)

    # when
    code, _, err = _run(project, capsys)

    # then
    lines = err.strip().splitlines()
    assert code == 2, f"expected exit 2, got {code}; stderr: {err}"
    assert len(lines) == 1, f"expected exactly one stderr line, got:\n{err}"
    assert "'total_charges'" in lines[0] and "20.0% nulls" in lines[0] and "limit 5.0%" in lines[0], lines[0]
    report = _report(project)
    assert report["passed"] is False
    failure = next(f for f in report["failures"] if f["column"] == "total_charges")
    assert failure["check"] == "nulls" and failure["observed"] == pytest.approx(0.2), failure
    assert failure["expected"] == pytest.approx(0.05), failure


def test_every_failure_is_reported_in_one_run(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given one table broken in eight different ways
    frame = churn_frame(800, 3)
    frame.loc[:199, "total_charges"] = np.nan  # 25% nulls, limit 5%
    frame.loc[5, "tenure_months"] = -4  # below min 0
    frame["monthly_charges"] = frame["monthly_charges"].astype(object)
    frame.loc[[7, 8, 9], "monthly_charges"] = "twelve"  # text in a numeric column
    frame.loc[10, "contract"] = "weekly"  # not allowed
    frame["support_calls"] = frame["support_calls"].astype(float)
    frame.loc[11, "support_calls"] = np.inf  # infinity
    frame = frame.drop(columns=["region"]).assign(extra=1)  # missing + unexpected column
    frame = pd.concat([frame, frame.iloc[:40]], ignore_index=True)  # 4.8% duplicate rows, limit 1%
    project = make_project(frame=frame)

    # when
    code, out, err = _run(project, capsys)

    # then
    assert code == 2, f"expected exit 2, got {code}"
    assert len(err.strip().splitlines()) == 1, f"expected one stderr line:\n{err}"
    assert "and 7 more failures" in err, f"the error line should count the other failures: {err}"
    failures = {f["check"]: f for f in _report(project)["failures"]}
    assert set(failures) == {
        "required_columns",
        "unexpected_columns",
        "type",
        "range",
        "allowed",
        "nulls",
        "infinite",
        "duplicates",
    }, f"not every failure was reported: {sorted(failures)}"
    # rows 0-39 appear twice, so each planted value is counted twice
    assert failures["type"]["observed"] == {"count": 6, "example": "twelve"}, failures["type"]
    assert failures["range"]["observed"]["below"] == 2, failures["range"]
    assert failures["allowed"]["observed"]["values"] == ["weekly"], failures["allowed"]
    assert failures["duplicates"]["observed"] == pytest.approx(40 / 840), failures["duplicates"]
    for check in failures:
        assert check in out, f"stdout table lacks the {check} failure:\n{out}"


def _missing_file(project: Project) -> None:
    project.data.unlink()


def _empty_file(project: Project) -> None:
    project.data.write_text("")


def _header_only(project: Project) -> None:
    project.data.write_text(project.data.read_text().splitlines()[0] + "\n")


def _binary_garbage(project: Project) -> None:
    project.data.write_bytes(bytes(range(256)) * 8)


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (_missing_file, "data file not found"),
        (_empty_file, "file is empty"),
        (_header_only, "header only"),
        (_binary_garbage, "binary content"),
    ],
    ids=["missing_file", "empty_file", "header_only", "binary_garbage"],
)
def test_unreadable_input_exits_2_with_one_line_and_writes_nothing(
    make_project: MakeProject,
    capsys: pytest.CaptureFixture[str],
    breaks: Callable[[Project], None],
    message: str,
) -> None:
    # given
    project = make_project(rows=100)
    breaks(project)

    # when
    code, _, err = _run(project, capsys)

    # then
    assert code == 2, f"expected exit 2, got {code}; stderr: {err}"
    assert err.count("\n") == 1 and err.startswith("error:"), f"expected one error line:\n{err}"
    assert message in err, f"error line does not say {message!r}: {err}"
    assert not project.out.exists(), "unreadable input must not create any output"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (churn_frame(200, 1).drop(columns=["churned"]), "target column 'churned' not found"),
        (churn_frame(200, 1).assign(churned=np.nan), "target column 'churned' is null in all 200 rows"),
        (churn_frame(200, 1).assign(churned=0), "single class 0"),
    ],
    ids=["missing_target", "target_all_null", "single_class"],
)
def test_unusable_target_exits_2_with_one_line_and_a_report(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], frame: pd.DataFrame, message: str
) -> None:
    # given a readable table whose target cannot be learned from
    project = make_project(frame=frame)

    # when
    code, _, err = _run(project, capsys)

    # then: a validation failure: exit 2, one line, and validation.json is the report
    assert code == 2, f"expected exit 2, got {code}; stderr: {err}"
    assert err.count("\n") == 1 and "Traceback" not in err, f"expected one error line:\n{err}"
    assert message in err, f"error line does not say {message!r}: {err}"
    assert any(message in f["message"] for f in _report(project)["failures"]), (
        "failure missing from the report"
    )


def test_shifted_data_still_passes_validate_but_drift_json_says_drifted(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given data drifted away from the reference but within the schema
    project = make_project(frame=churn_frame(800, 3, shift=0.5))

    # when
    code, _, err = _run(project, capsys)

    # then: drift never fails validate; the gate reads drift.json
    assert code == 0, f"drift must not fail validate: {err}"
    drift = json.loads((project.out / "drift.json").read_text())
    assert drift["passed"] is False and drift["drifted"], f"shifted data should drift: {drift['drifted']}"


def test_data_option_overrides_the_configured_path(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # given a config pointing at good data and a bad table passed with --data
    project = make_project()
    other = tmp_path / "other.csv"
    churn_frame(300, 5).assign(contract="weekly").to_csv(other, index=False)

    # when
    code, _, err = _run(project, capsys, "--data", str(other))

    # then
    assert code == 2, f"--data table should have been validated: {err}"
    assert "'contract'" in err and "weekly" in err, err
    assert _report(project)["rows"] == 300


def test_unexpected_columns_pass_when_allowed(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an extra column and schema.allow_unexpected_columns = true
    project = make_project(
        frame=churn_frame(400, 3).assign(note="x"),
        config=lambda c: c["schema"].update(allow_unexpected_columns=True),
    )

    # when
    code, _, err = _run(project, capsys)

    # then
    assert code == 0, f"an allowed extra column must not fail: {err}"
    assert "unexpected_columns" not in {c["check"] for c in _report(project)["checks"]}

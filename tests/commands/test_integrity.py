"""``validate`` on tables with integrity and leakage defects: each flagged by name (exit 2), a clean twin not.

Every case starts from the seeded churn table and plants one defect a user's export could have.
The clean twin is the same table without it; it must pass that check (and, for most, validate).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.core.synth import churn_frame
from tests.conftest import Project, diabetes_table

MakeProject = Callable[..., Project]
ROWS = 800


def _validate(project: Project, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[dict[str, Any]]]:
    capsys.readouterr()
    code = main(project.cli("validate"))
    err = capsys.readouterr().err
    report = json.loads((project.out / "validation.json").read_text())
    return code, err, report["failures"]


def _named(failures: list[dict[str, Any]], check: str) -> set[str | None]:
    return {f["column"] for f in failures if f["check"] == check}


def _with_feature(name: str, spec: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """Add a feature the drift reference lacks (so it is left out: the reference check would stop first)."""

    def edit(raw: dict[str, Any]) -> None:
        raw["schema"]["columns"][name] = spec
        raw["drift"].pop("reference")

    return edit


def test_a_constant_feature_is_flagged_and_a_varied_one_is_not(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given one table whose region is always "north", one as generated
    frame = churn_frame(ROWS, 3).assign(region="north")
    constant = make_project(frame=frame, name="constant")
    clean = make_project(name="clean")

    # when
    code, err, failures = _validate(constant, capsys)
    clean_code, _, clean_failures = _validate(clean, capsys)

    # then
    assert code == 2 and _named(failures, "constant") == {"region"}, failures
    assert "'region' has a single value ('north')" in " ".join(f["message"] for f in failures)
    assert err.count("\n") == 1, err
    assert clean_code == 0 and not _named(clean_failures, "constant")


def test_a_near_constant_feature_is_flagged_above_the_dominant_share(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given support_calls = 0 in all but 4 rows (99.5%), and in all but 20 (97.5%), limit 99%
    def tight(raw: dict[str, Any]) -> None:
        raw["schema"]["max_dominant_fraction"] = 0.99

    def calls(others: int) -> pd.DataFrame:
        frame = churn_frame(ROWS, 3)
        frame["support_calls"] = 0
        frame.loc[: others - 1, "support_calls"] = 3
        return frame

    near = make_project(frame=calls(4), config=tight, name="near")
    varied = make_project(frame=calls(20), config=tight, name="varied")

    code, _, failures = _validate(near, capsys)
    _, _, varied_failures = _validate(varied, capsys)

    assert code == 2 and _named(failures, "constant") == {"support_calls"}, failures
    assert "near-constant: 0 in 99.5%" in next(f["message"] for f in failures if f["check"] == "constant")
    assert not _named(varied_failures, "constant")


def test_spellings_of_one_category_that_differ_by_case_or_spaces_are_flagged(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given contract spelled "one_year", "One_Year" and "one_year " (the schema lists no allowed set)
    def open_contract(raw: dict[str, Any]) -> None:
        raw["schema"]["columns"]["contract"].pop("allowed")

    frame = churn_frame(ROWS, 3)
    ones = frame.index[frame["contract"] == "one_year"]
    frame.loc[ones[:10], "contract"] = "One_Year"
    frame.loc[ones[10:20], "contract"] = "one_year "
    spelled = make_project(frame=frame, config=open_contract, name="spelled")
    clean = make_project(config=open_contract, name="clean")

    code, _, failures = _validate(spelled, capsys)
    clean_code, _, _ = _validate(clean, capsys)

    assert code == 2 and _named(failures, "category_variants") == {"contract"}, failures
    message = next(f["message"] for f in failures if f["check"] == "category_variants")
    assert "'One_Year' / 'one_year' / 'one_year '" in message, message
    assert clean_code == 0


def test_a_yes_no_target_spelled_three_ways_is_flagged(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    def text_target(raw: dict[str, Any]) -> None:
        raw["data"]["positive_label"] = "Yes"
        raw["schema"]["labels"] = None
        raw["schema"].pop("labels")
        raw["schema"]["columns"]["churned"] = {"type": "categorical", "nullable": False}

    frame = churn_frame(ROWS, 3)
    frame["churned"] = frame["churned"].map({1: "Yes", 0: "No"})
    frame.loc[:9, "churned"] = frame.loc[:9, "churned"].str.upper()
    project = make_project(frame=frame, config=text_target)

    code, _, failures = _validate(project, capsys)

    assert code == 2 and "churned" in _named(failures, "category_variants"), failures


def test_numbers_mixed_into_a_text_feature_are_flagged(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    def open_region(raw: dict[str, Any]) -> None:
        raw["schema"]["columns"]["region"].pop("allowed")

    frame = churn_frame(ROWS, 3)
    frame.loc[:39, "region"] = "7"
    mixed = make_project(frame=frame, config=open_region, name="mixed")
    clean = make_project(config=open_region, name="clean")

    code, _, failures = _validate(mixed, capsys)
    clean_code, _, _ = _validate(clean, capsys)

    assert code == 2 and _named(failures, "mixed_types") == {"region"}, failures
    message = next(f["message"] for f in failures if f["check"] == "mixed_types")
    assert "numbers (40 rows" in message and "text (760 rows" in message, message
    assert clean_code == 0


def test_an_undeclared_id_column_is_flagged_and_a_declared_one_is_not(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an account number, unique per row, in the schema as a feature; then declared as an id
    frame = churn_frame(ROWS, 3).assign(account=np.arange(10_000, 10_000 + ROWS))
    feature = make_project(frame=frame, config=_with_feature("account", {"type": "numeric"}), name="feature")

    def declared(raw: dict[str, Any]) -> None:
        _with_feature("account", {"type": "numeric"})(raw)
        raw["data"]["id_columns"] = ["customer_id", "account"]

    declared_project = make_project(frame=frame, config=declared, name="declared")

    code, _, failures = _validate(feature, capsys)
    declared_code, _, declared_failures = _validate(declared_project, capsys)

    assert code == 2 and _named(failures, "id_like") == {"account"}, failures
    assert "declare it in data.id_columns" in next(f["message"] for f in failures if f["check"] == "id_like")
    assert declared_code == 0 and not _named(declared_failures, "id_like"), declared_failures


def test_identical_features_with_different_labels_are_flagged(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given 5% of the rows copied with the other label (new customer ids: not exact duplicates)
    frame = churn_frame(ROWS, 3)
    copies = frame.iloc[:40].copy()
    copies["churned"] = 1 - copies["churned"]
    copies["customer_id"] = [f"COPY-{i}" for i in range(40)]
    conflicting = make_project(frame=pd.concat([frame, copies], ignore_index=True), name="conflicting")
    clean = make_project(name="clean")

    code, _, failures = _validate(conflicting, capsys)
    _, _, clean_failures = _validate(clean, capsys)

    assert code == 2 and _named(failures, "conflicting_labels") == {"churned"}, failures
    message = next(f["message"] for f in failures if f["check"] == "conflicting_labels")
    assert "(80 of 840)" in message and "40 groups" in message, message
    assert not _named(clean_failures, "conflicting_labels")


def test_a_feature_that_copies_the_target_is_flagged_by_name(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a "cancelled" flag that is the target itself, 0.5% flipped
    frame = churn_frame(ROWS, 3)
    noise = np.random.default_rng(0).random(ROWS) < 0.005
    frame["cancelled"] = np.where(noise, 1 - frame["churned"], frame["churned"])
    leaky = make_project(frame=frame, config=_with_feature("cancelled", {"type": "numeric"}), name="leaky")

    code, _, failures = _validate(leaky, capsys)

    assert code == 2 and _named(failures, "leakage") == {"cancelled"}, failures
    message = next(f["message"] for f in failures if f["check"] == "leakage")
    assert "'cancelled' alone predicts 'churned' with ROC AUC 0.9" in message, message


def test_honest_features_are_not_called_leakage(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, failures = _validate(make_project(), capsys)
    assert code == 0 and not _named(failures, "leakage")


def test_a_regression_feature_that_is_the_target_plus_noise_is_flagged(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given diabetes with "followup" = target + 1% noise
    frame = diabetes_table()
    rng = np.random.default_rng(1)
    frame["followup"] = frame["target"] + rng.normal(0, frame["target"].std() * 0.01, len(frame))

    def regression(raw: dict[str, Any]) -> None:
        raw["data"].update(target="target", task="regression", id_columns=[])
        raw["data"].pop("positive_label", None)
        columns = {c: {"type": "numeric"} for c in frame.columns if c != "sex"}
        raw["schema"] = {"min_rows": 50, "columns": {**columns, "sex": {"type": "categorical"}}}
        raw["drift"].pop("reference")
        raw["slices"] = {"columns": []}
        raw["gates"]["metric"] = [{"metric": "r2", "threshold": 0.1}]
        raw["gates"]["champion"]["metric"] = "r2"
        raw["gates"]["slices"]["metric"] = "r2"

    project = make_project(frame=frame, config=regression)

    code, _, failures = _validate(project, capsys)

    assert code == 2 and _named(failures, "leakage") == {"followup"}, failures
    assert "with R² 0.99" in next(f["message"] for f in failures if f["check"] == "leakage")


def test_a_check_can_be_turned_off_by_name(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    def skip(raw: dict[str, Any]) -> None:
        raw["schema"]["skip_checks"] = ["constant"]

    project = make_project(frame=churn_frame(ROWS, 3).assign(region="north"), config=skip)

    code, _, failures = _validate(project, capsys)
    checks = {c["check"] for c in json.loads((project.out / "validation.json").read_text())["checks"]}

    assert code == 0 and "constant" not in checks, failures


def test_an_unknown_check_name_is_refused_before_any_work(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    def typo(raw: dict[str, Any]) -> None:
        raw["schema"]["skip_checks"] = ["constnat"]

    project = make_project(config=typo)
    capsys.readouterr()
    code = main(project.cli("validate"))
    err = capsys.readouterr().err
    assert code == 2 and "schema.skip_checks names 'constnat', not a check" in err, err
    assert not (project.out / "validation.json").exists()

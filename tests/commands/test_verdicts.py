"""Verdicts right for the right reason: each finding of the trial on real tables, through the real CLI.

The champion is scored only on rows it never trained on; a gate that cannot decide is
inconclusive; a failed run's report says FAILED and shows nothing from an earlier run; drift
never passes having compared less than the schema; a 0/1 flag drifts; train refuses what
validate refuses; config mistakes stop a run before any work; the latency gate is a ratio.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from model.codec import read_record
from model.records import Status
from pipeline.cli import main
from pipeline.core.synth import churn_frame
from pipeline.records import Gates
from tests.conftest import Project, build_out, metadata_json, weak_features

MakeProject = Callable[..., Project]


def forest(seed: int, salt: str = "ml-cicd") -> Callable[[dict[str, Any]], None]:
    """Config edit: a 300-tree random forest with ``seed`` (enough trees for a seed to matter little), split with ``salt``."""

    def edit(raw: dict[str, Any]) -> None:
        raw["model"] = {"kind": "random_forest", "params": {"n_estimators": 300, "min_samples_leaf": 2}}
        raw["training"].update(seed=seed, split_salt=salt)

    return edit


def without_contract(raw: dict[str, Any]) -> None:
    """Config edit: the model does not see ``contract``, its strongest feature (about 0.06 ROC AUC less)."""
    del raw["schema"]["columns"]["contract"]
    raw["schema"]["allow_unexpected_columns"] = True
    raw["slices"]["columns"] = ["region"]


def gates_of(project: Project, champion: Path) -> tuple[int, Gates]:
    code = main(project.cli("gate", "--champion", str(champion)))
    return code, read_record(project.out / "gates.json", Gates)


def run(project: Project, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    argv = ["run", "--config", str(project.config), "--out", str(project.out), "--skip", "lint,test"]
    code = main([*argv, "--cache-dir", str(project.root / "cache"), *extra])
    return code, capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# 1. The champion is scored on the candidate's held-out rows it never trained on.


@pytest.mark.slow
def test_a_forest_retrained_with_another_seed_passes_against_a_forest_champion(
    make_project: MakeProject,
) -> None:
    # given: a random-forest champion and a retrain of the same table with another seed
    frame = churn_frame(3000, 8)
    champion = make_project(frame=frame, config=forest(seed=1), name="champion")
    candidate = make_project(frame=frame, config=forest(seed=2), name="candidate")
    build_out(champion)
    build_out(candidate)

    # when
    code, gates = gates_of(candidate, champion.out / "model")

    # then: the same held-out side for both (no seed in the split), so nothing is left out, and it passes
    result, section = gates.result("no_regression"), gates.champion
    assert result is not None and section is not None
    assert code == 0 and result.status is Status.PASSED, result.message
    assert section.excluded == 0 and section.rows == metadata_json(candidate.out / "model")["holdout_rows"]
    assert "held-out rows the champion never trained on" in result.message


@pytest.mark.slow
def test_rows_the_champion_trained_on_are_left_out_and_counted(make_project: MakeProject) -> None:
    # given: a champion whose split used another salt, so part of our held-out side was its training side
    frame = churn_frame(3000, 8)
    champion = make_project(frame=frame, config=forest(seed=1, salt="last-year"), name="champion")
    candidate = make_project(frame=frame, config=forest(seed=2), name="candidate")
    build_out(champion)
    build_out(candidate)

    # when
    _, gates = gates_of(candidate, champion.out / "model")

    # then: about three quarters of our held-out rows were the champion's training rows, and left out
    section = gates.champion
    assert section is not None
    held_out = metadata_json(candidate.out / "model")["holdout_rows"]
    assert section.rows + section.excluded == held_out
    assert 0.6 < section.excluded / held_out < 0.9, (section.rows, section.excluded)
    result = gates.result("no_regression")
    assert result is not None and f"({section.excluded} it trained on left out)" in result.message


@pytest.mark.slow
def test_a_genuinely_worse_candidate_still_fails(make_project: MakeProject) -> None:
    frame = churn_frame(3000, 8)
    champion = make_project(frame=frame, config=forest(seed=1), name="champion")
    weak = make_project(frame=frame, config=weak_features, name="weak")
    build_out(champion)
    build_out(weak)

    code, gates = gates_of(weak, champion.out / "model")

    result = gates.result("no_regression")
    assert result is not None and code == 1 and result.status is Status.FAILED, result.message


# ---------------------------------------------------------------------------------------------
# 2. A gate that cannot tell says inconclusive: a required one fails the run under the "fail" rule, and
#    under "warn" (the default) passes the check loudly but is never publishable.


@pytest.mark.slow
def test_fifty_held_out_rows_cannot_decide_a_drop(make_project: MakeProject) -> None:
    # given: a 200-row table (about 50 held out), a champion and a candidate some 0.06 ROC AUC worse
    frame = churn_frame(200, 4)
    small = {"min_rows": 20, "inconclusive": "fail"}
    champion = make_project(
        frame=frame, name="champion", config=lambda c: c["gates"]["champion"].update(small)
    )
    weak = make_project(
        frame=frame, name="weak", config=lambda c: (without_contract(c), c["gates"]["champion"].update(small))
    )
    build_out(champion)
    build_out(weak)

    # when
    code, gates = gates_of(weak, champion.out / "model")

    # then: the interval is too wide to tell a drop from a tie
    result = gates.result("no_regression")
    assert result is not None and result.status is Status.INCONCLUSIVE, result.message
    assert code == 1, 'a required inconclusive gate fails the run under inconclusive = "fail"'
    assert gates.inconclusive_rule == "fail" and not gates.publishable
    assert "CI" in result.message and "held-out rows would decide" in result.message, result.message


@pytest.mark.slow
def test_too_few_rows_the_champion_never_saw_is_inconclusive(make_project: MakeProject) -> None:
    frame = churn_frame(200, 4)
    champion, candidate = (
        make_project(frame=frame, name="champion"),
        make_project(frame=frame, name="candidate"),
    )
    build_out(champion)
    build_out(candidate)

    code, gates = gates_of(candidate, champion.out / "model")

    result = gates.result("no_regression")
    assert result is not None and result.status is Status.INCONCLUSIVE, result
    assert code == 0 and gates.passed and not gates.publishable, "the default rule warns; nothing publishes"
    assert "at least 100 are needed" in result.message, result.message


# ---------------------------------------------------------------------------------------------
# 3. A failed run's report says FAILED, names the step, and shows nothing from an earlier run.


@pytest.mark.slow
def test_bad_data_into_a_reused_out_gives_a_report_headed_failed(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: a passing run into out/
    project = make_project(rows=600)
    code, err = run(project, capsys, "--image", "never")
    assert code == 0, err
    assert (project.out / "report.md").read_text().startswith("# Model report: PASSED")

    # when: the table goes bad and the pipeline runs again into the same out/
    frame = churn_frame(600, 3)
    frame.loc[: len(frame) // 5, "total_charges"] = np.nan
    frame.to_csv(project.data, index=False)
    code, err = run(project, capsys, "--image", "never")

    # then
    report = (project.out / "report.md").read_text()
    assert code == 2, err
    assert report.startswith("# Model report: FAILED"), report.splitlines()[0]
    assert "Step **validate** failed (exit 2): validation failed: column 'total_charges'" in report
    assert "validate failed, train skipped (stopped after a failure)" in report
    assert "report in progress." in report, "the report step is the one writing this"
    for stale in ("gates.json", "metrics.json", "model"):
        assert not (project.out / stale).exists(), f"{stale} of the earlier run is still in out/"
    assert "## Gates" not in report and "Candidate model" not in report, "an earlier run's results are shown"


# ---------------------------------------------------------------------------------------------
# 4. Drift compares every feature or does not pass.


@pytest.mark.parametrize(
    ("reference", "missing"),
    [
        (lambda f: f.drop(columns=["support_calls"]), ["support_calls"]),
        (lambda f: f[["churned"]], ["tenure_months", "monthly_charges", "contract"]),
        (lambda f: f.rename(columns=lambda c: f"{c}_2019"), ["tenure_months", "region"]),
    ],
    ids=["a-missing-feature", "target-only", "another-dataset"],
)
def test_a_reference_that_lacks_features_is_not_a_pass(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], reference: Any, missing: list[str]
) -> None:
    project = make_project(rows=400)
    other = project.root / "other.csv"
    reference(churn_frame(400, 50)).to_csv(other, index=False)

    code = main(project.cli("drift", "--reference", str(other)))

    err = capsys.readouterr().err
    report = json.loads((project.out / "drift.json").read_text())
    assert code == 1 and report["status"] == "error" and report["passed"] is False, report
    assert all(name in err and name in report["missing"] for name in missing), err


def test_a_semicolon_separated_reference_is_refused_before_any_work(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(rows=400)
    churn_frame(400, 50).to_csv(project.reference, sep=";", index=False)

    code = main(project.cli("validate"))

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: drift.reference: ") and "looks ';'-separated; expected commas" in err, err
    assert not project.out.exists(), "nothing may be written before the config is sound"


# ---------------------------------------------------------------------------------------------
# 5. A 0/1 flag drifts.


@pytest.mark.parametrize("kind", ["numeric", "boolean"])
def test_a_zero_one_flag_shifted_from_16_to_50_percent_drifts_against_the_model(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    # given: a model trained where 16% of customers have a flag (typed numeric, as it used to be, or boolean)
    rng = np.random.default_rng(3)
    train = churn_frame(2000, 3).assign(senior=(rng.random(2000) < 0.16).astype(int))
    later = churn_frame(2000, 9).assign(senior=(rng.random(2000) < 0.50).astype(int))

    def with_flag(raw: dict[str, Any]) -> None:
        raw["schema"]["columns"]["senior"] = {"type": kind, "nullable": False}
        raw["drift"].pop("reference")  # the model's own profile is the reference here

    project = make_project(frame=train, config=with_flag)
    assert main(project.cli("train")) == 0
    later_path = project.root / "later.csv"
    later.to_csv(later_path, index=False)

    # when
    code = main(project.cli("drift", "--model", str(project.out / "model"), "--data", str(later_path)))

    # then
    report = json.loads((project.out / "drift.json").read_text())
    senior = next(f for f in report["features"] if f["feature"] == "senior")
    assert code == 1 and "senior" in report["drifted"], senior
    assert senior["psi"] > 0.2, senior


def test_categories_the_reference_never_had_count_as_drift(make_project: MakeProject) -> None:
    project = make_project(rows=600, config=lambda c: c["schema"]["columns"]["region"].pop("allowed"))
    shifted = churn_frame(600, 5)
    shifted.loc[: len(shifted) // 10, "region"] = "atlantis"
    path = project.root / "new.csv"
    shifted.to_csv(path, index=False)

    code = main(project.cli("drift", "--reference", str(project.reference), "--data", str(path)))

    region = next(
        f
        for f in json.loads((project.out / "drift.json").read_text())["features"]
        if f["feature"] == "region"
    )
    assert code == 1 and region["drifted"], region
    assert region["unseen"]["atlantis"] == pytest.approx(61 / 600), region["unseen"]


# ---------------------------------------------------------------------------------------------
# 6. train validates first.


def _ten_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.head(10)


def _thousandfold(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(monthly_charges=frame["monthly_charges"] * 1000)


def _mostly_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame.head(200)] * 3, ignore_index=True)


def _unknown_categories(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(contract="weekly")


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (_ten_rows, "table has 10 rows, expected at least 50"),
        (_thousandfold, "column 'monthly_charges' has"),
        (_mostly_duplicates, "66.7% of rows (400 of 600) repeat an earlier row"),
        (_unknown_categories, "column 'contract' has 600 value(s) not in the allowed set"),
    ],
    ids=["10-rows", "values-x1000", "67%-duplicates", "unknown-categories"],
)
def test_train_refuses_what_validate_refuses(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], bad: Any, says: str
) -> None:
    project = make_project(frame=bad(churn_frame(600, 3)))

    code = main(project.cli("train"))

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: validation failed: "), err
    assert says in err[-1], err[-1]
    assert not (project.out / "model").exists(), "a model was written from data that fails validation"


def test_train_no_validate_says_so_in_the_artefact(make_project: MakeProject) -> None:
    project = make_project(frame=_mostly_duplicates(churn_frame(600, 3)))

    code = main(project.cli("train", "--no-validate"))

    assert code == 0 and metadata_json(project.out / "model")["validated"] is False


# ---------------------------------------------------------------------------------------------
# 7. Config mistakes stop a run before any work.


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (
            lambda c: c["gates"]["metric"][0].update(metric="roc_acu"),
            "unknown classification metric 'roc_acu'",
        ),
        (lambda c: c["slices"].update(columns=["planet"]), "slices.columns names 'planet'"),
        (lambda c: c["model"]["params"].update(n_estimators=10), "unknown parameter(s) n_estimators"),
        (lambda c: c["gates"]["metric"][2].update(direction="higher"), "log_loss is lower-is-better"),
    ],
    ids=["misspelled-metric", "slice-not-a-column", "params-of-another-kind", "direction-contradicts"],
)
def test_config_mistakes_stop_the_run_before_any_step(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str], edit: Any, says: str
) -> None:
    project = make_project(rows=300, config=edit)

    code, err = run(project, capsys, "--image", "never")

    assert code == 2 and says in err and err.count("\n") == 1, err
    assert not project.out.exists(), "a step ran before the config was checked"


# ---------------------------------------------------------------------------------------------
# 9. Latency: a ratio to the champion, timed alternately; a cached figure says so.


@pytest.mark.slow
def test_latency_with_a_champion_is_a_ratio_timed_beside_it(make_project: MakeProject) -> None:
    project = make_project(rows=600)
    build_out(project)

    code, gates = gates_of(project, project.out / "model")

    latency = gates.latency
    assert code == 0 and latency is not None and latency.champion_p95_ms is not None
    assert latency.ratio == pytest.approx(latency.candidate_p95_ms / latency.champion_p95_ms)
    result = gates.result("latency_p95")
    assert result is not None and result.threshold == 1.5 and "alternately" in result.message


@pytest.mark.slow
def test_a_cached_latency_figure_is_labelled_as_restored(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(rows=800)
    code, err = run(project, capsys, "--image", "never")
    assert code == 0, err
    first = read_record(project.out / "gates.json", Gates)

    code, err = run(project, capsys, "--image", "never")

    report = (project.out / "report.md").read_text()
    assert code == 0 and "cached gate" in " ".join(err.split()), err
    assert f"restored from the step cache: timed in run `{first.run}`" in report
    assert "build_image skipped (--image never)" in report

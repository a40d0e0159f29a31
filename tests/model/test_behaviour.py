"""Model behaviour: invariance to ids, the direction of churn drivers, minimum quality, chance level."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from model.artifact import load_artifact
from pipeline.cli import main
from pipeline.core.synth import churn_frame
from tests.conftest import DEFAULT_CONFIG, REPO, Project

MakeProject = Callable[..., Project]
# The shipped gate asks for 0.75; the bundled data gives about 0.82 with the shipped config.
BUNDLED_ROC_AUC_FLOOR = 0.78


def trained(project: Project) -> tuple[Any, dict[str, Any], pd.DataFrame]:
    """Train ``project``; return the model, its metadata and the held-out rows."""
    assert main(project.cli("train")) == 0, "train failed"
    estimator, metadata = load_artifact(project.out / "model")
    return estimator, metadata, pd.read_parquet(project.out / "holdout.parquet")


def churn_probability(estimator: Any, frame: pd.DataFrame) -> np.ndarray:
    """Return the predicted probability of churn (label 1) for every row."""
    return estimator.predict_proba(frame)[:, list(estimator.classes_).index(1)]


def test_changing_ids_does_not_change_predictions(make_project: MakeProject) -> None:
    # given a model trained on a table with customer ids (they decide the held-out side, nothing else)
    one = make_project(frame=churn_frame(600, 12), name="one")

    # when
    model_one, _, holdout = trained(one)
    scrambled = holdout.assign(customer_id=holdout["customer_id"].sample(frac=1, random_state=0).to_numpy())

    # then
    assert "customer_id" not in list(model_one.feature_names_in_), "the id column leaks into training"
    assert np.array_equal(churn_probability(model_one, holdout), churn_probability(model_one, scrambled)), (
        "shuffling the id column changed predictions"
    )


@pytest.mark.parametrize(
    ("column", "change", "direction"),
    [
        ("support_calls", lambda s: s + 3, "up"),
        ("contract", lambda s: pd.Series("month_to_month", index=s.index), "up"),
        ("tenure_months", lambda s: s + 24, "down"),
    ],
)
def test_churn_drivers_move_the_probability_the_right_way(
    make_project: MakeProject, column: str, change: Callable[[pd.Series], pd.Series], direction: str
) -> None:
    # given a logistic regression trained on 1000 rows and held-out customers not on month-to-month
    estimator, _, holdout = trained(make_project(rows=1000))
    rows = holdout.loc[holdout["contract"] != "month_to_month"] if column == "contract" else holdout

    # when
    before = churn_probability(estimator, rows)
    after = churn_probability(estimator, rows.assign(**{column: change(rows[column])}))

    # then
    moved = after - before
    wrong = int(np.sum(moved <= 0) if direction == "up" else np.sum(moved >= 0))
    assert wrong == 0, (
        f"changing {column} moved churn probability the wrong way for {wrong} of {len(rows)} rows"
    )


def test_bundled_data_reaches_the_minimum_quality(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given the shipped config and data (relative paths resolve against the repo root)
    monkeypatch.chdir(REPO)
    out = tmp_path / "out"

    # when
    assert main(["train", "--config", str(DEFAULT_CONFIG), "--out", str(out)]) == 0
    assert main(["evaluate", "--config", str(DEFAULT_CONFIG), "--out", str(out)]) == 0

    # then
    overall = json.loads((out / "metrics.json").read_text())["overall"]
    assert overall["roc_auc"] > BUNDLED_ROC_AUC_FLOOR, f"ROC AUC {overall['roc_auc']:.3f} below the floor"


def test_a_dummy_model_scores_at_chance(make_project: MakeProject) -> None:
    # given the dummy (class prior) model
    project = make_project(rows=600, config=lambda c: c.update(model={"kind": "dummy"}))

    # when
    assert main(project.cli("train")) == 0
    assert main(project.cli("evaluate")) == 0

    # then
    overall = json.loads((project.out / "metrics.json").read_text())["overall"]
    assert overall["roc_auc"] == pytest.approx(0.5), "a constant score must have ROC AUC 0.5"
    assert overall["balanced_accuracy"] == pytest.approx(0.5), "the dummy model should sit at chance"

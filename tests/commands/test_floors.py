"""Floors that mean something (issue 18, item 6): `init` on a hard count target, then the real commands.

The table is made like the RAND Health Insurance Experiment's doctor visits (20,190 person-years):
a count drawn from a negative binomial whose mean moves a little with the plan, sex, chronic
conditions, health and income, so the best possible model explains about 7% of the variance and
no honest one reaches the R² 0.1 `init` used to write. `init`'s floor is relative to the dummy
baseline (the training rows' mean, scored on the same held-out rows): the forest it configures
clears it, while the dummy model itself and a forest fitted to a shuffled target do not.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from tests.conftest import dump_toml, realistic_cancer

ROWS = 20_190
TARGET = "doctor_visits"


def count_table(rows: int = ROWS, seed: int = 18) -> pd.DataFrame:
    """Return a seeded table like the RAND HIE's: an id, text categoricals, nulls, a weakly explained count."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(
        ["free", "25%", "50%", "95%", "individual deductible"], rows, p=[0.32, 0.2, 0.1, 0.2, 0.18]
    )
    sites = ["Dayton", "Seattle", "Fitchburg", "Franklin County", "Charleston", "Georgetown County"]
    female = rng.random(rows) < 0.52
    chronic = rng.poisson(1.0, rows).clip(0, 8)
    health = rng.choice(["excellent", "good", "fair", "poor"], rows, p=[0.45, 0.4, 0.12, 0.03])
    income = np.exp(rng.normal(9.5, 0.9, rows)).round(0)
    limited = rng.random(rows) < 0.12
    log_mean = (
        0.35
        + 0.35 * (plan == "free")
        - 0.2 * (plan == "95%")
        + 0.2 * female
        + 0.22 * chronic
        + 0.35 * (health == "fair")
        + 0.6 * (health == "poor")
        + 0.3 * limited
        + 0.05 * np.log(income / 13_000)
    )
    shape = 0.6  # overdispersed: the variance is about six times the mean
    visits = rng.negative_binomial(shape, shape / (shape + np.exp(log_mean)))
    frame = pd.DataFrame(
        {
            "person_id": [f"P{i:06d}" for i in rng.permutation(rows)],
            "site": rng.choice(sites, rows),
            "plan": plan,
            "age": rng.uniform(0, 64, rows).round(1),
            "sex": np.where(female, "female", "male"),
            "chronic_conditions": chronic,
            "health": health,
            "income": income,
            "physical_limitation": np.where(limited, "yes", "no"),
            TARGET: visits,
        }
    )
    for column, share in (("income", 0.04), ("health", 0.02), ("age", 0.01)):
        frame[column] = frame[column].astype(object).where(rng.random(rows) >= share, None)
    return frame


def _gate(config: Path, out: Path, champion: Path) -> dict[str, Any]:
    """Run `gate` (no champion); return gates.json's results by name."""
    main(["gate", "--config", str(config), "--out", str(out), "--champion", str(champion)])
    return {g["name"]: g for g in json.loads((out / "gates.json").read_text())["gates"]}


@pytest.mark.slow
def test_init_on_a_hard_count_target_writes_a_floor_a_model_beating_the_baseline_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: the table, onboarded by `init` with no edits
    data, config = tmp_path / "visits.csv", tmp_path / "visits.toml"
    frame = count_table()
    frame.to_csv(data, index=False)
    assert main(["init", str(data), "--target", TARGET, "--config", str(config)]) == 0
    written = tomllib.loads(config.read_text())

    # when: validated, trained, evaluated and gated as written
    out = tmp_path / "out"
    for command in ("validate", "train", "evaluate"):
        assert main([command, "--config", str(config), "--out", str(out)]) == 0, capsys.readouterr().err
    gates = _gate(config, out, tmp_path / "no-champion")
    metrics = json.loads((out / "metrics.json").read_text())

    # then: the floor is the baseline's R² plus a margin, the forest is far below 0.1 and passes it
    assert written["gates"]["metric"] == [{"metric": "r2", "above_baseline": 0.01}]
    assert written["gates"]["champion"]["relative_tolerance"] == 0.01
    assert "tolerance" not in written["gates"]["champion"]
    model, baseline = metrics["overall"]["r2"], metrics["baseline"]["overall"]["r2"]
    assert abs(baseline) < 0.005, "the training rows' mean scores about R² 0 on the held-out rows"
    assert 0.015 < model < 0.1, f"an honest model of this target explains a little: R² {model}"
    floor = gates["metric:r2"]
    assert floor["status"] == "passed", floor
    assert floor["threshold"] == pytest.approx(baseline + 0.01)
    assert "the dummy baseline's" in floor["message"] and "mean of its" in floor["message"], floor
    assert main(["report", "--config", str(config), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert re.search(
        r"Dummy baseline \(the mean of its [\d,]+ training rows\) on the same [\d,]+ held-out", report
    )

    # and: the dummy model and a forest of a shuffled target fail the same floor
    raw = tomllib.loads(config.read_text())
    raw["model"] = {"kind": "dummy", "params": {}}
    dummy_config = tmp_path / "dummy.toml"
    dummy_config.write_text(dump_toml(raw))
    shuffled = tmp_path / "shuffled.csv"
    frame.assign(**{TARGET: np.random.default_rng(1).permutation(frame[TARGET].to_numpy())}).to_csv(
        shuffled, index=False
    )
    candidates = {"dummy": (dummy_config, []), "shuffled": (config, ["--data", str(shuffled)])}
    for name, (used, data_args) in candidates.items():
        where = tmp_path / name
        train = ["train", "--config", str(used), "--out", str(where), "--no-validate", *data_args]
        assert main(train) == 0 and main(["evaluate", "--config", str(used), "--out", str(where)]) == 0
        result = _gate(used, where, tmp_path / "no-champion")["metric:r2"]
        assert result["status"] == "failed", f"{name}: {result}"


def test_init_writes_classification_floors_above_the_baseline_and_a_relative_tolerance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, config = tmp_path / "cancer.csv", tmp_path / "cancer.toml"
    realistic_cancer().to_csv(data, index=False)

    assert main(["init", str(data), "--target", "diagnosis", "--config", str(config)]) == 0

    text = config.read_text()
    gates = tomllib.loads(text)["gates"]
    assert gates["metric"] == [
        {"metric": "roc_auc", "above_baseline": 0.05},
        {"metric": "balanced_accuracy", "above_baseline": 0.05, "required": False},
    ]
    assert gates["champion"]["metric"] == "roc_auc" and gates["champion"]["relative_tolerance"] == 0.01
    assert "# Floors above the dummy baseline" in text and "0.01 of an RMSE of 54" in text, text

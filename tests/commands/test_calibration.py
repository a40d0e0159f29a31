"""Calibration against the champion: the Brier score and expected calibration error as metrics, and the
``calibration`` gate judging the candidate's ECE against the champion's on the same held-out rows.

The planted defect is a candidate whose probabilities were softened (its logits divided by four): the
same ranking, so the same ROC AUC as the champion, but far less sure than it is right. Its clean twin is
the champion's own estimator trained again. Both are the clinic team's factory (``tests/conftest.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from pipeline.core.calibration import reliability
from pipeline.core.metrics import METRICS
from tests.commands.test_factory import _ml, _onboarded

SOFTENED = (
    "import numpy as np\n"
    "from scipy.special import expit\n"
    "from sklearn.linear_model import LogisticRegression\n\n\n"
    "class Softened(LogisticRegression):\n"
    "    def predict_proba(self, X):\n"
    "        positive = expit(self.decision_function(X) / 4)\n"
    "        return np.column_stack([1 - positive, positive])\n"
)


def test_brier_matches_scikit_learn_and_ece_sees_what_roc_auc_cannot() -> None:
    # given calibrated probabilities and the same ones softened (a monotone change: the same ranking)
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(int)
    soft = 1 / (1 + np.exp(-np.log(p / (1 - p)) / 4))
    calibrated, softened = np.c_[1 - p, p], np.c_[1 - soft, soft]
    # then the Brier score is scikit-learn's, the ROC AUC is unchanged, and only ECE (and Brier) see it
    assert METRICS["brier"](y, calibrated, labels=[0, 1]) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert METRICS["roc_auc"](y, softened, labels=[0, 1]) == METRICS["roc_auc"](y, calibrated, labels=[0, 1])
    good, bad = METRICS["ece"](y, calibrated, labels=[0, 1]), METRICS["ece"](y, softened, labels=[0, 1])
    assert good is not None and bad is not None and good < 0.03 and bad > 0.1
    # and the reliability curve behind it shows the top bin coming true far more often than it says
    curve = reliability(y, softened, [0, 1])
    assert curve[-1].observed - curve[-1].predicted > 0.1 and sum(b.rows for b in curve) == 2000


@pytest.mark.slow
@pytest.mark.parametrize("planted", [True, False])
def test_a_softened_candidate_with_the_champions_roc_auc_fails_calibration_and_its_twin_passes(
    tmp_path: Path, planted: bool
) -> None:
    # given the clinic's champion (their factory's logistic regression), required calibration
    team = _onboarded(tmp_path / "clinic")
    config = team / "ml-cicd.toml"
    config.write_text(config.read_text() + "\n[gates.calibration]\nrequired = true\n")
    assert _ml(team, "train", "--out", "champion").returncode == 0
    # when the candidate is the same estimator with softened probabilities (or, its twin, the same one)
    if planted:
        (team / "clinic_ml" / "softened.py").write_text(SOFTENED)
        factory = team / "clinic_ml" / "factory.py"
        factory.write_text(
            factory.read_text().replace("LogisticRegression(**params)", "Softened(**params)")
            + "\nfrom clinic_ml.softened import Softened  # noqa: E402\n"
        )
    for step in ("validate", "train", "evaluate"):
        assert _ml(team, step).returncode == 0
    done = _ml(team, "gate", "--champion", "champion/model")
    gates = {g["name"]: g for g in json.loads((team / "out" / "gates.json").read_text())["gates"]}
    calibration, regression = gates["calibration"], gates["no_regression"]
    # then ROC AUC is a tie either way, and only the softened candidate fails calibration (exit 1), named
    assert regression["status"] == "passed" and regression["observed"] == pytest.approx(0.0, abs=1e-12)
    curves = json.loads((team / "out" / "gates.json").read_text())["calibration"]
    assert sum(b["rows"] for b in curves["candidate"]) == sum(b["rows"] for b in curves["champion"]) > 100
    report = _ml(team, "report")
    assert report.returncode == 0, report.stderr
    shown = (team / "out" / "report.md").read_text()
    assert "## Calibration vs champion" in shown and "| probabilities |" in shown
    if planted:
        assert "often than the candidate said" in shown
        assert done.returncode == 1 and calibration["status"] == "failed", calibration
        assert (
            calibration["message"].startswith("regression: ece candidate") and calibration["observed"] < -0.05
        )
    else:
        assert done.returncode == 0 and calibration["status"] == "passed", calibration
        assert calibration["observed"] == 0.0

"""The ONNX serving path imports nothing the lean image lacks (checked here, in a fresh interpreter).

The Docker test proves it in the image itself; this catches a stray import on every run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, Trained, train_artifact

HEAVY = ("sklearn", "scipy", "pandas", "joblib", "pyarrow", "matplotlib", "skl2onnx", "onnx")
PROBE = """
import json, sys
from fastapi.testclient import TestClient
from model.app import create_app
import model.__main__
with TestClient(create_app(sys.argv[1])) as client:
    answer = client.post("/predict", json={"records": [json.loads(sys.argv[2])]})
    runtime = client.get("/ready").json()["runtime"]
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[3].split(",")))
print(json.dumps({"status": answer.status_code, "runtime": runtime, "loaded": loaded}))
"""


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train_artifact(tmp_path_factory.mktemp("lean"))


def test_serving_an_onnx_model_loads_no_scikit_learn_pandas_or_scipy(churn: Trained) -> None:
    # given a held-out record as JSON
    record = json.loads(churn.features().head(1).to_json(orient="records"))[0]
    record["has_partner"] = bool(record["has_partner"])

    # when a fresh interpreter starts the app, loads the model and answers it
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(churn.model_dir), json.dumps(record), ",".join(HEAVY)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # then it answered with ONNX Runtime and never imported a heavy package
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "runtime": "onnx", "loaded": []}, result

"""The floor of a FastAPI + scikit-learn server, for bench/bench_serving.py: as little as such a server can do.

    MODEL_DIR=out/model python -m uvicorn floor_server:create --factory --app-dir bench --port 8090

One route: parse the JSON body, build a DataFrame of the records, ``predict`` and
``predict_proba`` with the pickled pipeline, answer JSON. No validation, no metrics, no limits:
whatever a real server adds on top costs at least this much.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI


def create() -> FastAPI:
    """Return the app serving the pipeline in ``$MODEL_DIR``."""
    pipeline = joblib.load(Path(os.environ["MODEL_DIR"]) / "model.joblib")
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        frame = pd.DataFrame(body["records"])
        return {
            "predictions": pipeline.predict(frame).tolist(),
            "probabilities": pipeline.predict_proba(frame).tolist(),
        }

    return app

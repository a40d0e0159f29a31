"""In-process single-record predict: ONNX Runtime vs scikit-learn, as the server calls them.

    .venv/bin/python bench/bench_predict.py            # logistic regression and a 100-tree forest

Trains each model on the bundled churn data with the real CLI (temp dir), loads it twice as
the server does (``model.runtime.load_model``: ``onnx`` and ``sklearn``), and times
``predict([record])`` on held-out records, the two runtimes alternately in blocks of ``--block``
calls (A, B, A, B; blocks rather than single calls because scikit-learn leaves its BLAS threads
spinning for a while after each call, which would bill the next ONNX call for them): median,
p95 and their ratio, after a warm-up. Target: under 0.1 ms a record for both models on ONNX.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.artifact import read_metadata  # noqa: E402
from model.runtime import load_model  # noqa: E402
from pipeline.core.values import json_records  # noqa: E402
from tests.conftest import repo_config_text  # noqa: E402

MODELS = {
    "logistic_regression": "C = 1.0\nmax_iter = 1000",
    "random_forest": "n_estimators = 100",
}


def train(root: Path, kind: str) -> Path:
    """Train ``kind`` on the bundled data into ``root``; return the model directory."""
    text = repo_config_text(root)
    text = text.replace('kind = "logistic_regression"', f'kind = "{kind}"').replace(
        "C = 1.0\nmax_iter = 1000", MODELS[kind]
    )
    config = root / f"{kind}.toml"
    config.write_text(text)
    out = root / kind
    argv = [sys.executable, "-m", "pipeline", "train", "--config", str(config), "--out", str(out)]
    subprocess.run(argv, cwd=REPO, check=True, capture_output=True)
    return out / "model"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000, help="timed calls per runtime (default 3000)")
    parser.add_argument("--block", type=int, default=100, help="calls per block (default 100)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in MODELS:
            model_dir = train(Path(tmp), kind)
            metadata = read_metadata(model_dir)
            rows = pd.read_parquet(model_dir.parent / "holdout.parquet")[metadata.feature_names]
            booleans = {f.name for f in metadata.features if f.type == "boolean"}
            records = json_records(rows, booleans)
            runtimes = {name: load_model(model_dir, name) for name in ("onnx", "sklearn")}
            assert all(m.runtime == name for name, m in runtimes.items())
            for i in range(200):  # warm-up
                for model in runtimes.values():
                    model.predict([records[i % len(records)]])
            times: dict[str, list[float]] = {name: [] for name in runtimes}
            for start in range(0, args.samples, args.block):
                for name, model in runtimes.items():
                    for i in range(start, min(start + args.block, args.samples)):
                        record = [records[i % len(records)]]
                        started = time.perf_counter()
                        model.predict(record)
                        times[name].append((time.perf_counter() - started) * 1e3)
            onnx, sk = (np.percentile(times[n], [50, 95]) for n in ("onnx", "sklearn"))
            size = (model_dir / "model.onnx").stat().st_size
            print(
                f"{kind:20} onnx median {onnx[0] * 1000:7.1f} us p95 {onnx[1] * 1000:7.1f} us | "
                f"sklearn median {sk[0]:6.2f} ms p95 {sk[1]:6.2f} ms | sklearn/onnx {sk[0] / onnx[0]:6.0f}x "
                f"(model.onnx {size / 1024:.0f} KiB, {args.samples} calls each in alternating blocks of {args.block})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

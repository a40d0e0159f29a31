"""Single-record predict of a HistGradientBoosting model on a busy CPU: capped at 1 thread vs uncapped.

    .venv/bin/python bench/bench_threads.py                 # 1 spinning process beside the bench
    .venv/bin/python bench/bench_threads.py --spinners 0    # an idle machine, for comparison

Trains a HistGradientBoosting classifier (100 iterations) on the bundled churn data with the
real CLI (temp dir); it has no ONNX form, so scikit-learn serves it, and its trees predict through
OpenMP. Two predict functions over JSON records, the same work apart from the cap: *capped* is
the server's (``model.runtime.load_model(..., threads=1)``: OpenMP and BLAS limited to 1 thread
around each call by threadpoolctl), *uncapped* is the pipeline called as the server called it
before the cap (``model.sklearn_runtime.score`` on the records' DataFrame: OpenMP's default, one
thread per core). While ``--spinners`` Python processes spin on the CPU (a neighbour on a shared
runner, another worker), each is timed on held-out records alternately, one call each (A, B, A, B),
after a warm-up: median, p95, and uncapped over capped. After an uncapped call its OpenMP threads
spin for a while before they sleep, on the cores the capped call that follows runs on: if
anything, the capped figures are billed for the uncapped ones. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.artifact import load_artifact  # noqa: E402
from model.runtime import load_model  # noqa: E402
from model.sklearn_runtime import records_frame, score  # noqa: E402
from pipeline.core.values import json_records  # noqa: E402
from tests.conftest import repo_config_text  # noqa: E402

SPIN = "while True: pass"
WARMUP = 50


def train(root: Path) -> Path:
    """Train a HistGradientBoosting classifier on the bundled data into ``root``; return the model directory."""
    text = repo_config_text(root)
    text = text.replace('kind = "logistic_regression"', 'kind = "hist_gradient_boosting"').replace(
        "C = 1.0\nmax_iter = 1000", "max_iter = 100"
    )
    config = root / "ml-cicd.toml"
    config.write_text(text)
    out = root / "out"
    argv = [sys.executable, "-m", "pipeline", "train", "--config", str(config), "--out", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"train failed:\n{done.stderr}")
    return out / "model"


def timed(
    predictors: dict[str, Callable[[list[dict[str, Any]]], Any]], records: list[dict[str, Any]], samples: int
) -> dict[str, np.ndarray]:
    """Return each predictor's single-record times in ms, called alternately (A, B, A, B) after a warm-up."""
    for i in range(WARMUP):
        for predict in predictors.values():
            predict([records[i % len(records)]])
    times = {name: np.empty(samples) for name in predictors}
    for i in range(samples):
        record = [records[i % len(records)]]
        for name, predict in predictors.items():
            started = time.perf_counter()
            predict(record)
            times[name][i] = (time.perf_counter() - started) * 1e3
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--samples", type=int, default=500, help="timed calls per predict function (default 500)"
    )
    parser.add_argument(
        "--spinners", type=int, default=1, help="CPU-bound processes beside the bench (default 1)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = train(Path(tmp))
        capped = load_model(model_dir, "sklearn", threads=1)
        estimator, metadata = load_artifact(model_dir)
        classifier = metadata.task == "classification"

        def uncapped(records: list[dict[str, Any]]) -> Any:
            return score(estimator, records_frame(records, metadata.features), with_proba=classifier)

        rows = pd.read_parquet(model_dir.parent / "holdout.parquet")[metadata.feature_names]
        records = json_records(rows, {f.name for f in metadata.features if f.type == "boolean"})
        spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.spinners)]
        try:
            times = timed({"capped": capped.predict, "uncapped": uncapped}, records, args.samples)
        finally:
            for spinner in spinners:
                spinner.terminate()
                spinner.wait()
    cap, free = (np.percentile(times[name], [50, 95]) for name in ("capped", "uncapped"))
    load = os.getloadavg()[0]  # the machine's own load besides the spinners (a shared runner's neighbours)
    print(
        f"hist_gradient_boosting, {os.cpu_count()} CPUs, {args.spinners} spinning process(es), "
        f"{args.samples} single-record calls each, alternating (1-minute load average {load:.1f})"
    )
    print(f"  capped (1 thread)  p50 {cap[0]:8.2f} ms  p95 {cap[1]:8.2f} ms")
    print(f"  uncapped           p50 {free[0]:8.2f} ms  p95 {free[1]:8.2f} ms")
    print(f"  uncapped / capped  p50 {free[0] / cap[0]:8.1f} x   p95 {free[1] / cap[1]:8.1f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

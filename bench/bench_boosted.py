"""XGBoost and LightGBM: fit time, and predict time as the server runs them, ONNX Runtime vs native.

    .venv/bin/python bench/bench_boosted.py                 # bundled churn table and 100,000 synthetic rows
    .venv/bin/python bench/bench_boosted.py --rows 20000    # a smaller synthetic table

Each kind (and a random forest, the default kind, as the peer) is trained with the real CLI
(``train``, temp dir) on the bundled churn table and on a synthetic churn table of ``--rows`` rows;
the fit time is the one ``train`` reports. On the bundled table's model, both runtimes the server
can use (``model.runtime.load_model``: ``onnx`` and ``sklearn``, the native model) are timed on
held-out records, single-record and 1,000-record predicts, alternately in blocks (A, B, A, B):
median and p95, and the native/ONNX ratio of the medians.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.artifact import read_metadata  # noqa: E402
from model.runtime import load_model  # noqa: E402
from pipeline.core.values import json_records  # noqa: E402
from tests.conftest import dump_toml, repo_config_text  # noqa: E402

KINDS = {
    "random_forest": {"n_estimators": 100},
    "xgboost": {"n_estimators": 100},
    "lightgbm": {"n_estimators": 100},
}


def train(root: Path, kind: str, data: Path) -> tuple[Path, float]:
    """Train ``kind`` on ``data`` into ``root``; return the model directory and the fit seconds."""
    raw = tomllib.loads(repo_config_text(root))
    raw["data"]["path"] = str(data)
    raw["model"] = {"kind": kind, "params": KINDS[kind]}
    raw["training"]["sample_rows"] = 0
    config = root / f"{kind}-{data.stem}.toml"
    config.write_text(dump_toml(raw))
    out = root / f"{kind}-{data.stem}"
    argv = [sys.executable, "-m", "pipeline", "train", "--config", str(config), "--out", str(out)]
    done = subprocess.run(argv, cwd=REPO, check=True, capture_output=True, text=True)
    fitted = re.search(r"fitted \S+ in ([0-9.]+) s", done.stderr)
    assert fitted is not None, done.stderr
    return out / "model", float(fitted.group(1))


def timed(
    models: dict[str, object], batches: list[list[dict[str, object]]], block: int
) -> dict[str, list[float]]:
    """Time ``predict`` of each model on ``batches``, alternating blocks of ``block`` calls; milliseconds."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for start in range(0, len(batches), block):
        for name, model in models.items():
            for batch in batches[start : start + block]:
                started = time.perf_counter()
                model.predict(batch)  # type: ignore[attr-defined]
                times[name].append((time.perf_counter() - started) * 1e3)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=100_000, help="rows of the synthetic table (default 100000)"
    )
    parser.add_argument("--samples", type=int, default=2000, help="timed single-record calls per runtime")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big = root / f"churn{args.rows}.csv"
        synth = [
            sys.executable,
            "-m",
            "pipeline",
            "synth",
            "--rows",
            str(args.rows),
            "--seed",
            "11",
            "--out",
            str(big),
        ]
        subprocess.run(synth, cwd=REPO, check=True, capture_output=True)
        bundled = REPO / "data" / "churn.csv"
        print(
            f"fit seconds (train's own figure; bundled table {len(pd.read_csv(bundled)):,} rows, synthetic {args.rows:,}):"
        )
        models: dict[str, Path] = {}
        for kind in KINDS:
            models[kind], small = train(root, kind, bundled)
            _, large = train(root, kind, big)
            print(f"  {kind:14} bundled {small:6.2f} s   synthetic {large:7.2f} s")
        print("predict, as the server calls it (median / p95 ms; native/onnx ratio of the medians):")
        for kind, model_dir in models.items():
            metadata = read_metadata(model_dir)
            rows = pd.read_parquet(model_dir.parent / "holdout.parquet")[metadata.feature_names]
            records = json_records(rows, {f.name for f in metadata.features if f.type == "boolean"})
            served = metadata.compiled.status if metadata.compiled is not None else "none"
            runtimes = {"onnx": load_model(model_dir, "onnx"), "native": load_model(model_dir, "sklearn")}
            for size, count, block in ((1, args.samples, 100), (1000, max(40, args.samples // 50), 5)):
                batches = [
                    [records[(i * size + j) % len(records)] for j in range(size)] for i in range(count)
                ]
                timed(runtimes, batches[: max(10, count // 10)], block)  # warm-up
                times = timed(runtimes, batches, block)
                onnx, native = (np.percentile(times[n], [50, 95]) for n in ("onnx", "native"))
                print(
                    f"  {kind:14} {size:>5} rows  onnx {onnx[0]:8.3f} / {onnx[1]:8.3f}   "
                    f"native {native[0]:8.3f} / {native[1]:8.3f}   ratio {native[0] / onnx[0]:6.1f}x"
                    f"   (ONNX parity: {served})"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

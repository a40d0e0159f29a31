"""What the calibration gate adds to the gate step: its paired bootstrap beside the step's own work.

    .venv/bin/python bench/bench_calibration.py               # the bundled churn table
    .venv/bin/python bench/bench_calibration.py --rows 100000 # a synthetic churn table of that size

Trains the repository's model (logistic regression) on every row of the table with the real CLI
(temp dir; the champion is the same model trained again), then times, alternately (A, B, A, B), the whole ``gate`` command with the champion and
the calibration gate's own work on the same rows: ``compare("ece")`` (the ECE of both models and
1,000 paired resamples) and the reliability curves. Prints medians and the added work as a share of
the gate step. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.artifact import load_artifact  # noqa: E402
from pipeline.core.bootstrap import compare  # noqa: E402
from pipeline.core.calibration import curves  # noqa: E402
from pipeline.io import outdir  # noqa: E402
from pipeline.steps.gate import _scored  # noqa: E402
from tests.conftest import repo_config_text  # noqa: E402


def _cli(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-P", "-m", "pipeline", *args]
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)


def main() -> None:
    """Print the gate step's and the calibration work's medians, and their ratio."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=0, help="synthetic table rows (0: the bundled table)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "data").mkdir()
        if args.rows:
            _cli("synth", "--rows", str(args.rows), "--seed", "7", "--out", "data/churn.csv", cwd=where)
        else:
            (where / "data" / "churn.csv").write_bytes((REPO / "data" / "churn.csv").read_bytes())
        text = repo_config_text(where).replace(str(REPO / "data/churn.csv"), str(where / "data/churn.csv"))
        (where / "ml-cicd.toml").write_text(text.replace("sample_rows = 3000", "sample_rows = 0"))
        for step in ("validate", "train", "evaluate"):
            _cli(step, cwd=where)
        _cli("train", "--out", "champion", cwd=where)
        holdout = outdir.read_holdout(where / "out" / outdir.HOLDOUT)
        candidate, metadata = load_artifact(where / "out" / "model")
        champion, champion_meta = load_artifact(where / "champion" / "model")
        y, cand = _scored(candidate, metadata, holdout, "candidate")
        _, champ = _scored(champion, champion_meta, holdout, "champion")
        labels, positive = metadata.label_list, metadata.positive_label
        gate_times, added = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            _cli("gate", "--champion", "champion/model", cwd=where)
            gate_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            compare("ece", metadata.task, y, cand, champ, labels, positive, 1000, 0.95)
            curves(y, cand.proba, champ.proba, labels, positive)
            added.append(time.perf_counter() - started)
        gate_s, added_s = statistics.median(gate_times), statistics.median(added)
        print(f"table: {args.rows or 'bundled'} rows; held-out rows compared: {len(y):,}")
        print(f"gate step (whole command, calibration included): median {gate_s:.2f} s over {args.repeats}")
        print(
            f"calibration gate's work (ECE bootstrap, 1,000 resamples, and both curves): median {added_s:.3f} s"
        )
        print(f"added work / gate step without it: {added_s / (gate_s - added_s):.1%}")


if __name__ == "__main__":
    main()

"""Time of ``registry rollback production``: as a CLI subprocess and in-process.

    .venv/bin/python bench/bench_registry.py [--repeat 10] [--history 200]

Builds a temp registry with three real model versions (logistic regression on 4000
seeded churn rows) and ``--history`` earlier alias moves, then times rollbacks of
production from v3 to v2 (the alias is put back on v3, untimed, before each one).
The CLI figure is wall time including interpreter start. Target: under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script from anywhere: import pipeline/ and model/

from model.records import Feature, GateRecord, ModelMetadata, SplitRule  # noqa: E402  needs the path above
from pipeline.core.promotion import PRODUCTION, PROMOTE  # noqa: E402
from pipeline.io.registry import Registry  # noqa: E402

FEATURES = [
    ("tenure_months", "numeric"),
    ("monthly_charges", "numeric"),
    ("support_calls", "numeric"),
    ("contract", "categorical"),
    ("internet_service", "categorical"),
]


def _build(root: Path, history: int) -> Registry:
    """Register three models and record ``history`` production moves among them."""
    from model.artifact import save_artifact
    from model.estimator import build_pipeline
    from pipeline.core.synth import churn_frame

    registry = Registry(root / "registry")
    names = [name for name, _ in FEATURES]
    for seed in range(3):
        frame = churn_frame(4000, seed)
        estimator = build_pipeline(FEATURES, "logistic_regression", "classification", {"C": 1.0}, seed)
        estimator.fit(frame[names], frame["churned"])
        where = root / f"m{seed}"
        metadata = ModelMetadata(
            run="bench",
            task="classification",
            target="churned",
            labels=(0, 1),
            positive_label=1,
            features=tuple(Feature(name, kind, None, None, None, True) for name, kind in FEATURES),
            id_columns=("customer_id",),
            kind="logistic_regression",
            params={"C": 1.0},
            data_sha256=f"{seed:064x}",
            config_sha256="0" * 64,
            git_commit=None,
            created_at="2026-01-01T00:00:00+00:00",
            train_rows=len(frame),
            holdout_rows=0,
            seed=seed,
            split=SplitRule(("customer_id",), "bench", 0.25),
            validated=True,
            profile={"numeric": {}, "categorical": {}},
            compiled=None,
            out_of_range="count",
        )
        save_artifact(where / "model", estimator, metadata)
        registry.register(
            where / "model",
            gates=GateRecord(passed=True, file="bench", results=()),
            metrics_path=None,
            by="bench",
            card=lambda metadata, lineage: f"bench model v{lineage.version}\n",
        )
    for i in range(history):
        registry.move(PRODUCTION, i % 3 + 1, action=PROMOTE, by="bench", approver="bench")
    return registry


def _reset(registry: Registry) -> None:
    """Point production at v3 with v2 underneath (untimed)."""
    registry.move(PRODUCTION, 2, action=PROMOTE, by="bench", approver="bench")
    registry.move(PRODUCTION, 3, action=PROMOTE, by="bench", approver="bench")


def main() -> None:
    """Print CLI and in-process rollback times."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=10, help="rollbacks to time per mode (default 10)")
    parser.add_argument("--history", type=int, default=200, help="earlier alias moves (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        registry = _build(Path(tmp), args.history)
        argv = [sys.executable, "-m", "pipeline", "registry", "rollback", PRODUCTION]
        argv += ["--registry", str(registry.root), "--by", "bench"]
        cli: list[float] = []
        for _ in range(args.repeat):
            _reset(registry)
            started = time.perf_counter()
            done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
            cli.append(time.perf_counter() - started)
            if done.returncode != 0 or registry.aliases()[PRODUCTION] != 2:
                sys.exit(f"rollback failed (exit {done.returncode}): {done.stderr}")
        inproc: list[float] = []
        for _ in range(args.repeat):
            _reset(registry)
            started = time.perf_counter()
            registry.rollback(PRODUCTION, by="bench")
            inproc.append(time.perf_counter() - started)
        size = (registry.root / "versions" / "3" / "model.joblib").stat().st_size
        moves = len(registry.history(PRODUCTION))
    print(
        f"registry: 3 versions (model {size / 1024:.0f} KiB, verified on rollback), {moves} production moves"
    )
    print(
        f"rollback production, CLI subprocess (incl. interpreter start): median {statistics.median(cli):.3f} s, "
        f"max {max(cli):.3f} s over {len(cli)} runs (target < 1 s)"
    )
    print(
        f"rollback production, in-process: median {statistics.median(inproc) * 1000:.1f} ms, "
        f"max {max(inproc) * 1000:.1f} ms over {len(inproc)} runs"
    )


if __name__ == "__main__":
    main()

"""Wall time of the host runner on the bundled data: cold, then fully cached; per step, against a peer.

    .venv/bin/python bench/bench_run.py [--rounds 3] [--peer ../baseline-checkout]

Runs ``python -m pipeline run --skip lint,test --image never`` from a checkout's root with a
fresh out dir, cache and registry (in a temp dir), then again with nothing changed. With
``--peer`` (another checkout of ml-cicd, e.g. ``git worktree add ../base <commit>``) both
checkouts run alternately (A, B, A, B, ...) with this interpreter, and the ratios are printed,
so a shared, noisy machine slows both alike. Per-step times come from the runner's status lines.
Targets (2 cores): cold under 60 s; cached under 1.5 s.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import repo_config_text  # noqa: E402

STATUS = re.compile(r"^[ \t]+(ok|cached|FAILED)[ \t]+(\w+)[ \t]*([0-9]+\.[0-9]+)?s?", re.MULTILINE)


def _run(repo: Path, config: Path, out: Path, cache: Path) -> tuple[float, dict[str, float]]:
    argv = [sys.executable, "-m", "pipeline", "run", "--config", str(config), "--out", str(out)]
    argv += ["--skip", "lint,test", "--image", "never", "--cache-dir", str(cache)]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"run in {repo} failed (exit {done.returncode}):\n{done.stderr}")
    steps = {m.group(2): float(m.group(3) or 0.0) for m in STATUS.finditer(done.stderr)}
    return seconds, steps


def _round(repo: Path, cached_runs: int) -> tuple[float, list[float], dict[str, float]]:
    """One cold run and ``cached_runs`` unchanged runs of ``repo`` in a fresh temp dir."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "pipeline.toml"
        config.write_text(repo_config_text(root, repo))
        cold, steps = _run(repo, config, root / "out", root / "cache")
        cached = [_run(repo, config, root / "out", root / "cache")[0] for _ in range(cached_runs)]
    return cold, cached, steps


def main() -> None:
    """Print cold and cached wall times (and per-step times), beside a peer checkout when given."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="cold runs per checkout (default 3)")
    parser.add_argument("--cached", type=int, default=3, help="cached runs after each cold one (default 3)")
    parser.add_argument("--peer", type=Path, help="another ml-cicd checkout to run alternately")
    args = parser.parse_args()
    trees = {"this": REPO} | ({"peer": args.peer.resolve()} if args.peer else {})
    results: dict[str, list[tuple[float, list[float], dict[str, float]]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, repo in trees.items():
            results[name].append(_round(repo, args.cached))
    summary: dict[str, tuple[float, float]] = {}
    for name, rounds in results.items():
        cold = statistics.median(r[0] for r in rounds)
        cached = statistics.median(c for r in rounds for c in r[1])
        summary[name] = (cold, cached)
        print(f"{name:>4} ({trees[name]}): cold median {cold:.1f} s, cached median {cached:.2f} s")
        names = sorted({s for r in rounds for s in r[2]})
        per_step = {s: statistics.median(r[2].get(s, 0.0) for r in rounds) for s in names}
        print("      cold, per step: " + ", ".join(f"{s} {t:.1f} s" for s, t in per_step.items()))
    if "peer" in summary:
        (a_cold, a_cached), (b_cold, b_cached) = summary["this"], summary["peer"]
        print(f"ratio this/peer: cold {a_cold / b_cold:.2f}, cached {a_cached / b_cached:.2f}")
    print("targets: cold < 60 s, cached < 1.5 s")


if __name__ == "__main__":
    main()

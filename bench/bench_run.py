"""Wall time of the host runner on the bundled data: cold, then fully cached.

    .venv/bin/python bench/bench_run.py [--repeat 3]

Runs ``python -m pipeline run --skip lint,test --image never`` from the repo root with a
fresh out dir, cache and registry (in a temp dir), then again with nothing changed.
Targets (2 cores): cold under 60 s; cached under 1.5 s.
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


def _run(config: Path, out: Path, cache: Path) -> float:
    argv = [sys.executable, "-m", "pipeline", "run", "--config", str(config), "--out", str(out)]
    argv += ["--skip", "lint,test", "--image", "never", "--cache-dir", str(cache)]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"run failed (exit {done.returncode}):\n{done.stderr}")
    return seconds


def main() -> None:
    """Print cold and cached wall times."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="cached runs to time (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text = (REPO / "configs" / "pipeline.toml").read_text()
        config = root / "pipeline.toml"
        config.write_text(text.replace('path = "registry"', f'path = "{root / "registry"}"'))
        cold = _run(config, root / "out", root / "cache")
        cached = [_run(config, root / "out", root / "cache") for _ in range(args.repeat)]
    print(f"host run, bundled data, lint+test skipped: cold {cold:.1f} s (target < 60 s)")
    print(
        f"host run, nothing changed: median {statistics.median(cached):.2f} s, "
        f"min {min(cached):.2f} s over {len(cached)} runs (target < 1.5 s)"
    )


if __name__ == "__main__":
    main()

"""Write the seeded churn table (the bundled data, or bigger tables for benchmarks) as CSV.

python -m pipeline synth --rows 4000 --seed 7 --out data/churn.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.files import write_bytes_atomic
from pipeline.core.synth import churn_frame
from pipeline.errors import DataError


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``synth`` options."""
    parser.add_argument("--rows", type=int, default=4000, help="number of rows (default 4000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--shift", type=float, default=0.0, help="drift to apply (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="CSV path to write")


def run(args: argparse.Namespace) -> int:
    """Write the generated table."""
    if args.rows < 1:
        raise DataError(f"--rows must be >= 1, got {args.rows}")
    frame = churn_frame(args.rows, args.seed, args.shift)
    write_bytes_atomic(args.out, frame.to_csv(index=False).encode())
    print(f"wrote {len(frame)} rows to {args.out}", file=sys.stderr)
    return 0

"""Apply the quality gates to an evaluated candidate; exit 1 when a required gate does not pass.

    python -m pipeline gate --config ml-cicd.toml --out out --champion out/champion

Reads ``metrics.json``, ``model/``, ``holdout.parquet`` and ``drift.json`` from --out and writes
``gates.json``. Every gate is evaluated and reported: metric floors (absolute, or a margin over
the dummy baseline ``evaluate`` scored on the same rows); no regression against
the champion, both re-scored on the candidate's held-out rows that the champion never trained on
(by the split rule stored with the champion) and judged with a paired bootstrap; single-row
serving parity (the ONNX model the server runs against the scikit-learn model, on the held-out
rows); single-record latency of each model as served, timed here (alternately with the champion,
as a ratio with a bootstrap interval, failing only a candidate surely slower by a difference that
counts, when there is one); slice floors; class collapse; data drift. A gate that could not measure is an error and one that
cannot decide is inconclusive: a required one fails the run either way. Without --champion the
champion is the registry's ``production`` alias.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipeline.commands.options import add_out, check_config
from pipeline.config import load_config, project_root
from pipeline.core import gates as rules
from pipeline.errors import CheckFailed
from pipeline.io.run import run_id
from pipeline.render.console import gate_table
from pipeline.steps.gate import run_gate


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``gate`` options."""
    add_out(parser, "artefact directory to read and write (default out)")
    parser.add_argument(
        "--champion",
        default=None,
        help="champion artefact directory (default: the registry's production alias); "
        "a missing directory means no champion",
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate every gate, write ``gates.json``, print the table; raise CheckFailed on a required failure."""
    config = load_config(args.config)
    check_config(config, project_root(args.config))
    out = Path(args.out)
    started = time.perf_counter()
    record = run_gate(config, out, args.champion, run_id())
    print(gate_table(record.gates))
    rule = record.inconclusive_rule
    if not record.passed:
        raise CheckFailed(rules.summary(record.gates, rule))
    for result in rules.warned(record.gates, rule):
        print(
            f"warning: {result.name} {result.status}: the check passes (gates.champion.inconclusive = "
            f'"{rule}"); this candidate will not be registered as staging, promoted or published',
            file=sys.stderr,
        )
    print(f"gates: {rules.summary(record.gates, rule)} ({time.perf_counter() - started:.2f} s)")
    return 0

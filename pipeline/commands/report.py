"""Write report.md (and a PNG plot) for a GitHub job summary or a PR comment.

    python -m pipeline report --config ml-cicd.toml --out out
    cat out/report.md >> "$GITHUB_STEP_SUMMARY"

Reads whatever the earlier steps left in --out (gates.json, metrics.json,
validation.json, drift.json, model/, holdout.parquet) and says which inputs were not
produced; it also writes a report after a failed gate. The plot is
confusion_matrix.png for classification and residuals.png for regression.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands.options import add_out
from pipeline.config import load_config
from pipeline.errors import PipelineError
from pipeline.io.run import run_id
from pipeline.records import StepOutcome
from pipeline.steps.report import run_report

STATUSES = ("ok", "cached", "failed", "skipped")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` options."""
    add_out(parser, "artefact directory to read and write (default out)")
    parser.add_argument(
        "--step",
        action="append",
        default=[],
        metavar="NAME=STATUS:CODE:NOTE",
        help="how a step ended, given by a caller that ran the steps itself (the Dagger module); "
        "repeat per step. Default: run.json of the host runner",
    )


def run(args: argparse.Namespace) -> int:
    """Write ``report.md`` and the plot into --out; return 0 even when the gates failed."""
    config = load_config(args.config)
    out = Path(args.out)
    given = parse_steps(args.step) if args.step else None
    path = run_report(config, out, run_id(), given)
    print(f"report: wrote {path}")
    return 0


def parse_steps(values: list[str]) -> tuple[StepOutcome, ...]:
    """Return the ``--step NAME=STATUS:CODE:NOTE`` values as step outcomes, refusing a malformed one."""
    found: list[StepOutcome] = []
    for value in values:
        name, _, rest = value.partition("=")
        status, _, rest = rest.partition(":")
        code, _, note = rest.partition(":")
        if not name or status not in STATUSES or not code.lstrip("-").isdigit():
            raise PipelineError(
                f"--step {value!r}: expected NAME=STATUS:CODE:NOTE with STATUS one of {', '.join(STATUSES)}"
            )
        found.append(StepOutcome(name, status, int(code), 0.0, note))  # type: ignore[arg-type]
    return tuple(found)

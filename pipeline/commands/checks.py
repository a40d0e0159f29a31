"""Run the team's own lint or test commands in the project (the DAG's lint and test steps).

    python -m pipeline checks lint --config ml-cicd.toml
    python -m pipeline checks test

The commands are ``[checks] lint`` / ``test`` of the config; unset, ruff when the project
configures it and ``python -m pytest -q`` when it has ``tests/``. Nothing to run is not a failure:
the step says "skipped: nothing to run" and why. A command that exits non-zero fails the step
(exit 1) with one line naming it; a program that is not installed is exit 2.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.config import load_config, project_root
from pipeline.io.checks import KINDS, execute, plan


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``checks`` argument."""
    parser.add_argument("kind", choices=KINDS, help="which checks: lint or test")


def run(args: argparse.Namespace) -> int:
    """Plan and run the checks; print what ran."""
    root = project_root(args.config)
    chosen = plan(args.kind, load_config(args.config), root)
    if not chosen.commands:
        print(f"{args.kind}: skipped: nothing to run ({chosen.why})", file=sys.stderr)
        return 0
    count = execute(chosen, root)
    print(f"{args.kind}: {count} command(s) passed ({chosen.why})", file=sys.stderr)
    return 0

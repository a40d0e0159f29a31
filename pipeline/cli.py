"""The ``python -m pipeline`` command line: parse, call one command module, map errors to exit codes.

Each command lives in its own module under ``pipeline/commands/`` with ``configure(parser)``
and ``run(args) -> int``; only the chosen module is imported, so ``run`` with everything
cached stays fast.
Exit codes: 0 success, 1 a check failed, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from model.errors import ArtifactError
from pipeline.config import DEFAULT_CONFIG
from pipeline.errors import PipelineError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "schema": ("pipeline.commands.schema", "infer a [schema] section for the config from a table"),
    "validate": ("pipeline.commands.validate", "check a table against the schema; every failure at once"),
    "drift": ("pipeline.commands.drift", "compare a table with a reference (CSV or model profile)"),
    "train": ("pipeline.commands.train", "fit the configured model and write the artefact directory"),
    "evaluate": ("pipeline.commands.evaluate", "measure quality, slices and latency on held-out rows"),
    "gate": ("pipeline.commands.gate", "apply quality gates and the no-regression rule; exit 1 on failure"),
    "report": ("pipeline.commands.report", "write report.md and plots for a job summary or PR comment"),
    "run": ("pipeline.commands.run", "run the whole DAG on this host, reusing cached steps"),
    "registry": ("pipeline.commands.registry", "register, list, promote and roll back model versions"),
    "serve": ("pipeline.commands.serve", "serve a model artefact over HTTP (FastAPI + uvicorn)"),
    "smoke": ("pipeline.commands.smoke", "check a running model server against the offline model"),
    "image": ("pipeline.commands.image", "build and run the serving image with a local Docker engine"),
    "synth": ("pipeline.commands.synth", "write the seeded churn table (the bundled data, benchmarks)"),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="ml-cicd: validate, train, evaluate and gate a tabular model.",
        epilog="commands:\n" + "\n".join(lines) + "\n\n`python -m pipeline COMMAND --help` for details.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """Return the parser for command ``name`` and its module."""
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(
        prog=f"python -m pipeline {name}",
        description=(module.__doc__ or help_).strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"pipeline config file (default {DEFAULT_CONFIG})"
    )
    module.configure(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0] in {"-h", "--help"}:
        top.print_help()
        return 0 if argv else 2
    known = top.parse_args(argv[:1])
    parser, module = command_parser(known.command)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args))  # type: ignore[attr-defined]
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130

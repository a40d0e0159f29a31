"""The ``python -m pipeline`` command line: parse, call one command module, map errors to exit codes.

Each command lives in its own module under ``pipeline/commands/`` with ``configure(parser)``
and ``run(args) -> int``; only the chosen module is imported, so ``run`` with everything
cached stays fast.
Exit codes: 0 success, 1 a check failed, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from model.errors import ArtifactError
from pipeline.config import DEFAULT_CONFIG
from pipeline.errors import PipelineError

# The commands, in the order ``--help`` lists them; ``pipeline/commands/<name>.py`` implements each.
COMMANDS: tuple[str, ...] = (
    "init",
    "schema",
    "validate",
    "drift",
    "train",
    "evaluate",
    "gate",
    "report",
    "run",
)
COMMANDS += ("registry", "serve", "smoke", "image", "synth")


def summary(name: str) -> str:
    """Return the first line of a command module's docstring, read without importing it."""
    spec = importlib.util.find_spec(f"pipeline.commands.{name}")
    origin = spec.origin if spec is not None else None
    doc = ast.get_docstring(ast.parse(Path(origin).read_text(encoding="utf-8"))) if origin else None
    return (doc or name).splitlines()[0].rstrip(".")


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<10} {summary(name)}" for name in COMMANDS]
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="ml-cicd: validate, train, evaluate and gate a tabular model.",
        epilog="commands:\n" + "\n".join(lines) + "\n\n`python -m pipeline COMMAND --help` for details.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def command_parser(name: str) -> tuple[argparse.ArgumentParser, ModuleType]:
    """Return the parser for command ``name`` and its module."""
    module = importlib.import_module(f"pipeline.commands.{name}")
    parser = argparse.ArgumentParser(
        prog=f"python -m pipeline {name}",
        description=(module.__doc__ or name).strip(),
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
        return int(module.run(args))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130

"""The ``python -m pipeline`` command line: parse, call one command module, map errors to exit codes.

Each command lives in its own module under ``pipeline/commands/`` with ``configure(parser)``
and ``run(args) -> int``; only the chosen module is imported, so ``run`` with everything
cached stays fast.
Exit codes: 0 success, 1 a check failed, 2 bad input, 4 the environment failed (disk full
or over quota, read-only file system, permission denied, out of memory or file handles: one
line naming the path and the OS error, never read as "a check failed"; see
``pipeline/errors.py``), 70 an internal error (a bug: the traceback, then one ``error:`` line;
never read as a verdict), 130 interrupted. Every other failure is one ``error:`` line on stderr,
no traceback. 3 is left to other tools. ``run`` passes on its first failing step's code
(a step's 4 is the run's 4) and, stopped by SIGINT or SIGTERM, exits 130 or 143.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from model.errors import ArtifactError
from pipeline.config import DEFAULT_CONFIG, project_root
from pipeline.core.factory import importable
from pipeline.errors import PipelineError, environment_failure

INTERNAL_ERROR = 70  # EX_SOFTWARE (sysexits.h)
PROG = "ml-cicd"  # the installed command; `python -m pipeline` is the same CLI

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
COMMANDS += ("checks", "registry", "serve", "smoke", "image", "synth")


def summary(name: str) -> str:
    """Return the first line of a command module's docstring, read without importing it."""
    spec = importlib.util.find_spec(f"pipeline.commands.{name}")
    origin = spec.origin if spec is not None else None
    doc = ast.get_docstring(ast.parse(Path(origin).read_text(encoding="utf-8"))) if origin else None
    return (doc or name).splitlines()[0].rstrip(".")


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<10} {summary(name)}" for name in COMMANDS]
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="ml-cicd: validate, train, evaluate and gate a tabular model.",
        epilog="commands:\n" + "\n".join(lines) + f"\n\n`{PROG} COMMAND --help` for details.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print ml-cicd's version and exit")
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def command_parser(name: str) -> tuple[argparse.ArgumentParser, ModuleType]:
    """Return the parser for command ``name`` and its module."""
    module = importlib.import_module(f"pipeline.commands.{name}")
    parser = argparse.ArgumentParser(
        prog=f"{PROG} {name}",
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
    if argv[0] == "--version":
        from pipeline.io.shipped import version

        print(f"ml-cicd {version()}")
        return 0
    known = top.parse_args(argv[:1])
    parser, module = command_parser(known.command)
    args = parser.parse_args(argv[1:])
    if hasattr(args, "out") and args.out is None and hasattr(args, "config"):
        args.out = project_root(args.config) / "out"  # beside the config, wherever the command starts
    if hasattr(args, "config"):  # a model made by the team's [model] factory unpickles the team's classes
        importable(project_root(args.config))
    try:
        check_out(getattr(args, "out", None))
        return int(module.run(args))
    except (PipelineError, ArtifactError, OSError) as exc:
        # an OS error of the machine's (ENOSPC, EROFS, EACCES ...), raw or behind another error
        environment = environment_failure(exc)
        if environment is not None:
            print(f"error: {environment}", file=sys.stderr)
            return environment.exit_code
        if isinstance(exc, PipelineError):
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        print(f"error: {exc}", file=sys.stderr)  # an artefact error, or a file that is not there
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: show where, but never exit 1 ("a check failed") or 2
        traceback.print_exc()
        print(
            f"error: internal error in `{known.command}` ({type(exc).__name__}); please report it",
            file=sys.stderr,
        )
        return INTERNAL_ERROR


def check_out(out: str | Path | None) -> None:
    """Refuse an ``--out`` that is a file or a symbolic link (one line, exit 2) before anything is written."""
    if out is None:
        return
    path = Path(out)
    if path.is_symlink():
        raise PipelineError(f"--out {out}: is a symbolic link; give the directory itself")
    if path.exists() and not path.is_dir():
        raise PipelineError(f"--out {out}: is a file, expected a directory")

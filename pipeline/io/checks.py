"""The team's own checks (the ``lint`` and ``test`` steps): which commands run, and running them in the project.

What runs is the config's ``[checks]`` when it names commands; otherwise what fits a Python
repository: ruff when the project configures it, pytest when it has a ``tests/`` directory. The
commands run in the project's root (the config's directory) with this machine's environment;
``python`` is the interpreter running ml-cicd and its scripts directory comes first on ``PATH``
(``pipeline/io/interpreter.py``), so a team's venv is its checks' venv.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import CheckFailed, ConfigError
from pipeline.io.interpreter import argv_for, child_env

KINDS = ("lint", "test")
RUFF_FILES = ("ruff.toml", ".ruff.toml")
RUFF_LINT: tuple[tuple[str, ...], ...] = (("ruff", "check", "."), ("ruff", "format", "--check", "."))
PYTEST: tuple[tuple[str, ...], ...] = (("python", "-m", "pytest", "-q"),)


@dataclass(frozen=True)
class Plan:
    """The commands one kind of check runs, and why those (the config, or what the project has)."""

    kind: str
    commands: tuple[tuple[str, ...], ...]
    why: str


def plan(kind: str, config: Config, root: Path) -> Plan:
    """Return what the ``kind`` check (lint or test) runs for the project at ``root``."""
    configured = getattr(config.checks, kind)
    if configured is not None:
        return Plan(kind, tuple(configured), f"checks.{kind} of the config")
    if kind == "lint":
        if ruff_configured(root):
            return Plan(kind, RUFF_LINT, "the project configures ruff")
        return Plan(kind, (), f"no checks.{kind} in the config and no ruff configuration in {root.resolve()}")
    if (root / "tests").is_dir():
        return Plan(kind, PYTEST, "the project has tests/")
    return Plan(kind, (), f"no checks.{kind} in the config and no tests/ directory in {root.resolve()}")


def ruff_configured(root: Path) -> bool:
    """Return True when ``root`` holds a ruff configuration (ruff.toml, .ruff.toml, or [tool.ruff] in pyproject.toml)."""
    if any((root / name).is_file() for name in RUFF_FILES):
        return True
    try:
        pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return "ruff" in pyproject.get("tool", {})


def execute(chosen: Plan, root: Path) -> int:
    """Run the plan's commands in ``root`` one after another; return how many ran.

    Raise :class:`CheckFailed` naming the first command that exits non-zero, and :class:`ConfigError`
    when a program is not installed.
    """
    for argv in chosen.commands:
        shown = shlex.join(argv)
        print(f"{chosen.kind}: {shown}", file=sys.stderr, flush=True)
        try:
            code = subprocess.run(argv_for(argv), cwd=root, env=child_env(os.environ), check=False).returncode
        except FileNotFoundError:
            raise ConfigError(
                f"checks.{chosen.kind}: `{argv[0]}` is not installed here (not on PATH); install it or change "
                f"checks.{chosen.kind}"
            ) from None
        if code != 0:
            raise CheckFailed(f"{chosen.kind}: `{shown}` exited {code}")
    return len(chosen.commands)

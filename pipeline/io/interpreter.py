"""The interpreter running ml-cicd is the one its child processes run: the host runner's steps, the team's checks.

``python`` in an argv is this interpreter, its scripts directory (a venv's ruff, pytest) comes
first on ``PATH``, and ml-cicd's root is on ``PYTHONPATH``: steps run ``python -P -m pipeline``
(a project's own ``pipeline/`` never shadows ml-cicd's), so they import the very ml-cicd that
started them, installed or a checkout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.io.shipped import tool_root


def argv_for(argv: Sequence[str]) -> list[str]:
    """Return ``argv`` with ``python`` as this interpreter."""
    return [sys.executable, *argv[1:]] if argv and argv[0] == "python" else list(argv)


def child_env(base: Mapping[str, str]) -> dict[str, str]:
    """Return ``base`` with this interpreter's scripts first on PATH and ml-cicd's root on PYTHONPATH."""
    env = dict(base)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tool_root()), env.get("PYTHONPATH", "")]))
    return env

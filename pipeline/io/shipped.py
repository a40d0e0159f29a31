"""ml-cicd's own files, wherever it runs from: its code, the serving Dockerfile and the pinned requirement lists.

Installed from a wheel, the Dockerfile and the lists are package data (``pipeline/_shipped/``,
placed there by the wheel build); in a checkout of ml-cicd they are at the checkout's root. Nothing
here reads the project ml-cicd works on: a team's own ``model/`` or ``Dockerfile`` is never taken
for ml-cicd's.
"""

from __future__ import annotations

from pathlib import Path

import model
import pipeline
from pipeline.errors import EnvironmentFailure

SERVE_REQUIREMENTS = (
    "requirements-serve-common.txt",
    "requirements-serve.txt",
    "requirements-serve-sklearn.txt",
)
DOCKERFILE = "Dockerfile"
VERSION = "VERSION"  # ml-cicd's version, the one place: the wheel, `ml-cicd --version` and the module read it
PACKAGE_DATA = "_shipped"


def package(module: object) -> Path:
    """Return the directory of an imported package of ml-cicd's (``pipeline`` or ``model``)."""
    return Path(str(getattr(module, "__file__", ""))).resolve().parent


def tool_root() -> Path:
    """Return the directory ml-cicd's packages are imported from (site-packages, or a checkout's root)."""
    return package(pipeline).parent


def shipped(name: str) -> Path:
    """Return the path of ml-cicd's file ``name`` (the Dockerfile or a requirement list)."""
    home = package(pipeline)
    for place in (home / PACKAGE_DATA, home.parent):
        if (place / name).is_file():
            return place / name
    raise EnvironmentFailure(
        f"ml-cicd's {name} is missing from its installation ({home}): reinstall ml-cicd (pip install ml-cicd)"
    )


def model_package() -> Path:
    """Return the ``model/`` package the serving image ships: ml-cicd's own, as imported."""
    return package(model)


def code_paths() -> tuple[Path, ...]:
    """Return what every step's result depends on: ml-cicd's code and the requirement lists it installs."""
    return (package(pipeline), package(model), *(shipped(name) for name in SERVE_REQUIREMENTS))


def version() -> str:
    """Return ml-cicd's version (the VERSION file's first line)."""
    return shipped(VERSION).read_text(encoding="utf-8").strip()

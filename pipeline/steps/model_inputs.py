"""What one model adds to its serving image's build context: the team's code, libraries, system packages.

The sklearn flavour unpickles the model, so it needs what the artefact's ``needs`` record names
(``pipeline/steps/needs.py``): ``team/`` holds the team's files at their paths under the project's
root (the image puts ``/app/team`` on ``PYTHONPATH``, so a pickle's ``clinic_ml.transforms`` imports
as it did in training), each checked against the sha256 training recorded (a file changed since
would serve code the model was not gated with); ``requirements-model.txt`` pins the libraries the
flavour's own lists lack, at the versions training had (installed ``--no-deps``: the record holds
every distribution the model's classes and the team's files import); ``system-packages.txt`` names
the Debian packages those libraries link (LightGBM's OpenMP runtime). The lean ONNX flavour needs
none of them: the three are written empty. The host build and the Dagger module (through
``python -m pipeline image inputs``) both take them from here.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from model.records import ModelMetadata
from pipeline.errors import DataError
from pipeline.io.shipped import shipped

TEAM_DIR = "team"
MODEL_REQUIREMENTS = "requirements-model.txt"
SYSTEM_PACKAGES = "system-packages.txt"
SKLEARN_REQUIREMENTS = "requirements-serve-sklearn.txt"  # the flavour that unpickles
# Debian packages a library's wheel links but does not carry, per distribution. LightGBM's wheel links
# the system's OpenMP runtime (scikit-learn's and XGBoost's bundle theirs); the pin is the step
# containers' (src/ml_cicd/spec.py SYSTEM_PACKAGES, held equal by tests/steps/test_model_inputs.py).
NATIVE_PACKAGES: dict[str, tuple[str, ...]] = {"lightgbm": ("libgomp1=14.2.0-*",)}


def canonical(name: str) -> str:
    """Return a distribution name as pip compares them (PEP 503: lower case, runs of -_. as one -)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(requirements: str) -> dict[str, str]:
    """Return ``{canonical name: version}`` of a shipped requirement list and the lists it includes."""
    found: dict[str, str] = {}
    for line in shipped(requirements).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found |= pinned(line[3:].strip())
        elif "==" in line:
            name, _, version = line.partition("==")
            found[canonical(name)] = version.strip()
    return found


def write_model_inputs(
    metadata: ModelMetadata,
    project: Path,
    dest: Path,
    flavour: str,
    progress: Callable[[str], None] = lambda line: None,
) -> list[str]:
    """Write ``team/``, ``requirements-model.txt`` and ``system-packages.txt`` into ``dest``; return the pins added.

    Raise :class:`DataError` naming a team file that is missing or changed since training.
    """
    team = Path(dest) / TEAM_DIR
    pins: list[str] = []
    packages: list[str] = []
    team.mkdir(parents=True, exist_ok=True)
    needs = metadata.needs
    if flavour == "sklearn" and needs is not None:
        for file in needs.files:
            source = Path(project) / file.path
            if not source.is_file():
                raise DataError(
                    f"{source}: the model needs the team's file {file.path} (module of {needs.factory}), "
                    "and the project has no such file"
                )
            if hashlib.sha256(source.read_bytes()).hexdigest() != file.sha256:
                raise DataError(
                    f"{source}: changed since the model was trained (sha256 differs from its metadata); "
                    "the image would serve code the model was not gated with: train again"
                )
            (team / file.path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, team / file.path)
        image = pinned(SKLEARN_REQUIREMENTS)
        for name, version in needs.libraries.items():
            have = image.get(canonical(name))
            if have is None:
                pins.append(f"{name}=={version}")
                packages += NATIVE_PACKAGES.get(canonical(name), ())
            elif have != version:
                progress(f"note: the model was trained with {name} {version}; the image has {have}")
    (Path(dest) / MODEL_REQUIREMENTS).write_text("".join(f"{pin}\n" for pin in pins))
    (Path(dest) / SYSTEM_PACKAGES).write_text("".join(f"{name}\n" for name in packages))
    return pins

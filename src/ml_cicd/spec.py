"""The step containers as data: the one definition the Dagger module and the container replica build from.

A step container is the pinned Python image, a few environment variables, ml-cicd's pinned
requirements installed (a pip cache mounted, the CA bundle a secret around the install) and its code
at ``TOOL_DIR``, all taken from the module's own source (the "tool"); then the team's project (the
``--source`` directory: its config, data, tests and lint settings) at ``WORKDIR``, the ``out/`` of
the steps it needs, and the step's argv (``pipeline/dag.py``).
``_containers.py`` turns this into Dagger containers; ``replica.py`` into Docker commands;
``tests/dagger/test_replica.py`` holds the two equal. Nothing here imports dagger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

# The official Python 3.13.14 slim image on Debian trixie, pinned by its index digest as
# docker-library/repo-info records it: repos/python/remote/3.13.14-slim-trixie.md at commit
# 2986dca3a80cb11b70fc4599941096374ea9e509 ("docker pull python@sha256:9662417a..."; linux/amd64 and
# linux/arm64/v8 among its platforms). Steps, the serving image (the Dockerfile's default BASE_IMAGE)
# and the module's runtime ([tool.dagger] base-image) run it. Where Docker Hub is out of reach,
# STAND_IN (Debian trixie's own Python 3.13 in a venv, scripts/docker-engine.sh) replaces it: the same
# Debian release and Python minor, the documented substitution of the replica and the image build.
PYTHON_IMAGE: Final[str] = (
    "python:3.13.14-slim-trixie@sha256:9662417aace5ae7b8e2609cce472b72a8958e134ba372808abe9cc1a0c0125e6"
)
PYTHON_VERSION: Final[str] = "3.13"
STAND_IN: Final[str] = "local/python:3.13-trixie"

WORKDIR: Final[str] = "/src"
# ml-cicd's own code in every step container, from the module's source (never the caller's): a team's
# top-level model/ or pipeline/ cannot shadow it, since steps run `python -P` (no working directory on sys.path).
TOOL_DIR: Final[str] = "/opt/ml-cicd"
TOOL_CODE: Final[tuple[str, ...]] = ("pipeline", "model")
DOCKERFILE: Final[str] = "Dockerfile"
SERVE_REQUIREMENTS: Final[tuple[str, ...]] = (
    "requirements-serve-common.txt",
    "requirements-serve.txt",
    "requirements-serve-sklearn.txt",
)
ENV: Final[tuple[tuple[str, str], ...]] = (
    ("PYTHONPATH", TOOL_DIR),
    ("PYTHONUNBUFFERED", "1"),
    ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
    ("PIP_ROOT_USER_ACTION", "ignore"),
    ("ORT_DISABLE_TELEMETRY", "1"),  # ONNX Runtime 1.29+ reports usage otherwise
)
PIP_CACHE_PATH: Final[str] = "/root/.cache/pip"
PIP_CACHE_VOLUME: Final[str] = f"ml-cicd-pip-python{PYTHON_VERSION}"
REQUIREMENTS: Final[tuple[str, ...]] = (
    *SERVE_REQUIREMENTS,
    "requirements.txt",
    "requirements-boost.txt",  # XGBoost, LightGBM and their converters: model.kind = "xgboost" / "lightgbm"
    "requirements-dev.txt",
)
# The system packages a step needs besides Python: LightGBM's wheel links the system's OpenMP runtime
# (scikit-learn and XGBoost bundle their own). Debian trixie's libgomp1, its upstream release pinned
# (14.2.0-19 in trixie when this was written; a point release's rebuild keeps the release).
SYSTEM_PACKAGES: Final[tuple[str, ...]] = ("libgomp1=14.2.0-*",)
APT_INSTALL: Final[tuple[str, ...]] = (
    "sh",
    "-c",
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends "
    + " ".join(f"'{p}'" for p in SYSTEM_PACKAGES)
    + " && rm -rf /var/lib/apt/lists/*",
)
INSTALL: Final[tuple[str, ...]] = ("python", "-m", "pip", "install", "-r", "requirements-dev.txt")
# The signing key (model/signing.py): the module's --signing-key secret as this variable, else a key the
# engine keeps in a cache volume mounted where the pipeline looks for its key file (like a laptop's).
KEY_ENV: Final[str] = "ML_CICD_SIGNING_KEY"
KEY_DIR: Final[str] = "/root/.config/ml-cicd"
KEY_VOLUME: Final[str] = "ml-cicd-signing-key"
CA_SECRET: Final[str] = "ca-bundle"  # also the secret id the Dockerfile mounts (/run/secrets/ca-bundle)
CA_PATH: Final[str] = f"/run/secrets/{CA_SECRET}"

# What of the source directory a step sees: the module's Ignore list for --source (gitignore syntax;
# Dagger applies it, and no .gitignore, to a Directory argument: core/modfunc.go, cmd/dagger/flags.go).
# dagger.json's include list leaves out the same of the module's own source (a test holds them equal).
SOURCE_IGNORE: Final[tuple[str, ...]] = (
    ".git",
    ".venv",
    "**/__pycache__",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/.ruff_cache",
    "**/.hypothesis",
    ".cache",
    "out",
    "registry",
    "sdk",
    "build",
    "dist",
    "**/*.egg-info",
)

CONFIG: Final[str] = (
    "ml-cicd.toml"  # the project's config in --source, unless the module's --config names another
)
OUT: Final[str] = "out"
CHAMPION: Final[str] = f"{OUT}/champion"
MODEL: Final[str] = f"{OUT}/model"
REPORT_FILE: Final[str] = f"{OUT}/report.md"
SERVICE: Final[str] = "model"
PORT: Final[int] = 8080
IMAGE_MODEL_PATH: Final[str] = "/app/model"  # where the serving Dockerfile copies the model
# What the model adds to the image's build context (the team's code, libraries, system packages), written
# in the gate's container after the gate by `pipeline image inputs` and merged into the context's root.
MODEL_INPUTS: Final[str] = "/tmp/model-inputs"
PLATFORMS: Final[tuple[str, ...]] = ("linux/amd64",)  # what production runs, whatever builds it
HEADLINE_METRICS: Final[tuple[str, ...]] = ("roc_auc", "f1", "accuracy", "rmse", "r2", "mae")

Argv = tuple[str, ...]
_PY: Final[Argv] = ("python", "-P", "-m", "pipeline")
_COMMON: Final[Argv] = ("--config", CONFIG, "--out", OUT)


@dataclass(frozen=True)
class Step:
    """One step container: its argv (equal to ``pipeline/dag.py``'s) and what it is given besides the source."""

    name: str
    commands: tuple[Argv, ...]
    inputs: tuple[str, ...] = ()  # steps whose out/ is placed at WORKDIR/out, in this order
    git_marker: bool = False  # an empty .git: actionlint finds the repository root by it
    champion: bool = False  # the champion artefact at WORKDIR/out/champion, when there is one
    revision: bool = False  # GIT_COMMIT=<revision>, when one is given
    full: bool = False  # accepts --full (train on every row)
    service: bool = False  # the serving image as service SERVICE on PORT


STEPS: Final[tuple[Step, ...]] = (
    # the team's own checks ([checks] of their config); actionlint finds a repository root by .git
    Step("lint", ((*_PY, "checks", "lint", "--config", CONFIG),), git_marker=True),
    Step("test", ((*_PY, "checks", "test", "--config", CONFIG),)),
    Step("validate", ((*_PY, "validate", *_COMMON),)),
    Step("train", ((*_PY, "train", *_COMMON),), revision=True, full=True),
    Step("evaluate", ((*_PY, "evaluate", *_COMMON),), inputs=("train",)),
    Step(
        "gate",
        ((*_PY, "gate", *_COMMON, "--champion", CHAMPION),),
        inputs=("validate", "evaluate"),
        champion=True,
    ),
    Step(
        "smoke_test",
        ((*_PY, "smoke", *_COMMON, "--url", f"http://{SERVICE}:{PORT}"),),
        ("gate",),
        service=True,
    ),
    # the report gets the out/ of every step that left one, and how each step ended (--step)
    Step("report", ((*_PY, "report", *_COMMON),)),
)
# Steps that leave an out/ for the report, in the order they are merged (later ones include earlier ones).
PRODUCERS: Final[tuple[str, ...]] = ("validate", "train", "evaluate", "gate", "smoke_test")
IMAGE_STEP: Final[str] = "build_image"  # between gate and smoke_test: the Dockerfile, built by the engine
# The steps the report names, in the DAG's order (pipeline/dag.py's, without the host-only ones).
REPORTED: Final[tuple[str, ...]] = (
    "lint",
    "test",
    "validate",
    "train",
    "evaluate",
    "gate",
    IMAGE_STEP,
    "smoke_test",
)


def step(name: str) -> Step:
    """Return the step called ``name``."""
    for each in STEPS:
        if each.name == name:
            return each
    raise KeyError(f"no step {name!r}; steps are {', '.join(s.name for s in STEPS)}")


def commands(spec: Step, full: bool = False, config: str = CONFIG) -> tuple[Argv, ...]:
    """Return the argv ``spec`` runs with the project's ``config`` (``--full`` appended where it trains on every row)."""
    argvs = tuple(tuple(config if arg == CONFIG else arg for arg in argv) for argv in spec.commands)
    return tuple((*argv, "--full") for argv in argvs) if full and spec.full else argvs


def image_inputs(config: str = CONFIG) -> Argv:
    """Return the argv that writes the model's part of the serving image's build context to MODEL_INPUTS."""
    return (*_PY, "image", "inputs", "--config", config, "--out", OUT, "--dest", MODEL_INPUTS)


def report_flags(outcomes: dict[str, tuple[str, int, str]]) -> Argv:
    """Return ``report``'s ``--step NAME=STATUS:CODE:NOTE`` arguments, one per step of REPORTED in order.

    A step with no outcome did not start: it was skipped after an earlier failure.
    """
    flags: list[str] = []
    for name in REPORTED:
        status, code, note = outcomes.get(name, ("skipped", 0, "stopped after a failure"))
        flags += ["--step", f"{name}={status}:{code}:{note}"]
    return tuple(flags)


def image_labels(
    metadata: dict[str, Any], metrics: dict[str, Any] | None, revision: str, source: str
) -> dict[str, str]:
    """Return the label build arguments for a model: the twin of ``pipeline/core/labels.py``.

    The module cannot import ``pipeline/``; ``tests/dagger/test_module.py`` holds the two equal.
    """
    overall = (metrics or {}).get("overall") or {}
    return {
        "REVISION": revision or metadata.get("git_commit") or "unknown",
        "CREATED": str(metadata["created_at"]),
        "SOURCE": source,
        "MODEL_VERSION": str(metadata["model_sha256"])[:12],
        "MODEL_SHA256": str(metadata["model_sha256"]),
        "MODEL_METRICS": ",".join(
            f"{k}={overall[k]:.4f}" for k in HEADLINE_METRICS if overall.get(k) is not None
        ),
        "FLAVOUR": "onnx" if (metadata.get("compiled") or {}).get("file") else "sklearn",
    }


def repository(ref: str) -> str:
    """Return an image reference without its tag or digest (``host:5000/a/b:t`` -> ``host:5000/a/b``)."""
    name = ref.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


def platforms(value: str) -> tuple[str, ...]:
    """Return the platforms of a comma-separated ``value`` (``linux/amd64,linux/arm64``), refusing a malformed one."""
    found = tuple(p.strip() for p in value.split(",") if p.strip())
    bad = [p for p in found if p.count("/") not in (1, 2) or not p.startswith("linux/")]
    if not found or bad:
        raise ValueError(
            f"platforms {value!r}: expected a comma-separated list such as linux/amd64,linux/arm64"
        )
    return found

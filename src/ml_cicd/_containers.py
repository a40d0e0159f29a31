"""Private container builders and the step argv for the ml-cicd module (no Dagger functions here).

The builders are closures applied with ``Container.with_``: building them is lazy and needs
no engine, which is how ``tests/test_dagger_module.py`` inspects them offline.
"""

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar, cast

import dagger
from dagger import dag, function

# Python 3.12 slim, pinned by digest exactly as dagger/dagger pins it at tag v0.21.8 in
# core/integration/module_python_test.go ("pinned base image" test). The serving image gets
# its BASE_IMAGE from this module as a build argument, so steps and image share this base.
PYTHON_IMAGE: Final[str] = (
    "python:3.12.1-slim@sha256:a64ac5be6928c6a94f00b16e09cdf3ba3edd44452d10ffa4516a58004873573e"
)
PYTHON_VERSION: Final[str] = "3.12"
PIP_CACHE_PATH: Final[str] = "/root/.cache/pip"
PIP_CACHE_VOLUME: Final[str] = f"ml-cicd-pip-python{PYTHON_VERSION}"
WORKDIR: Final[str] = "/src"
REQUIREMENTS: Final[tuple[str, ...]] = ("requirements-serve.txt", "requirements.txt", "requirements-dev.txt")
INSTALL: Final[tuple[str, ...]] = ("python", "-m", "pip", "install", "-r", "requirements-dev.txt")
CA_SECRET: Final[str] = "ca-bundle"  # also the secret id the Dockerfile mounts (/run/secrets/ca-bundle)
CA_PATH: Final[str] = f"/run/secrets/{CA_SECRET}"

CONFIG: Final[str] = "configs/pipeline.toml"
OUT: Final[str] = "out"
CHAMPION: Final[str] = f"{OUT}/champion"
MODEL: Final[str] = f"{OUT}/model"
SERVICE: Final[str] = "model"
PORT: Final[int] = 8080
IMAGE_MODEL_PATH: Final[str] = "/app/model"  # where the serving Dockerfile copies the model

# The argv of every step, equal to pipeline/dag.py's table rendered with CONFIG, OUT and the
# service URL (the module cannot import pipeline/; tests/test_dagger_module.py holds them equal).
Argv = tuple[str, ...]
_PY: Final[Argv] = ("python", "-m", "pipeline")
_COMMON: Final[Argv] = ("--config", CONFIG, "--out", OUT)
LINT: Final[tuple[Argv, ...]] = (
    ("ruff", "check", "."),
    ("ruff", "format", "--check", "."),
    ("mypy",),
    ("actionlint",),
)
TEST: Final[tuple[Argv, ...]] = (
    ("python", "-m", "pytest", "-q", "-m", "not slow and not docker and not dagger"),
)
VALIDATE: Final[tuple[Argv, ...]] = ((*_PY, "validate", *_COMMON),)
TRAIN: Final[tuple[Argv, ...]] = ((*_PY, "train", *_COMMON),)
EVALUATE: Final[tuple[Argv, ...]] = ((*_PY, "evaluate", *_COMMON),)
GATE: Final[tuple[Argv, ...]] = ((*_PY, "gate", *_COMMON, "--champion", CHAMPION),)
REPORT: Final[tuple[Argv, ...]] = ((*_PY, "report", *_COMMON),)
SMOKE: Final[tuple[Argv, ...]] = ((*_PY, "smoke", *_COMMON, "--url", f"http://{SERVICE}:{PORT}"),)

Build = Callable[[dagger.Container], dagger.Container]
F = TypeVar("F", bound=Callable[..., Any])


def function_cached(policy: str) -> Callable[[F], F]:
    """Return ``@function(cache=policy)``, typed: the SDK's overloads of ``function`` omit ``cache``."""
    register: Any = function

    def apply(func: F) -> F:
        return cast(F, register(cache=policy)(func))

    return apply


def python_env(source: dagger.Directory, ca: dagger.Secret | None) -> Build:
    """Return a builder: pinned Python, pip cache, pinned requirements installed, no code yet."""

    def build(ctr: dagger.Container) -> dagger.Container:
        ctr = (
            ctr.from_(PYTHON_IMAGE)
            .with_env_variable("PYTHONUNBUFFERED", "1")
            .with_env_variable("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .with_env_variable("PIP_ROOT_USER_ACTION", "ignore")
            .with_mounted_cache(PIP_CACHE_PATH, dag.cache_volume(PIP_CACHE_VOLUME))
            .with_workdir(WORKDIR)
        )
        for name in REQUIREMENTS:
            ctr = ctr.with_file(f"{WORKDIR}/{name}", source.file(name))
        return ctr.with_(with_ca(ca, INSTALL))

    return build


def with_ca(ca: dagger.Secret | None, *argvs: Argv) -> Build:
    """Return a builder running ``argvs`` with the CA bundle mounted as a secret and PIP_CERT set."""

    def build(ctr: dagger.Container) -> dagger.Container:
        if ca is None:
            return ctr.with_(run(argvs))
        return (
            ctr.with_mounted_secret(CA_PATH, ca)
            .with_env_variable("PIP_CERT", CA_PATH)
            .with_(run(argvs))
            .without_env_variable("PIP_CERT")
            .without_mount(CA_PATH)
        )

    return build


def run(argvs: Sequence[Argv], expect: dagger.ReturnType = dagger.ReturnType.SUCCESS) -> Build:
    """Return a builder executing each argv in turn."""

    def build(ctr: dagger.Container) -> dagger.Container:
        for argv in argvs:
            ctr = ctr.with_exec(list(argv), expect=expect)
        return ctr

    return build


def step(source: dagger.Directory, ca: dagger.Secret | None, *outs: dagger.Directory) -> dagger.Container:
    """Return a step container: the Python env, then the source, then earlier artefacts in out/."""
    ctr = dag.container().with_(python_env(source, ca)).with_directory(WORKDIR, source)
    for out in outs:
        ctr = ctr.with_directory(f"{WORKDIR}/{OUT}", out)
    return ctr


def registry_auth(address: str, username: str, password: dagger.Secret | None) -> Build:
    """Return a builder attaching registry credentials (a no-op without a password)."""

    def build(ctr: dagger.Container) -> dagger.Container:
        if password is None:
            return ctr
        return ctr.with_registry_auth(address, username, password)

    return build


def repository(ref: str) -> str:
    """Return an image reference without its tag or digest (``host:5000/a/b:t`` -> ``host:5000/a/b``)."""
    name = ref.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name

"""Private container builders and the step argv for the ml-cicd module (no Dagger functions here).

The builders are closures applied with ``Container.with_``: building them is lazy and needs
no engine, which is how ``tests/test_dagger_module.py`` inspects them offline.
"""

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar, cast

import dagger
from dagger import dag, function

# The official Python 3.14.7 slim (Debian bookworm) image, pinned by its index digest as
# docker-library/repo-info records it: repos/python/remote/3.14.7-slim-bookworm.md at commit
# 422f3cfe488dc9ae394c5058b27db617f72c91db ("docker pull python@sha256:9ab8d9c8..."; amd64, arm64
# and more). The Dockerfile's default BASE_IMAGE is the same reference, and the engine passes this
# one to the image build, so the steps and the serving image run one Python. Every pin in
# requirements*.txt has cp314 wheels for x86_64 and aarch64 (README, "Base image").
PYTHON_IMAGE: Final[str] = (
    "python:3.14.7-slim-bookworm@sha256:9ab8d9c8514b44f90cf0029dd42fdd7e9e211e639c8b995304cc04568dee900f"
)
PYTHON_VERSION: Final[str] = "3.14"
PIP_CACHE_PATH: Final[str] = "/root/.cache/pip"
PIP_CACHE_VOLUME: Final[str] = f"ml-cicd-pip-python{PYTHON_VERSION}"
WORKDIR: Final[str] = "/src"
REQUIREMENTS: Final[tuple[str, ...]] = (
    "requirements-serve-common.txt",
    "requirements-serve.txt",
    "requirements-serve-sklearn.txt",
    "requirements.txt",
    "requirements-dev.txt",
)
INSTALL: Final[tuple[str, ...]] = ("python", "-m", "pip", "install", "-r", "requirements-dev.txt")
CA_SECRET: Final[str] = "ca-bundle"  # also the secret id the Dockerfile mounts (/run/secrets/ca-bundle)
CA_PATH: Final[str] = f"/run/secrets/{CA_SECRET}"
SECRET_LIMIT: Final[int] = 128_000  # bytes; the documented limit of dag.set_secret
CHAMPION_PLATFORM: Final[str] = "linux/amd64"  # only files are read from it: any platform serves
SKOPEO: Final[str] = "skopeo=1.9.3+ds1-1+b10"  # Debian bookworm's, to move tags without re-encoding
HEADLINE_METRICS: Final[tuple[str, ...]] = ("roc_auc", "f1", "accuracy", "rmse", "r2", "mae")

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


def ca_secret(pem: str) -> dagger.Secret:
    """Return ``pem`` as the named CA secret, refusing a bundle over Dagger's documented secret size."""
    size = len(pem.encode())
    if size > SECRET_LIMIT:
        raise ValueError(
            f"--ca-bundle is {size:,} bytes; a Dagger secret holds at most {SECRET_LIMIT:,}: pass only your "
            "proxy's CA certificate (a few kB), or give the engine the CA (README, 'Behind a proxy')"
        )
    return dag.set_secret(CA_SECRET, pem)


def python_env(source: dagger.Directory, ca: dagger.Secret | None) -> Build:
    """Return a builder: pinned Python, pip cache, pinned requirements installed, no code yet."""

    def build(ctr: dagger.Container) -> dagger.Container:
        ctr = (
            ctr.from_(PYTHON_IMAGE)
            .with_env_variable("PYTHONUNBUFFERED", "1")
            .with_env_variable("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .with_env_variable("PIP_ROOT_USER_ACTION", "ignore")
            .with_env_variable("ORT_DISABLE_TELEMETRY", "1")  # ONNX Runtime 1.29+ reports usage otherwise
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


def champion_model(image: str, platform: str, auth: Build) -> dagger.Directory:
    """Return the model directory of a serving image, pulled for ``platform`` with ``auth`` attached first."""
    ctr = dag.container(platform=dagger.Platform(platform)).with_(auth).from_(image)
    return ctr.directory(IMAGE_MODEL_PATH)


def image_labels(
    metadata: dict[str, Any], metrics: dict[str, Any] | None, revision: str, source: str
) -> dict[str, str]:
    """Return the label build arguments for a model: the Dagger twin of ``pipeline/core/labels.py``.

    This module cannot import ``pipeline/``; ``tests/dagger/test_module.py`` holds the two equal.
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


# Moves TAG onto the image IMAGE points at, keeping its manifest (index) bytes: the digest and every
# platform stay as published. The digest is the sha256 of the raw manifest, so no platform has to
# match the machine running it. Refuses (exit 3) when the tag ends up on other bytes.
MOVE_TAG: Final[str] = """set -euo pipefail
auth=() src=() dst=()
if [ -n "${REGISTRY_PASSWORD:-}" ]; then
  login="$REGISTRY_USERNAME:$REGISTRY_PASSWORD"
  auth=(--creds "$login") src=(--src-creds "$login") dst=(--dest-creds "$login")
fi
manifest=$(mktemp)
digest_of() {  # sets $digest (called directly, not in $(...), so that set -e holds inside)
  skopeo inspect --raw "${auth[@]}" "docker://$1" >"$manifest"
  digest="sha256:$(sha256sum <"$manifest" | cut -d' ' -f1)"
}
digest_of "$IMAGE"
published=$digest
skopeo copy --all --preserve-digests "${src[@]}" "${dst[@]}" "docker://$REPOSITORY@$published" "docker://$TARGET"
digest_of "$TARGET"
moved=$digest
if [ "$moved" != "$published" ]; then
  echo "refusing: $TARGET resolves to $moved, not $published: the registry re-encoded the manifest" >&2
  exit 3
fi
echo "$TARGET@$published"
"""


def tag_mover(image: str, target: str, username: str, password: dagger.Secret | None) -> dagger.Container:
    """Return a container that points ``target`` at ``image``'s published manifest (digest and platforms kept)."""
    ctr = (
        dag.container()
        .from_(PYTHON_IMAGE)
        .with_exec(
            ["sh", "-c", f"apt-get update -qq && apt-get install -y -qq --no-install-recommends {SKOPEO}"]
        )
        .with_env_variable("IMAGE", image)
        .with_env_variable("REPOSITORY", repository(image))
        .with_env_variable("TARGET", target)
        .with_env_variable("REGISTRY_USERNAME", username)
    )
    if password is not None:
        ctr = ctr.with_secret_variable("REGISTRY_PASSWORD", password)
    return ctr.with_exec(["bash", "-c", MOVE_TAG])

"""Private container builders for the ml-cicd module (no Dagger functions here).

Every step container is built from ``spec.py`` (the definition the container replica builds from
too). The builders are closures applied with ``Container.with_``: building them is lazy and needs
no engine, which is how ``tests/dagger/`` inspects them offline.
"""

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar, cast

import dagger
from dagger import dag, function

from .spec import (
    APT_INSTALL,
    CA_PATH,
    CA_SECRET,
    DOCKERFILE,
    ENV,
    INSTALL,
    MODEL,
    MODEL_INPUTS,
    PIP_CACHE_PATH,
    PIP_CACHE_VOLUME,
    PYTHON_IMAGE,
    REQUIREMENTS,
    SERVE_REQUIREMENTS,
    TOOL_CODE,
    TOOL_DIR,
    WORKDIR,
    Argv,
    image_inputs,
    repository,
)

SECRET_LIMIT: Final[int] = 128_000  # bytes; the documented limit of dag.set_secret
CHAMPION_PLATFORM: Final[str] = "linux/amd64"  # only files are read from it: any platform serves
# Debian trixie's skopeo, to move tags without re-encoding. The upstream release is pinned, not the
# Debian revision: a binNMU or point-release rebuild replaces the exact version in the archive.
SKOPEO: Final[str] = "skopeo=1.18.0+ds1-*"

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


def tool_source() -> dagger.Directory:
    """Return the module's own source (dagger.json's include applied): ml-cicd's code, requirements, Dockerfile."""
    return dag.current_module().source()


def python_env(tool: dagger.Directory, ca: dagger.Secret | None) -> Build:
    """Return a builder: pinned Python, its environment, pip cache, ml-cicd's requirements and code, no project yet.

    Everything comes from ``tool``, the module's own source; the workdir is left at ``WORKDIR``,
    where the project goes.
    """

    def build(ctr: dagger.Container) -> dagger.Container:
        ctr = ctr.from_(PYTHON_IMAGE)
        for name, value in ENV:
            ctr = ctr.with_env_variable(name, value)
        ctr = ctr.with_exec(list(APT_INSTALL))  # the system libraries a step needs (spec.SYSTEM_PACKAGES)
        ctr = ctr.with_mounted_cache(PIP_CACHE_PATH, dag.cache_volume(PIP_CACHE_VOLUME)).with_workdir(
            TOOL_DIR
        )
        for name in REQUIREMENTS:
            ctr = ctr.with_file(f"{TOOL_DIR}/{name}", tool.file(name))
        ctr = ctr.with_(with_ca(ca, INSTALL))
        for name in TOOL_CODE:
            ctr = ctr.with_directory(f"{TOOL_DIR}/{name}", tool.directory(name))
        return ctr.with_workdir(WORKDIR)

    return build


def image_context(
    tool: dagger.Directory, model: dagger.Directory, inputs: dagger.Directory
) -> dagger.Directory:
    """Return the serving image's build context: ml-cicd's Dockerfile, serving requirements and model/, the
    artefact, and what the model adds (``inputs``: the team's code, libraries and system packages it needs)."""
    context = dag.directory().with_file(DOCKERFILE, tool.file(DOCKERFILE))
    for name in SERVE_REQUIREMENTS:
        context = context.with_file(name, tool.file(name))
    context = context.with_directory("model", tool.directory("model")).with_directory(MODEL, model)
    return context.with_directory(".", inputs)


def model_inputs(gated: dagger.Container, config: str) -> dagger.Directory:
    """Return what the gated model adds to the image's build context, written in the gate's container."""
    return gated.with_exec(list(image_inputs(config))).directory(MODEL_INPUTS)


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


def registry_auth(address: str, username: str, password: dagger.Secret | None) -> Build:
    """Return a builder attaching registry credentials (a no-op without a password)."""

    def build(ctr: dagger.Container) -> dagger.Container:
        if password is None:
            return ctr
        return ctr.with_registry_auth(address, username, password)

    return build


def champion_model(image: str, platform: str, auth: Build) -> dagger.Directory:
    """Return the model directory of a serving image, pulled for ``platform`` with ``auth`` attached first."""
    ctr = dag.container(platform=dagger.Platform(platform)).with_(auth).from_(image)
    return ctr.directory("/app/model")


# Moves TAG onto the image IMAGE points at, keeping its manifest (index) bytes: the digest and every
# platform stay as published. The digest is the sha256 of the raw manifest, so no platform has to
# match the machine running it. Prints what the registry holds under TAG afterwards; refuses (exit 3)
# when that is other bytes than were published.
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
echo "$TARGET@$moved"
"""
CALL_ENV: Final[str] = "ML_CICD_CALL"


def tag_mover(
    image: str, target: str, username: str, password: dagger.Secret | None, call: str
) -> dagger.Container:
    """Return a container that points ``target`` at ``image``'s published manifest (digest and platforms kept).

    ``call`` must differ on every call. The engine keeps a ``withExec`` result and reuses it for the
    same inputs (``core/schema/container.go:593-594`` at v0.21.8: the exec is persistable), a secret
    enters that key as its plaintext hashed with an engine-wide salt (``core/schema/secret.go:104-106``,
    ``core/secret.go:264-280``), and a function's ``cache="never"`` does not stop the execs inside it
    being reused (docs ``extending/modules/function-caching.mdx``). Without a per-call input, promote
    X, promote Y, roll back to X would replay the first move from the cache and leave the tag on Y.
    """
    ctr = (
        dag.container()
        .from_(PYTHON_IMAGE)
        .with_exec(
            ["sh", "-c", f"apt-get update -qq && apt-get install -y -qq --no-install-recommends '{SKOPEO}'"]
        )
        .with_env_variable("IMAGE", image)
        .with_env_variable("REPOSITORY", repository(image))
        .with_env_variable("TARGET", target)
        .with_env_variable("REGISTRY_USERNAME", username)
    )
    if password is not None:
        ctr = ctr.with_secret_variable("REGISTRY_PASSWORD", password)
    return ctr.with_env_variable(CALL_ENV, call).with_exec(["bash", "-c", MOVE_TAG])

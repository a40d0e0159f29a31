"""The local Docker engine: find the client, build a context directory, run and stop containers.

Debian's client (``/usr/bin/docker``) is preferred: it reaches the daemon's built-in BuildKit
without a buildx plugin, which ``RUN --mount=type=secret`` needs. pip settings of this machine
(``cert``, ``index-url``) are read the way pip reads them, so an image build behind a proxy
uses the same CA bundle and index as pip here. Both reach the build as BuildKit secrets: an
index URL may carry credentials, so it is never a build argument (those show in ``ps`` while
the build runs, and in the image history); the docker client reads it from its environment.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

CONTAINER_PORT = 8080
CA_SECRET = "ca-bundle"  # the Dockerfile's secret ids: mounted at /run/secrets/<id> for the install
INDEX_SECRET = "pip-index-url"
INDEX_ENV = "PIP_INDEX_URL"  # the docker client's variable holding the index URL secret


def docker_bin() -> str:
    """Return the docker client: Debian's (which has BuildKit via the daemon) when present."""
    debian = Path("/usr/bin/docker")
    return str(debian) if debian.exists() else (shutil.which("docker") or "docker")


def engine_available() -> bool:
    """Return True when a Docker engine answers."""
    try:
        done = subprocess.run([docker_bin(), "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def docker(*args: str, capture: bool = True) -> str:
    """Run a docker command; return its stdout, or raise naming the command and its last error line."""
    try:
        done = subprocess.run(
            [docker_bin(), *args],
            capture_output=capture,
            text=True,
            check=False,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
    except OSError as exc:
        raise PipelineError(f"cannot run docker ({exc}); run scripts/docker-engine.sh") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip().splitlines()
        raise PipelineError(f"docker {args[0]} failed: {detail[-1] if detail else 'no output'}")
    return (done.stdout or "").strip()


def pip_setting(name: str) -> str | None:
    """Return pip's setting ``name`` (e.g. ``cert``) as pip here would see it, or None.

    ``$PIP_<NAME>`` wins; otherwise the last of pip's config files that sets it in its
    ``[install]`` or ``[global]`` section (site-wide, then per-user, then ``$PIP_CONFIG_FILE``).
    """
    from_env = os.environ.get("PIP_" + name.upper().replace("-", "_"))
    if from_env:
        return from_env
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    home = Path.home()
    files = [
        *(Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(":") if d),
        Path("/etc/pip.conf"),
        home / ".pip" / "pip.conf",
        Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf",
    ]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    value = None
    for path in files:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path)
        except (OSError, configparser.Error):
            continue
        for section in ("global", "install"):
            if parser.has_option(section, name):
                value = parser.get(section, name).strip() or value
    return value


def start_service(tag: str, port: int = 0) -> tuple[str, str]:
    """Run ``tag`` detached on a loopback port (0: any free one); return ``(url, container_id)``."""
    publish = f"127.0.0.1:{port}:{CONTAINER_PORT}" if port else f"127.0.0.1::{CONTAINER_PORT}"
    container = docker("run", "-d", "--rm", "-p", publish, tag)
    mapped = docker("port", container, str(CONTAINER_PORT)).splitlines()[0]
    host_port = mapped.rsplit(":", 1)[1]
    return f"http://127.0.0.1:{host_port}", container


def stop_service(container: str, timeout: int = 10) -> None:
    """Stop a container started by :func:`start_service` (SIGTERM, then SIGKILL after ``timeout``)."""
    subprocess.run(
        [docker_bin(), "stop", "-t", str(timeout), container], capture_output=True, check=False, timeout=60
    )


def build(
    context: Path,
    tag: str,
    build_args: dict[str, str],
    ca_bundle: Path | None,
    index_url: str | None = None,
) -> dict[str, Any]:
    """Build ``context`` (a directory holding the Dockerfile) as ``tag``; return ``docker image inspect``.

    The build's own output streams to this process's stderr; see :func:`build_command` for how
    the CA bundle and the index URL reach it.
    """
    argv, env = build_command(context, tag, build_args, ca_bundle, index_url)
    done = subprocess.run(argv, env=env, check=False)
    if done.returncode != 0:
        raise PipelineError(
            f"docker build of {tag} failed (exit {done.returncode}); if the base image cannot be "
            "pulled here, pass --base-image or set ML_CICD_BASE_IMAGE"
        )
    info: dict[str, Any] = json.loads(docker("image", "inspect", tag))[0]
    return info


def build_command(
    context: Path,
    tag: str,
    build_args: dict[str, str],
    ca_bundle: Path | None,
    index_url: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Return the argv and the environment of the ``docker build`` of ``context``.

    A CA bundle is the BuildKit secret ``ca-bundle`` (a file); an index URL the secret
    ``pip-index-url``, which the client reads from ``$PIP_INDEX_URL`` in the returned environment,
    so the argv names only the variable and never holds the URL or its credentials.
    """
    argv = [docker_bin(), "build", "--progress=plain", "-t", tag]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    if ca_bundle is not None:
        argv += ["--secret", f"id={CA_SECRET},src={ca_bundle}"]
    if index_url:
        argv += ["--secret", f"id={INDEX_SECRET},env={INDEX_ENV}"]
        env[INDEX_ENV] = index_url
    return [*argv, str(context)], env


def default_base_image(dockerfile: Path) -> str:
    """Return the Dockerfile's default ``BASE_IMAGE``."""
    for line in dockerfile.read_text().splitlines():
        if line.startswith("ARG BASE_IMAGE="):
            return line.split("=", 1)[1].strip()
    raise PipelineError(f"{dockerfile}: no `ARG BASE_IMAGE=` default line")


def pull_error(image: str) -> str | None:
    """Return None when the engine has ``image`` or can pull it, else the pull's last error line."""
    if (
        subprocess.run([docker_bin(), "image", "inspect", image], capture_output=True, check=False).returncode
        == 0
    ):
        return None
    done = subprocess.run(
        [docker_bin(), "pull", "--quiet", image], capture_output=True, text=True, check=False
    )
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"docker pull exited {done.returncode}"

"""Build and run the serving image with a local Docker engine (the host twin of Dagger's build).

    python -m pipeline image build --out out            # out/model -> image, writes out/image.json
    python -m pipeline image run --out out              # start it on a loopback port, print URL and id
    python -m pipeline image stop CONTAINER_ID

The build context is assembled in a temp directory from exactly what the image needs
(Dockerfile, requirements-serve.txt, the ``model/`` package and the artefact), so it is
small and never picks up local files by accident. Base image: ``--base-image``, else
``$ML_CICD_BASE_IMAGE``, else the Dockerfile's pinned default. pip inside the build uses
what pip on this machine is configured with: the CA bundle (``--ca-bundle``, else pip's
``cert`` setting from ``$PIP_CERT`` or a pip config file) is passed as a BuildKit secret,
mounted for the install and never stored in a layer; an http(s) ``index-url`` becomes the
``PIP_INDEX_URL`` build argument (default: PyPI).
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from model.files import write_json_atomic
from pipeline.config import DEFAULT_CONFIG
from pipeline.errors import DataError, PipelineError

REPO = Path(__file__).resolve().parents[1]
IMAGE_FILE = "image.json"
CONTAINER_PORT = 8080
ARTEFACT_FILES = ("model.joblib", "metadata.json", "lineage.json", "metrics.json")
HEADLINE_METRICS = ("roc_auc", "f1", "accuracy", "rmse", "r2", "mae")


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


def _docker(*args: str, capture: bool = True) -> str:
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


def build(
    out: Path,
    tag: str | None = None,
    base_image: str | None = None,
    ca_bundle: Path | None = None,
    revision: str | None = None,
) -> dict[str, object]:
    """Build the serving image from ``out/model``; write and return ``out/image.json``."""
    model_dir = out / "model"
    metadata_path = model_dir / "metadata.json"
    if not metadata_path.is_file():
        raise DataError(f"{model_dir}: no trained model (run `python -m pipeline train` first)")
    if not engine_available():
        raise PipelineError("no Docker engine answers; run scripts/docker-engine.sh (or use Dagger)")
    metadata = json.loads(metadata_path.read_text())
    sha = str(metadata["model_sha256"])
    tag = tag or f"ml-cicd-model:{sha[:12]}"
    base_image = base_image or os.environ.get("ML_CICD_BASE_IMAGE") or None
    base_label = base_image or default_base_image()
    if ca_bundle is None:
        configured = pip_setting("cert")
        ca_bundle = Path(configured) if configured and Path(configured).is_file() else None
    elif not ca_bundle.is_file():
        raise DataError(f"--ca-bundle {ca_bundle}: no such file (expected a PEM CA bundle)")
    build_args = {
        "MODEL_DIR": "artefact",
        "REVISION": revision or metadata.get("git_commit") or "unknown",
        "CREATED": datetime.now(UTC).isoformat(timespec="seconds"),
        "SOURCE": _source_url(),
        "MODEL_VERSION": _version(model_dir) or sha[:12],
        "MODEL_SHA256": sha,
        "MODEL_METRICS": _headline(out / "metrics.json", model_dir / "metrics.json"),
    }
    if base_image:
        build_args["BASE_IMAGE"] = base_image
    index_url = pip_setting("index-url")
    if index_url and index_url.startswith(("http://", "https://")):
        build_args["PIP_INDEX_URL"] = index_url
    with tempfile.TemporaryDirectory(prefix="ml-cicd-image-") as tmp:
        context = Path(tmp)
        shutil.copy2(REPO / "Dockerfile", context / "Dockerfile")
        shutil.copy2(REPO / "requirements-serve.txt", context / "requirements-serve.txt")
        shutil.copytree(REPO / "model", context / "model", ignore=shutil.ignore_patterns("__pycache__"))
        (context / "artefact").mkdir()
        for name in ARTEFACT_FILES:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, context / "artefact" / name)
        argv = ["build", "--progress=plain", "-t", tag]
        for key, value in build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        if ca_bundle is not None:
            argv += ["--secret", f"id=ca-bundle,src={ca_bundle}"]
        print(f"building {tag} on {base_label}...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        done = subprocess.run(
            [docker_bin(), *argv, str(context)], env={**os.environ, "DOCKER_BUILDKIT": "1"}, check=False
        )
        if done.returncode != 0:
            raise PipelineError(
                f"docker build of {tag} failed (exit {done.returncode}); if the base image cannot be "
                "pulled here, pass --base-image or set ML_CICD_BASE_IMAGE"
            )
    info = json.loads(_docker("image", "inspect", tag))[0]
    result: dict[str, object] = {
        "tag": tag,
        "id": info["Id"],
        "size_bytes": int(info["Size"]),
        "base_image": base_label,
        "model_sha256": sha,
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    write_json_atomic(out / IMAGE_FILE, result)
    size_mb = int(info["Size"]) / 1e6
    print(f"built {tag}: {size_mb:.0f} MB in {result['build_seconds']} s", file=sys.stderr)
    return result


def default_base_image() -> str:
    """Return the Dockerfile's default ``BASE_IMAGE``."""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("ARG BASE_IMAGE="):
            return line.split("=", 1)[1].strip()
    raise PipelineError(f"{REPO / 'Dockerfile'}: no `ARG BASE_IMAGE=` default line")


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


def built_tag(out: Path) -> str:
    """Return the tag recorded by the last ``image build`` into ``out``."""
    path = out / IMAGE_FILE
    if not path.is_file():
        raise DataError(f"{path}: no image built (run `python -m pipeline image build` first)")
    return str(json.loads(path.read_text())["tag"])


def start_service(tag: str, port: int = 0) -> tuple[str, str]:
    """Run ``tag`` detached on a loopback port (0: any free one); return ``(url, container_id)``."""
    publish = f"127.0.0.1:{port}:{CONTAINER_PORT}" if port else f"127.0.0.1::{CONTAINER_PORT}"
    container = _docker("run", "-d", "--rm", "-p", publish, tag)
    mapped = _docker("port", container, str(CONTAINER_PORT)).splitlines()[0]
    host_port = mapped.rsplit(":", 1)[1]
    return f"http://127.0.0.1:{host_port}", container


def stop_service(container: str, timeout: int = 10) -> None:
    """Stop a container started by :func:`start_service` (SIGTERM, then SIGKILL after ``timeout``)."""
    subprocess.run(
        [docker_bin(), "stop", "-t", str(timeout), container], capture_output=True, check=False, timeout=60
    )


def _source_url() -> str:
    """Return the repository URL for the source label: GitHub Actions' variables, else git's origin."""
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return f"{server}/{repository}"
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    url = done.stdout.strip() if done.returncode == 0 else ""
    parts = urlsplit(url)
    if parts.username or parts.password:  # never put https://user:token@host/... into a label
        url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url or "unknown"


def _version(model_dir: Path) -> str | None:
    lineage = model_dir / "lineage.json"
    if lineage.is_file():
        version = json.loads(lineage.read_text()).get("version")
        return None if version is None else str(version)
    return None


def _headline(*candidates: Path) -> str:
    """Return a few overall metrics of the first existing metrics file as ``name=value,...``."""
    metrics_path = next((path for path in candidates if path.is_file()), None)
    if metrics_path is None:
        return ""
    overall = json.loads(metrics_path.read_text()).get("overall") or {}
    return ",".join(f"{k}={overall[k]:.4f}" for k in HEADLINE_METRICS if overall.get(k) is not None)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``image`` subcommands."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build_p = actions.add_parser("build", help="build the serving image from OUT/model")
    build_p.add_argument("--config", default=DEFAULT_CONFIG, help=argparse.SUPPRESS)  # the DAG passes it
    build_p.add_argument("--out", default="out", help="artefact directory holding model/ (default out)")
    build_p.add_argument("--tag", help="image tag (default ml-cicd-model:<model sha256[:12]>)")
    build_p.add_argument(
        "--base-image", help="base image (default $ML_CICD_BASE_IMAGE, else the Dockerfile's)"
    )
    build_p.add_argument(
        "--ca-bundle", type=Path, help="CA bundle for pip, as a build secret (default $PIP_CERT)"
    )
    build_p.add_argument("--revision", help="git commit for the revision label (default: the model's)")
    run_p = actions.add_parser("run", help="start the built image on a loopback port")
    run_p.add_argument("--out", default="out", help="artefact directory holding image.json (default out)")
    run_p.add_argument("--port", type=int, default=0, help="host port on 127.0.0.1 (default: a free one)")
    stop_p = actions.add_parser("stop", help="stop a container started by `image run`")
    stop_p.add_argument("container", help="container id")


def run(args: argparse.Namespace) -> int:
    """Run one ``image`` action."""
    if args.action == "build":
        build(Path(args.out), args.tag, args.base_image, args.ca_bundle, args.revision)
    elif args.action == "run":
        tag = built_tag(Path(args.out))
        if not engine_available():
            raise PipelineError("no Docker engine answers; run scripts/docker-engine.sh")
        url, container = start_service(tag, args.port)
        print(json.dumps({"url": url, "container": container}))
    else:
        stop_service(args.container)
    return 0

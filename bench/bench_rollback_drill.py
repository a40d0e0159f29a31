"""Rollback drill: serve v1 as production, promote and serve v2, roll back, serve v1 again.

    bash scripts/docker-engine.sh
    ML_CICD_BASE_IMAGE=local/python:3.13-trixie .venv/bin/python bench/bench_rollback_drill.py

Trains two different models (v1: C=1.0, v2: C=0.05) into a temp directory registry and
runs each registry step as an operator would, through ``python -m pipeline registry``.
Serving production means: export the ``production`` alias, start the image tagged with
that model's sha256 under a name of the drill's own (``ml-cicd-drill-<run>:<sha[:12]>``, never
a tag a user may have built; built when the version is first served, from the layer cache),
and wait until ``/metadata`` reports the exported model's sha256. At the end the drill removes
its containers and images and checks that it left no dangling image behind.

What is timed: from the start of ``registry rollback production`` to the first
``/metadata`` answer whose ``model_sha256`` is v1's, i.e. the alias move, the export of
the rolled-back version, stopping v2 and starting v1's image (which still exists, so no
build: the rollback restarts it) up to its first correct answer. The printed breakdown shows where the time goes.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.io import docker  # noqa: E402
from pipeline.steps import image  # noqa: E402
from tests.conftest import repo_config_text  # noqa: E402


def _cli(*args: str) -> None:
    """Run ``python -m pipeline ARGS``; exit with its stderr when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"`pipeline {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")


def _served_sha(url: str) -> str | None:
    """Return the model sha256 that ``url/metadata`` reports, or None when it does not answer."""
    parsed = urlparse(url)
    try:
        connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=2)
        connection.request("GET", "/metadata")
        response = connection.getresponse()
        body = response.read()
    except OSError:
        return None
    return json.loads(body).get("model_sha256") if response.status == 200 else None


class Drill:
    """A temp registry with two trained versions and the production service."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "v1.toml"
        self.serving = root / "serving"  # laid out as OUT/model for image.build
        self.container: str | None = None
        self.repository = f"ml-cicd-drill-{uuid.uuid4().hex[:8]}"
        self.built: list[str] = []

    def registry(self, *args: str) -> None:
        """Run one registry command against the drill's registry."""
        _cli("registry", *args, "--config", str(self.config))

    def train(self, version: int, c: str) -> str:
        """Train, gate and register one version; return its model sha256."""
        text = repo_config_text(self.root)
        config = self.root / f"v{version}.toml"
        config.write_text(text.replace("C = 1.0", f"C = {c}"))
        out = self.root / f"out{version}"
        for step in ("validate", "train", "evaluate"):
            _cli(step, "--config", str(config), "--out", str(out))
        _cli("gate", "--config", str(config), "--out", str(out), "--champion", str(self.root / "none"))
        self.registry("register", str(out / "model"), "--gates", str(out / "gates.json"))
        return str(json.loads((out / "model" / "metadata.json").read_text())["model_sha256"])

    def export_production(self) -> str:
        """Export the production alias; return its model sha256."""
        self.registry("export", "production", "--to", str(self.serving / "model"))
        return str(json.loads((self.serving / "model" / "metadata.json").read_text())["model_sha256"])

    def stop(self) -> None:
        """Stop the production container, if any."""
        if self.container is not None:
            docker.stop_service(self.container)
            self.container = None

    def clean(self) -> int:
        """Remove the drill's images; return how many."""
        for tag in self.built:
            subprocess.run([docker.docker_bin(), "rmi", "-f", tag], capture_output=True, check=False)
        return len(self.built)

    def start(self, sha: str, build: bool = True) -> str:
        """Start the image of model ``sha`` and wait until it serves that model.

        The image is built first (from the layer cache when nothing changed), except with
        ``build=False``: a rollback restarts the image that served the version before.
        """
        tag = f"{self.repository}:{sha[:12]}"
        if build:
            image.build(self.serving, tag=tag, base_image=os.environ.get("ML_CICD_BASE_IMAGE"))
            self.built.append(tag)
        url, self.container = docker.start_service(tag)
        deadline = time.monotonic() + 120
        while _served_sha(url) != sha:
            if time.monotonic() > deadline:
                sys.exit(f"{tag} did not serve {sha[:12]} within 120 s")
            time.sleep(0.02)
        return url


def _dangling() -> set[str]:
    """Return the ids of dangling images (untagged, unused) on the engine."""
    done = subprocess.run(
        [docker.docker_bin(), "images", "-q", "--filter", "dangling=true"],
        capture_output=True,
        text=True,
        check=False,
    )
    return set(done.stdout.split())


def main() -> int:
    """Run the drill and print its timings."""
    if not docker.engine_available():
        sys.exit("no Docker engine answers: run scripts/docker-engine.sh")
    dangling_before = _dangling()
    with tempfile.TemporaryDirectory() as tmp:
        drill = Drill(Path(tmp))
        v1, v2 = drill.train(1, "1.0"), drill.train(2, "0.05")
        if v1 == v2:
            sys.exit("v1 and v2 are the same model; the drill needs two different ones")
        try:
            drill.registry("promote", "1", "--to", "production", "--approve")
            url = drill.start(drill.export_production())
            print(f"v1 ({v1[:12]}) serves production at {url}")

            drill.registry("promote", "2", "--to", "production", "--approve")
            exported = drill.export_production()
            drill.stop()
            url = drill.start(exported)
            print(f"v2 ({v2[:12]}) serves production at {url}")

            marks = [time.perf_counter()]
            drill.registry("rollback", "production")
            marks.append(time.perf_counter())
            exported = drill.export_production()
            marks.append(time.perf_counter())
            drill.stop()
            marks.append(time.perf_counter())
            url = drill.start(exported, build=False)
            marks.append(time.perf_counter())
        finally:
            drill.stop()
            removed = drill.clean()
    left = _dangling() - dangling_before
    print(f"cleaned up: {removed} drill images removed; dangling images left by the drill: {len(left)}")
    if left:
        print(f"the drill left dangling images: {sorted(left)}", file=sys.stderr)
        return 1
    if exported != v1:
        print(f"rollback exported {exported[:12]}, expected v1 {v1[:12]}", file=sys.stderr)
        return 1
    rollback, export, stop, start = (b - a for a, b in pairwise(marks))
    print(f"v1 ({v1[:12]}) serves production again at {url}")
    print(
        f"rollback command -> first correct response from v1: {marks[-1] - marks[0]:.2f} s "
        f"(alias move {rollback:.2f} s, export {export:.2f} s, stop v2 {stop:.2f} s, "
        f"start v1's existing image to first correct /metadata {start:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

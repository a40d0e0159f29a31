"""The README's commands, run as written, on the files a user's clone has.

The first screen's host main command runs from a fresh copy of the repository (what ``git clone``
gives: the tracked files, and the new ones not ignored); the test command is what ``.ci/run``
itself calls. The hand-written ``docker build`` of "Serving" runs on the same copy with a trained
model, adding only the stand-in base this machine needs, as the README documents.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.io import docker as engine
from tests.conftest import REPO

STAND_IN = "local/python:3.13-trixie"


def _readme() -> str:
    return (REPO / "README.md").read_text()


def first_screen() -> list[str]:
    """Return the commands of the README's first code block (comments dropped)."""
    block = _readme().split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def fresh_copy(root: Path) -> Path:
    """Return a ``git clone`` of this repository at ``root``, with the work tree's changes not yet committed.

    In CI (a fresh clone of main) there are none; while developing, the clone then holds what the next
    commit would (tracked files as they are, new files not ignored, deleted ones gone).
    """
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a work tree to clone the repository")

    def listed(*args: str) -> list[str]:
        out = subprocess.run([git, *args, "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
        return [name for name in out.split("\0") if name]

    subprocess.run([git, "clone", "--quiet", str(REPO), str(root)], check=True)
    for name in listed("ls-files", "--cached", "--others", "--exclude-standard"):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    for name in listed("ls-files", "--deleted"):
        (root / name).unlink(missing_ok=True)
    return root


def test_the_first_screen_gives_the_dagger_host_and_test_commands() -> None:
    dagger, host, tests = first_screen()
    assert dagger == "dagger call full-pipeline --source=."
    assert host == "bash scripts/setup.sh && .venv/bin/python -m pipeline run --out out"
    assert tests == "bash scripts/test.sh"
    assert tests in (REPO / ".ci" / "run").read_text(), ".ci/run must call the README's test command"


@pytest.mark.slow
def test_the_readme_host_main_command_passes_on_a_fresh_clone(tmp_path: Path) -> None:
    # given a fresh copy of the repository and a shell like a user's (no venv or run of ours active)
    clone = fresh_copy(tmp_path / "clone")
    host = first_screen()[1]
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "ML_CICD_RUN"}}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if "/.venv/" not in p)
    # when the command runs exactly as written
    done = subprocess.run(
        ["bash", "-c", host], cwd=clone, env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    # then it exits 0, and the report says so for every step that ran
    assert done.returncode == 0, f"`{host}` exited {done.returncode}:\n{done.stderr[-4000:]}"
    report = (clone / "out" / "report.md").read_text()
    assert report.startswith("# Model report: PASSED"), report[:1500]
    assert "test ok" in report and "lint ok" in report, report[:1500]


@pytest.mark.docker
def test_the_readme_docker_build_works_as_written(tmp_path: Path) -> None:
    # given a Docker engine, a fresh copy and a model trained into its out/model
    if not engine.engine_available():
        if os.environ.get("ML_CICD_REQUIRE_DOCKER") == "1":
            pytest.fail("ML_CICD_REQUIRE_DOCKER=1 but no Docker engine answers")
        pytest.skip("no Docker engine: run scripts/docker-engine.sh")
    clone = fresh_copy(tmp_path / "clone")
    assert main(["train", "--config", str(clone / "ml-cicd.toml"), "--out", str(clone / "out")]) == 0
    # when the README's command runs, with the stand-in base the README documents for this machine
    command = re.search(r"^(docker build --build-arg MODEL_DIR=out/model .*) \.$", _readme(), re.M)
    assert command is not None, "the README's serving section has no `docker build ... .` line"
    assert f"--build-arg BASE_IMAGE={STAND_IN}" in _readme(), "the README must document the stand-in"
    tag = f"ml-cicd-readme-{os.getpid()}"
    argv = [*command.group(1).split(), "--build-arg", f"BASE_IMAGE={STAND_IN}", "."]
    argv = [tag if arg == "churn-model" else arg for arg in argv]
    secret = ["--secret", "id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt"]  # this machine's proxy
    built = subprocess.run(
        [engine.docker_bin(), "build", *secret, *argv[2:]],
        cwd=clone,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        # then the build succeeds from the real context (its .dockerignore applied), with the model inside
        assert built.returncode == 0, built.stderr[-3000:]
        listed = subprocess.run(
            [engine.docker_bin(), "run", "--rm", "--entrypoint", "ls", tag, "/app/model", "/app/src/model"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "metadata.json" in listed and "app.py" in listed, listed
    finally:
        subprocess.run([engine.docker_bin(), "rmi", "-f", tag], capture_output=True, check=False)

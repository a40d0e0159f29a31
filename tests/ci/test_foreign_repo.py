"""ml-cicd installed from a wheel into a fresh venv, run in a repository laid out as another team's.

The wheel is built from this checkout (``pip wheel --no-deps``) and installed with ``--no-index``
into a new venv whose only other packages are the pinned ones of this checkout's venv, seen
through a ``.pth`` file: pip checks the wheel's dependency ranges against them and downloads
nothing. The repository (``tests/conftest.py``'s ``foreign_repo``) holds no file of ml-cicd's and
has top-level ``model/`` and ``pipeline/`` packages of its own (importing its ``pipeline`` raises).
The README's "Use it in your repository" pip commands run as written there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

from pipeline.render.workflow import CHECKOUT, DAGGER_ACTION, DAGGER_VERSION, WORKFLOW
from tests.conftest import FOREIGN_TABLE, REPO, foreign_repo

pytestmark = pytest.mark.slow
STAND_IN = "local/python:3.13-trixie"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the bin directory of a fresh venv with ml-cicd installed from a wheel of this checkout."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)]
    done = subprocess.run(build, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = wheels.glob("ml_cicd-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    (purelib / "pinned-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = env_dir / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return env_dir / "bin"


def _env(bin_dir: Path) -> dict[str, str]:
    """Return a user's environment with the venv first on PATH (as after `source .venv/bin/activate`)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ML_CICD_RUN")}
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    if shutil.which("docker") and "ML_CICD_BASE_IMAGE" not in env:
        env["ML_CICD_BASE_IMAGE"] = STAND_IN  # no Docker Hub on these machines (scripts/docker-engine.sh)
    return env


def _shell(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def _readme_pip_block() -> list[str]:
    """Return the lines of the first bash block under "Use it in your repository" of the README."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Use it in your repository", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None, "no bash block under 'Use it in your repository'"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readmes_pip_commands_onboard_and_run_another_teams_repository(
    installed: Path, tmp_path: Path
) -> None:
    # given another team's repository and a user's shell with ml-cicd installed from the wheel
    team = foreign_repo(tmp_path / "clinic")
    env = _env(installed)
    lines = _readme_pip_block()
    assert lines[0].startswith("pip install "), lines  # done by the fixture: the same wheel, not the network
    # when the README's commands run there, as written
    for line in lines[1:]:
        assert line.startswith("ml-cicd "), line
        done = _shell(line, team, env)
        # then each passes
        assert done.returncode == 0, f"`{line}` exited {done.returncode}:\n{done.stderr[-4000:]}"
    # and the report names the team's table, the team's test ran, and nothing of ml-cicd's was copied in
    report = (team / "out" / "report.md").read_text()
    assert f"from {Path(FOREIGN_TABLE).name}" in report
    outcomes = json.loads((team / "out" / "run.json").read_text())
    assert {s["name"]: s["status"] for s in outcomes["steps"]}["test"] == "ok"
    test_log = (team / "out" / "logs" / "test.log").read_text()
    assert "1 passed" in test_log and "the project has tests/" in test_log
    assert not (team / "Dockerfile").exists() and not (team / "requirements.txt").exists()
    assert (team / ".gitignore").read_text().count("/out/") == 1
    # and ml-cicd --version names the release of VERSION
    shown = _shell("ml-cicd --version", team, env).stdout.strip()
    assert shown == f"ml-cicd {(REPO / 'VERSION').read_text().strip()}"


def test_started_elsewhere_everything_lands_in_the_project_and_the_teams_packages_are_not_imported(
    installed: Path, tmp_path: Path
) -> None:
    # given the team's repository, onboarded, and a shell in another directory
    team = foreign_repo(tmp_path / "clinic")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _env(installed)
    init = _shell(
        f"ml-cicd init {team / FOREIGN_TABLE} --target diagnosis --config {team}/ml-cicd.toml", elsewhere, env
    )
    assert init.returncode == 0, init.stderr
    # when the pipeline runs from there on the team's config
    done = _shell(f"ml-cicd run --config {team}/ml-cicd.toml --image never", elsewhere, env)
    # then it passes, its outputs and step cache are beside the config, and nothing is left where it started
    assert done.returncode == 0, done.stderr[-4000:]
    assert (team / "out" / "report.md").is_file() and (team / ".cache" / "ml-cicd").is_dir()
    assert sorted(p.name for p in elsewhere.iterdir()) == []
    # and the config names the table relative to itself
    assert 'path = "data/clinic_biopsies.csv"' in (team / "ml-cicd.toml").read_text()
    # and the steps imported ml-cicd's own pipeline package (the team's raises on import)
    where = _shell(
        "python -P -c 'import pipeline, model; print(pipeline.__file__, model.__file__)'", team, env
    )
    assert where.returncode == 0 and "site-packages" in where.stdout and str(team) not in where.stdout


def test_init_writes_a_workflow_calling_the_pinned_module_that_actionlint_accepts(
    installed: Path, tmp_path: Path
) -> None:
    # given the team's repository and a module address pinned to a release
    team = foreign_repo(tmp_path / "clinic")
    env = _env(installed)
    module = "github.com/example/ml-cicd@v0.2.0"
    # when init is asked for the GitHub workflow
    done = _shell(f"ml-cicd init {FOREIGN_TABLE} --target diagnosis --module {module}", team, env)
    assert done.returncode == 0, done.stderr
    workflow = team / WORKFLOW
    text = workflow.read_text()
    # then the workflow calls that module with the config, on this repository's own pins
    job = yaml.safe_load(text)["jobs"]["pipeline"]
    uses = [step["uses"] for step in job["steps"]]
    assert uses == [CHECKOUT.split(" #")[0], DAGGER_ACTION.split(" #")[0]]
    dagger = job["steps"][1]["with"]
    assert dagger["module"] == module and dagger["version"] == DAGGER_VERSION
    assert dagger["call"].startswith("--config=ml-cicd.toml full-pipeline --source=.")
    ci = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    assert CHECKOUT in ci and DAGGER_ACTION in ci and f'version: "{DAGGER_VERSION}"' in ci
    # and actionlint accepts it
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    linted = subprocess.run([actionlint, str(workflow)], capture_output=True, text=True, check=False)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    # and a second init neither overwrites it nor the config (exit 2, one line), nor adds .gitignore lines twice
    again = _shell(f"ml-cicd init {FOREIGN_TABLE} --target diagnosis --module {module}", team, env)
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0, again.stderr
    assert workflow.read_text() == text


def test_a_workflow_asked_for_without_a_known_module_is_refused_before_anything_is_written(
    installed: Path, tmp_path: Path
) -> None:
    # given ml-cicd installed from a wheel file (pip recorded no repository to call)
    team = foreign_repo(tmp_path / "clinic")
    env = _env(installed)
    # when init is asked for the GitHub workflow without --module
    done = _shell(f"ml-cicd init {FOREIGN_TABLE} --target diagnosis --ci github", team, env)
    # then exit 2, one line saying what to pass, and nothing written
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --ci github: cannot tell which ml-cicd module the workflow should call (this ml-cicd was not "
        "installed from a repository); pass --module github.com/OWNER/REPO@TAG, or --ci none"
    ]
    assert not (team / "ml-cicd.toml").exists() and not (team / ".github").exists()
    assert not (team / ".gitignore").exists()

"""A promote or rollback killed at any of its writes lands whole or not at all, never later, and a retry lands once.

The CLI runs in a subprocess that dies (``os._exit``, as SIGKILL: no cleanup, no flush) just before
its Nth durable file operation (``os.replace``, ``os.fsync``, ``os.unlink``, ``os.rename``), for every
N the command performs. After each kill the registry must read consistently (the alias is on the old
or the new version, nothing in between), and running the same command again must leave the alias
moved exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, fit_artefact

KILLED = 137
# Kill the CLI just before its Nth durable file operation.
HARNESS = """
import os, sys
limit, count = int(sys.argv[1]), [0]
def hooked(real):
    def call(*args, **kwargs):
        count[0] += 1
        if count[0] == limit:
            os._exit(137)
        return real(*args, **kwargs)
    return call
for name in ("replace", "fsync", "unlink", "rename"):
    setattr(os, name, hooked(getattr(os, name)))
from pipeline.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}


def registry_cli(registry: Path, *argv: str, kill_at: int | None = None) -> subprocess.CompletedProcess[str]:
    command = [*argv[:1], "--registry", str(registry), *argv[1:]]
    prefix = [sys.executable, "-c", HARNESS, str(kill_at)] if kill_at else [sys.executable, "-m", "pipeline"]
    return subprocess.run(
        [*prefix, "registry", *command], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120
    )


def state(registry: Path, alias: str) -> tuple[int | None, list[dict[str, Any]]]:
    """Return where ``alias`` points and its history, as readers see them (failing on any read error)."""
    listed = registry_cli(registry, "list", "--json")
    assert listed.returncode == 0, f"the registry does not read after the kill: {listed.stderr}"
    aliases = json.loads(listed.stdout)["aliases"]
    history = registry_cli(registry, "history", alias, "--json")
    assert history.returncode == 0, history.stderr
    return aliases.get(alias), json.loads(history.stdout)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("models")
    return [fit_artefact(root / f"m{seed}", seed) for seed in (1, 2, 3)]


def fresh(root: Path, models: list[Path], production: list[int]) -> Path:
    """Return a registry holding the three models, production moved through ``production`` in order."""
    registry = root / "registry"
    for model in models:
        done = registry_cli(registry, "register", str(model), "--gates", str(model.parent / "gates.json"))
        assert done.returncode == 0, done.stderr
    for version in production:
        done = registry_cli(registry, "promote", str(version), "--to", "production", "--approve")
        assert done.returncode == 0, done.stderr
    return registry


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setup", "command", "before", "after", "action"),
    [
        ([1], ("promote", "2", "--to", "production", "--approve"), 1, 2, "promote"),
        ([1, 2, 3], ("rollback", "production"), 3, 2, "rollback"),
    ],
    ids=["promote", "rollback"],
)
def test_a_kill_at_every_write_leaves_a_consistent_registry_and_a_retry_lands_once(
    tmp_path: Path,
    models: list[Path],
    setup: list[int],
    command: tuple[str, ...],
    before: int,
    after: int,
    action: str,
) -> None:
    kills = 0
    for kill_at in range(1, 40):
        # given a registry with production at ``before``
        registry = fresh(tmp_path / f"k{kill_at}", models, setup)
        moves_before = len(state(registry, "production")[1])
        # when the command dies just before its kill_at-th durable write
        killed = registry_cli(registry, *command, kill_at=kill_at)
        if killed.returncode != KILLED:
            assert killed.returncode == 0, killed.stderr
            break  # the command finished before reaching that many writes: every write was covered
        kills += 1
        # then the registry reads consistently: the alias is on the old or the new version
        target, history = state(registry, "production")
        assert target in (before, after), f"kill at write {kill_at}: production at {target}"
        assert target == (history[-1]["to"] if history else None), f"kill at write {kill_at}: view vs history"
        # and the same command run again leaves it moved exactly once
        retried = registry_cli(registry, *command)
        assert retried.returncode == 0, f"kill at write {kill_at}: retry failed: {retried.stderr}"
        target, history = state(registry, "production")
        moves = [e for e in history[moves_before:] if e["action"] == action]
        assert target == after and len(moves) == 1, (
            f"kill at write {kill_at}: production at {target} after the retry, {len(moves)} {action}(s): {moves}"
        )
    assert kills >= 4, f"only {kills} kill points were reached: the harness is not counting the writes"

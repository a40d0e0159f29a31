"""The registry store under concurrent and killed writers: distinct complete versions, nothing partial."""

from __future__ import annotations

import fcntl
import json
import signal
import time
from pathlib import Path

from pipeline.io.registry import Registry
from tests.conftest import MODELS, Cli, register, subprocess_register


def test_eight_concurrent_writers_get_eight_distinct_complete_versions(
    registry: Path, artefacts: list[Path]
) -> None:
    # given eight different model artefacts
    # when eight processes register them at the same time
    processes = [subprocess_register(registry, model) for model in artefacts]
    results = [(p.wait(timeout=120), p.communicate()) for p in processes]
    # then every process succeeds and each model has its own, complete version
    for code, (_, err) in results:
        assert code == 0, f"a concurrent register failed with {code}: {err}"
    reg = Registry(registry)
    assert reg.numbers() == list(range(1, MODELS + 1)), f"versions lost or shared: {reg.numbers()}"
    shas = {reg.lineage(v).model_sha256 for v in reg.numbers()}
    expected = {json.loads((m / "metadata.json").read_text())["model_sha256"] for m in artefacts}
    assert shas == expected, "some model was registered twice or not at all"
    for version in reg.numbers():
        reg.verify(version)  # raises if any file is partial
        assert (reg.path(version) / "MODEL_CARD.md").is_file(), f"v{version} has no model card"
    assert not any((registry / ".staging").glob("stage-*/")), "staging directories were left behind"


def test_writer_killed_mid_registration_leaves_no_partial_version(
    cli: Cli, registry: Path, artefacts: list[Path]
) -> None:
    # given a writer that has staged its files and waits for the registry lock, which we hold
    registry.mkdir()
    with (registry / ".lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        writer = subprocess_register(registry, artefacts[2])
        deadline = time.monotonic() + 60
        while not list((registry / ".staging").glob("stage-*/model.joblib")):
            assert writer.poll() is None, f"writer ended early: {writer.communicate()}"
            assert time.monotonic() < deadline, "writer never staged its files"
            time.sleep(0.05)
        time.sleep(0.2)  # let it reach the lock
        # when it is killed with SIGKILL
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    # then the registry is readable, shows no version, and the next registration works
    code, out, err = cli("list")
    assert code == 0, f"list failed after a killed writer: {err}"
    assert "no versions" in out, f"a partial version is visible: {out!r}"
    assert Registry(registry).numbers() == []
    assert register(cli, artefacts[3]) == 1, "the next registration should take version 1"
    assert register(cli, artefacts[2]) == 2, "the killed writer's model can be registered afterwards"
    assert not any((registry / ".staging").iterdir()), (
        "the dead writer's staging directory was not cleaned up"
    )

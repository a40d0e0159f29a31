"""Runs sharing one --out and one step cache: one run at a time per --out, and no entry ever swapped.

The probe that found the bug: two ``run``s with different configs on one --out and cache dir, at
once; config A's ``train`` entry could hold config B's model, and every later A run said
``cached`` and passed with it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.io.shipped import DOCKERFILE, SERVE_REQUIREMENTS, VERSION
from pipeline.runner.processes import LOCK_FILE
from tests.conftest import REPO, Project
from tests.runner.test_signals import start_runner

PAIRS = 10


def test_a_second_run_on_the_same_out_waits_for_the_first_saying_so(tmp_path: Path) -> None:
    # given --out locked by a run in progress (here: the test holds the lock)
    out = tmp_path / "out"
    out.mkdir()
    marker = tmp_path / "ran"
    holder = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        # when a second run starts on it
        runner = start_runner(tmp_path, "import sys; open(sys.argv[1], 'w').write('ran')", str(marker))
        time.sleep(1.5)

        # then it waits, says so once, and has not touched --out
        err = (tmp_path / "runner.err").read_text()
        assert runner.poll() is None, f"the second run did not wait:\n{err}"
        assert not marker.exists(), "the second run's step ran while another run held --out"
        assert err.count("run: waiting for") == 1 and str(out / LOCK_FILE) in err, err
        assert not (out / "run.json").exists(), "the waiting run wrote into --out"
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)

    # and runs once the first ends
    assert runner.wait(timeout=60) == 0, (tmp_path / "runner.err").read_text()
    assert marker.read_text() == "ran"


def snapshot(root: Path) -> Path:
    """Copy ml-cicd's code and shipped files to ``root``: edits to the checkout meanwhile change no key."""
    for name in ("pipeline", "model", DOCKERFILE, VERSION, *SERVE_REQUIREMENTS):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy2(source, root / name)
    return root


def start_run(code: Path, project: Project, out: Path, cache: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m pipeline run`` (no lint, test or image) of ``project`` in ``code``; stderr to ``log``."""
    argv = ["run", "--config", str(project.config), "--out", str(out), "--cache-dir", str(cache)]
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline", *argv, "--skip", "lint,test", "--image", "never"],
            cwd=code,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def model_of(out: Path) -> tuple[str, str]:
    """Return the model in ``out``: its file's sha256 and the hash of the config it was trained with."""
    metadata = json.loads((out / "model" / "metadata.json").read_text())
    return metadata["model_sha256"], metadata["config_sha256"]


@pytest.mark.slow
def test_the_cache_swap_pair_run_10_times_never_reuses_a_wrong_entry(
    make_project: Callable[..., Project], tmp_path: Path
) -> None:
    # given configs A and B whose models differ, and each one's own model (trained alone)
    code = snapshot(tmp_path / "code")
    a = make_project(name="a", rows=600)
    b = make_project(name="b", rows=600, config=lambda c: c["model"]["params"].update(C=0.3))
    expected: dict[str, tuple[str, str]] = {}
    for name, project in {"a": a, "b": b}.items():
        alone = tmp_path / f"alone-{name}"
        argv = ["train", "--config", str(project.config), "--out", str(alone)]
        subprocess.run([sys.executable, "-m", "pipeline", *argv], cwd=code, check=True, capture_output=True)
        expected[name] = model_of(alone)
    assert expected["a"] != expected["b"], "the two configs must give different models"
    out, cache, logs = tmp_path / "shared" / "out", tmp_path / "shared" / "cache", tmp_path / "logs"
    logs.mkdir()

    wrong, restored = [], 0
    for pair in range(PAIRS):
        # when A and B run at once on one --out and a cold cache (who starts first alternates)
        shutil.rmtree(cache, ignore_errors=True)
        order = [("a", a), ("b", b)] if pair % 2 == 0 else [("b", b), ("a", a)]
        started = [(name, start_run(code, p, out, cache, logs / f"{pair}-{name}.err")) for name, p in order]
        errs = {}
        for name, process in started:
            code_ = process.wait(timeout=600)
            errs[name] = (logs / f"{pair}-{name}.err").read_text()
            assert code_ == 0, f"pair {pair}: run {name} failed (exit {code_}):\n{errs[name]}"
        assert sum("run: waiting for" in err for err in errs.values()) == 1, f"pair {pair}: no run waited"

        # and A runs again, from the cache
        again = start_run(code, a, out, cache, logs / f"{pair}-a-again.err")
        assert again.wait(timeout=600) == 0, (logs / f"{pair}-a-again.err").read_text()
        err = " ".join((logs / f"{pair}-a-again.err").read_text().split())
        restored += "cached train" in err
        if model_of(out) != expected["a"]:
            wrong.append(pair)

    # then every cached restore for A gave A's model
    print(
        f"{PAIRS} pairs: A's train restored from the cache {restored} times, wrong model {len(wrong)} times"
    )
    assert not wrong, f"config A's run restored another model after pairs {wrong}"
    assert restored == PAIRS, f"A's train was restored from the cache only {restored} of {PAIRS} times"

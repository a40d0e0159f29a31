"""Stopping the host runner stops its steps: SIGTERM, SIGINT and SIGKILL of the runner alone.

The runner runs as a process of its own (``DRIVER``: ``Runner.execute`` on a one-step table); its
step starts a child of its own, writes both pids to a file, and sleeps a minute. The test then
signals the runner only, as a CI cancel or a terminal would, and looks for the step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_CONFIG, REPO

DRIVER = """
import signal, sys
from pathlib import Path
from pipeline.config import load_config
from pipeline.dag import Step
from pipeline.runner.scheduler import Runner

# as at a terminal, even when the tests were started in the background (SIGINT ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
config, out, code = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
runner = Runner(load_config(config), config, out, out / "cache", use_cache=False, skip=set(), engine=False)
sys.exit(runner.execute((Step("long", (("python", "-c", code, *sys.argv[4:]),)),)))
"""

LONG_STEP = """
import os, subprocess, sys, time
child = subprocess.Popen(["sleep", "60"])
with open(sys.argv[1] + ".tmp", "w") as handle:
    handle.write(f"{os.getpid()} {child.pid}")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
"""


def start_runner(tmp_path: Path, step_code: str, *step_args: str) -> subprocess.Popen[bytes]:
    """Start ``DRIVER`` (a runner of one step) on ``tmp_path/out``; its stderr goes to ``tmp_path/runner.err``."""
    with (tmp_path / "runner.err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(DEFAULT_CONFIG), str(tmp_path / "out"), step_code, *step_args],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def alive(pid: int) -> bool:
    """Return whether ``pid`` runs (a zombie, ended but not reaped by an init that never reaps, does not)."""
    if Path("/proc/self/stat").exists():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state not in {"Z", "X"}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_for_pids(path: Path, runner: subprocess.Popen[bytes], seconds: float = 60) -> tuple[int, int]:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert runner.poll() is None, f"the runner ended (exit {runner.returncode}) before its step started"
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    step, child = path.read_text().split()
    return int(step), int(child)


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"]
)
def test_killing_the_runner_stops_its_running_step(tmp_path: Path, signum: signal.Signals) -> None:
    if signum == signal.SIGKILL and not sys.platform.startswith("linux"):
        pytest.skip("only Linux has a parent-death signal; elsewhere a step outlives a SIGKILLed runner")
    # given a runner whose step (and the step's own child) is running
    runner = start_runner(tmp_path, LONG_STEP, str(tmp_path / "pids"))
    step = child = None
    try:
        step, child = wait_for_pids(tmp_path / "pids", runner)

        # when the runner alone gets the signal
        runner.send_signal(signum)
        code = runner.wait(timeout=30)

        # then the step is gone within seconds
        err = (tmp_path / "runner.err").read_text()
        assert gone_within(step, 5), f"the step (pid {step}) still runs after the runner got {signum.name}"
        if signum != signal.SIGKILL:
            # a stop it can handle: the step's whole process group goes, and the runner says so
            assert gone_within(child, 5), f"the step's child (pid {child}) outlived the {signum.name} stop"
            assert code == 128 + signum, (
                f"expected exit {128 + signum} after {signum.name}, got {code}:\n{err}"
            )
            assert f"error: run stopped by {signum.name}" in err and "steps stopped: long" in err, err
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for pid in (step, child):  # after SIGKILL the step's own child is orphaned (module docstring)
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_runner_started_with_sigint_ignored_keeps_ignoring_it(tmp_path: Path) -> None:
    # given a runner that finds SIGINT ignored when it starts (as a shell's background job does)
    code = DRIVER.replace(
        "signal.signal(signal.SIGINT, signal.default_int_handler)",
        "signal.signal(signal.SIGINT, signal.SIG_IGN)",
    )
    with (tmp_path / "runner.err").open("wb") as err:
        runner = subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                str(DEFAULT_CONFIG),
                str(tmp_path / "out"),
                LONG_STEP,
                str(tmp_path / "p"),
            ],
            cwd=REPO,
            stderr=err,
        )
    step = child = None
    try:
        step, child = wait_for_pids(tmp_path / "p", runner)

        # when
        runner.send_signal(signal.SIGINT)
        time.sleep(0.5)

        # then both run on, until a signal it does handle
        assert runner.poll() is None and alive(step), "an ignored SIGINT stopped the run"
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 143
        assert gone_within(step, 5) and gone_within(child, 5)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for pid in (step, child):
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)

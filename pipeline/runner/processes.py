"""The host runner's hold on processes: the lock of ``--out``, stop signals, and steps that die with the runner.

One run at a time per ``--out``: a run holds an exclusive lock on ``OUT/.run.lock`` (``flock``,
released by the kernel however the run ends) from before it clears ``--out`` until its last
step has ended; a second run on the same directory, by any spelling of its path, says once
that it waits, and starts when the first ends.

Stopping: each step runs in its own process group. On SIGINT, SIGTERM or SIGHUP the runner
sends SIGTERM to every running step's group, SIGKILL a few seconds later to what is left, and
exits 128 + the signal (130, 143, 129). A signal the runner was started ignoring (``nohup``)
stays ignored. SIGKILL cannot be caught: on Linux every step is started with
``PR_SET_PDEATHSIG`` = SIGKILL, so the kernel kills it when the runner dies; what the step
itself started (its own children: pytest's subprocesses, the docker CLI) is then orphaned and
runs to its end, as the parent-death signal is not inherited. On macOS, which has no
parent-death signal, SIGINT, SIGTERM and SIGHUP stop the steps as on Linux, but after a SIGKILL
of the runner its steps run to their end.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType

POLL_SECONDS = 0.02
LOCK_FILE = ".run.lock"  # in --out, held by the run using it
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_SECONDS = 3.0  # from SIGTERM to a stopped step's group to SIGKILL
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# what signal.getsignal returns
Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


@contextlib.contextmanager
def out_lock(out: Path, run: str) -> Iterator[None]:
    """Hold the exclusive lock of ``out`` (``OUT/.run.lock``) for the block, waiting for its holder.

    The kernel releases a ``flock`` when its holder ends, however it ends, so a killed run
    leaves nothing to clean up. The file names its holder, for the one line a waiting run prints.
    """
    path = out / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another run"
            print(f"run: waiting for {holder} to end: it holds {path}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):  # who holds it is only for that line (a full disk may refuse)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"run {run} (pid {os.getpid()})\n".encode(), 0)
        yield
    finally:
        os.close(fd)


class StopSignals:
    """While entered, SIGINT, SIGTERM and SIGHUP are noted in ``signal`` (the first one) instead of acted on.

    The runner's loop sees the note within a poll and stops its steps. Handlers are installed only
    in the main thread, never over a signal ignored at entry, and the previous ones come back on exit.
    """

    def __init__(self) -> None:
        """Note nothing yet."""
        self.signal: int | None = None
        self._previous: dict[int, Handler] = {}

    def __enter__(self) -> StopSignals:
        """Install the handlers."""
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.getsignal(signum)
                if previous == signal.SIG_IGN:
                    continue
                self._previous[signum] = previous
                signal.signal(signum, self._note)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, trace: TracebackType | None
    ) -> None:
        """Put the previous handlers back."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal = signum


def stop_steps(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Stop running steps and all their process groups hold: SIGTERM, then SIGKILL after ``GRACE_SECONDS``.

    A leader is never reaped before its group gets SIGKILL (``waitid`` with ``WNOWAIT`` only looks),
    so its group id cannot have passed to another process when it is signalled.
    """
    live = [process for process in processes if process.returncode is None]
    for process in live:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and not all(_exited(process) for process in live):
        time.sleep(POLL_SECONDS)
    for process in live:
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Return whether ``process`` has ended, leaving it to be reaped (so its pid stays its own)."""
    if not hasattr(os, "waitid"):
        return process.poll() is not None
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def die_with_runner() -> Callable[[], None] | None:
    """Return a hook run in a step between fork and exec: on Linux, the kernel SIGKILLs it when the runner dies.

    Elsewhere (macOS has no parent-death signal) return None. When the runner died before the
    hook ran, the step kills itself at once rather than run unwatched.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    runner = os.getpid()

    def hook() -> None:
        prctl(ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL))
        if os.getppid() != runner:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def signal_name(signum: int) -> str:
    """Return a signal's name (``SIGTERM``), or ``signal N`` for a number without one."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"

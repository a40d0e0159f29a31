"""The host runner: the DAG of ``pipeline/dag.py`` on this machine, steps as subprocesses.

A run has an id (``$ML_CICD_RUN`` in the environment of every step of the run, so each result
names it; the repository checks, lint and test, get none: a step's environment is its own, never
the runner's, so the tests' own runs make their own ids) and
first removes what its steps write from ``--out``, so nothing from an earlier run survives to
be shown as current; ``run.json`` records how each step ended, for the report. Steps start once
their needs have ended; independent ones (lint, test, validate) run concurrently. A status line
per step shows its time; the run stops at the first failure with that step's exit code (steps
marked ``always``, the report, still run). A step whose inputs are unchanged is restored from
the step cache and says ``cached`` (a cache entry that fails its check is a reported miss; see
``cache.py``). Image steps run only where a Docker engine answers; a step marked ``service``
runs against the built image, started here on a loopback port.

One run at a time per ``--out``: a run holds the lock of ``--out`` from before it clears it
until its last step has ended, and a second run waits for it, so no run takes another's outputs
for its own and the step cache never stores them (``processes.py``, ``cache.py``).

A step's exit code is the run's: 1 a check failed, 2 bad input, 4 the environment (a full
disk, no permission), 127 a missing tool, 128+N a step killed by signal N. Each step runs in a
process group of its own; SIGINT, SIGTERM or SIGHUP stop every running step's group and the run
exits 128 + the signal, and on Linux the kernel kills a step whose runner was SIGKILLed
(``processes.py`` says what is left running, and what macOS does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from model.codec import write_record
from pipeline.config import Config
from pipeline.dag import Step, steps
from pipeline.errors import PipelineError, os_error_line
from pipeline.io import outdir
from pipeline.io.interpreter import argv_for, child_env
from pipeline.io.run import RUN_ENV, new_run_id
from pipeline.records import Run, StepOutcome, StepStatus
from pipeline.runner.cache import StaleEntry, StepCache
from pipeline.runner.processes import (
    POLL_SECONDS,
    StopSignals,
    die_with_runner,
    out_lock,
    signal_name,
    stop_steps,
)

LOG_TAIL = 25


@dataclass
class Outcome:
    """How a step ended."""

    status: StepStatus
    code: int = 0
    seconds: float = 0.0
    note: str = ""
    log: Path | None = None


@dataclass
class Running:
    """A step whose commands are running one after another in the background."""

    step: Step
    commands: list[tuple[str, ...]]
    log: Path
    started: float = field(default_factory=time.perf_counter)
    process: subprocess.Popen[bytes] | None = None
    key: str | None = None


class Runner:
    """Schedules steps by their needs, runs independent ones concurrently, caches results."""

    def __init__(
        self,
        config: Config,
        config_path: Path,
        out: Path,
        cache_dir: Path,
        use_cache: bool,
        skip: set[str],
        engine: bool,
        no_engine: str = "no container engine",
        run: str | None = None,
    ) -> None:
        """Run against ``out`` with the step cache in ``cache_dir``.

        ``engine``: image steps run; otherwise they are skipped, saying ``no_engine``.
        """
        self.config_path = config_path
        self.out = out
        self.cache = StepCache(cache_dir, config, config_path, out)
        self.use_cache = use_cache
        self.skip = skip
        self.engine = engine
        self.no_engine = no_engine
        self.run = run or new_run_id()
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.outcomes: dict[str, Outcome] = {}
        self.service: str | None = None

    def execute(self, table: Sequence[Step]) -> int:
        """Run ``table`` to completion, to the first failure or to a stop signal; return the exit code.

        Waits first for any other run on the same out directory to end (see the module docstring).
        """
        self.out.mkdir(parents=True, exist_ok=True)
        with out_lock(self.out, self.run), StopSignals() as stop:
            return self._execute(table, stop)

    def _execute(self, table: Sequence[Step], stop: StopSignals) -> int:
        (self.out / outdir.LOGS).mkdir(exist_ok=True)
        for step in table:
            if step.name not in self.skip:
                self._clear(step)
        self._record()
        started = time.perf_counter()
        pending = list(table)
        running: list[Running] = []
        failed: Outcome | None = None
        stopped_by: int | None = None
        try:
            while pending or running:
                if stop.signal is not None:
                    stopped_by = stop.signal
                    break
                for step in list(pending):
                    if failed is not None and not step.always:
                        pending.remove(step)
                        self._finish(step, Outcome("skipped", note="stopped after a failure"))
                        continue
                    if all(need in self.outcomes for need in step.needs):
                        pending.remove(step)
                        job = self._start(step)
                        if job is not None:
                            running.append(job)
                if pending and not running and not any(self._ready(step) for step in pending):
                    raise PipelineError(f"steps can never start (unknown needs): {[s.name for s in pending]}")
                for job in list(running):
                    outcome = self._poll(job)
                    if outcome is not None:
                        running.remove(job)
                        self._finish(job.step, outcome)
                        if outcome.status == "ok" and job.key is not None:
                            self._store(job)
                        if outcome.status == "failed" and failed is None:
                            failed = outcome
                if running:
                    time.sleep(POLL_SECONDS)
        finally:
            stop_steps([job.process for job in running if job.process is not None])
            self._stop_service()
        total = time.perf_counter() - started
        if stopped_by is not None:
            return self._stopped(stopped_by, running, total)
        if failed is not None:
            name = next(n for n, o in self.outcomes.items() if o is failed)
            print(f"pipeline failed at {name} (exit {failed.code}) after {total:.1f}s", file=sys.stderr)
            if (self.out / outdir.REPORT).exists():
                print(f"report: {self.out / outdir.REPORT}", file=sys.stderr)
            return failed.code
        print(f"pipeline passed in {total:.1f}s; artefacts in {self.out}/", file=sys.stderr)
        return 0

    def _stopped(self, signum: int, running: list[Running], total: float) -> int:
        """Record the steps a stop signal ended, say so in one line, and return 128 + the signal."""
        name, code = signal_name(signum), 128 + signum
        for job in running:
            seconds = time.perf_counter() - job.started
            note = f"stopped: the runner got {name}"
            self.outcomes[job.step.name] = Outcome("failed", code, seconds, note, job.log)
        with contextlib.suppress(OSError):  # the out directory may be why the run was stopped
            self._record()
        names = ", ".join(job.step.name for job in running) or "none"
        print(f"error: run stopped by {name} after {total:.1f}s; steps stopped: {names}", file=sys.stderr)
        return code

    def restorable(self, step: Step) -> bool:
        """Return True when ``step`` would be restored from the step cache rather than run."""
        return self.use_cache and step.cache and self.cache.has(self.cache.key(step))

    def _ready(self, step: Step) -> bool:
        return all(need in self.outcomes for need in step.needs)

    def _start(self, step: Step) -> Running | None:
        """Start ``step`` or settle it at once (skipped, cached); return the running job."""
        reason = self._skip_reason(step)
        if reason:
            self._finish(step, Outcome("skipped", note=reason))
            return None
        key = self.cache.key(step) if self.use_cache and step.cache else None
        if key is not None:
            try:
                if self.cache.restore(key, step):
                    self._finish(step, Outcome("cached"))
                    return None
            except StaleEntry as exc:
                self._cache_note(step, f"miss: {exc}; running the step")
        commands = list(self._service_commands(step) if step.service else step.commands)
        print(f"  ...    {step.name}", file=sys.stderr, flush=True)
        self.outcomes[step.name] = Outcome("running")
        self._record()
        del self.outcomes[step.name]
        job = Running(step, commands, self.out / outdir.LOGS / f"{step.name}.log", key=key)
        job.log.write_bytes(b"")
        self._launch_next(job)
        return job

    def _launch_next(self, job: Running) -> None:
        """Start the job's next command in a process group of its own (see the module docstring)."""
        argv = argv_for(job.commands.pop(0))
        _append(job.log, "$ " + " ".join(argv) + "\n")
        handle = job.log.open("ab")
        try:
            job.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=_child_env(self.run if job.step.in_run else None),
                process_group=0,
                preexec_fn=die_with_runner(),
            )
        except FileNotFoundError:
            job.process = None
            _append(job.log, f"command not found: {argv[0]}\n")
        finally:
            handle.close()

    def _poll(self, job: Running) -> Outcome | None:
        """Return the outcome once every command of ``job`` has ended, else None."""
        seconds = time.perf_counter() - job.started
        if job.process is None:
            return Outcome("failed", code=127, seconds=seconds, log=job.log)
        code = job.process.poll()
        if code is None:
            return None
        if code < 0:  # killed by a signal: the shell's 128 + N
            note = f"killed by {signal_name(-code)}"
            return Outcome("failed", code=128 - code, seconds=seconds, note=note, log=job.log)
        if code != 0:
            return Outcome("failed", code=code, seconds=seconds, note=_error_line(job.log), log=job.log)
        if job.commands:
            self._launch_next(job)
            return None
        return Outcome("ok", seconds=seconds, log=job.log)

    def _store(self, job: Running) -> None:
        """Store a finished step's outputs under its key, unless its inputs changed while it ran."""
        assert job.key is not None
        if not self.cache.unchanged(job.step, job.key):
            self._cache_note(job.step, "not stored: what it reads changed while it ran")
            return
        try:
            self.cache.store(job.key, job.step)
        except OSError as exc:  # the cache only saves time: the step's result stands
            self._cache_note(job.step, f"not stored: {os_error_line(exc)}")

    def _cache_note(self, step: Step, text: str) -> None:
        print(f"  {'cache':<6} {step.name:<12} {text}", file=sys.stderr, flush=True)

    def _finish(self, step: Step, outcome: Outcome) -> None:
        self.outcomes[step.name] = outcome
        self._record()
        label = {"ok": "ok", "cached": "cached", "failed": "FAILED", "skipped": "skip"}[outcome.status]
        timing = f"{outcome.seconds:6.1f}s" if outcome.status in {"ok", "failed"} else "       "
        note = f"  ({outcome.note})" if outcome.note and outcome.status == "skipped" else ""
        code = f"  exit {outcome.code}" if outcome.status == "failed" else ""
        print(f"  {label:<6} {step.name:<12}{timing}{code}{note}", file=sys.stderr, flush=True)
        if outcome.status == "failed" and outcome.log is not None:
            for line in outcome.log.read_text(errors="replace").splitlines()[-LOG_TAIL:]:
                print(f"         | {line}", file=sys.stderr)
            print(f"         full log: {outcome.log}", file=sys.stderr)

    def _skip_reason(self, step: Step) -> str:
        if step.name in self.skip:
            return "--skip"
        if step.image and not self.engine:
            return self.no_engine
        failed = [need for need in step.needs if self.outcomes[need].status == "failed"]
        if failed and not step.always:
            return f"{', '.join(failed)} failed"
        if step.image and any(self.outcomes[n].status == "skipped" for n in step.needs):
            return "image not built"
        return ""

    def _clear(self, step: Step) -> None:
        """Remove what ``step`` writes from the out directory (before the run, so nothing stale is left)."""
        for name in step.writes:
            target = self.out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

    def _record(self) -> None:
        """Write ``run.json``: this run's id and how each step has ended so far."""
        steps = tuple(
            StepOutcome(name, o.status, o.code, round(o.seconds, 3), o.note)
            for name, o in self.outcomes.items()
        )
        write_record(self.out / Run.FILE, Run(self.run, self.started_at, steps))

    def _service_commands(self, step: Step) -> tuple[tuple[str, ...], ...]:
        """Start the built image on a loopback port; return ``step``'s commands pointed at it."""
        from pipeline.io import docker

        url, self.service = docker.start_service(outdir.built_tag(self.out))
        rendered = {s.name: s for s in steps(str(self.config_path), str(self.out), url)}
        return rendered[step.name].commands

    def _stop_service(self) -> None:
        if self.service is not None:
            from pipeline.io import docker

            docker.stop_service(self.service)
            self.service = None


def _append(path: Path, text: str) -> None:
    """Append to a step log; a failure to write names the log (a full disk's ``write`` names no file)."""
    try:
        with path.open("ab") as log:
            log.write(text.encode())
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def _child_env(run: str | None) -> dict[str, str]:
    """Return a step's environment: this machine's, without any run id of the runner's own, plus ``run``."""
    env = child_env({name: value for name, value in os.environ.items() if name != RUN_ENV})
    env.setdefault("PYTHONUNBUFFERED", "1")
    if run is not None:
        env[RUN_ENV] = run
    return env


def _error_line(log: Path) -> str:
    """Return the failing command's one-line reason: its last ``error:`` line, else its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1].removeprefix("error: ")

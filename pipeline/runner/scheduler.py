"""The host runner: the DAG of ``pipeline/dag.py`` on this machine, steps as subprocesses.

A run has an id (``$ML_CICD_RUN`` in the environment of every step of the run, so each result
names it; the repository checks, lint and test, get none: a step's environment is its own, never
the runner's, so the tests' own runs make their own ids) and
first removes what its steps write from ``--out``, so nothing from an earlier run survives to
be shown as current; ``run.json`` records how each step ended, for the report. Steps start once
their needs have ended; independent ones (lint, test, validate) run concurrently. A status line
per step shows its time; the run stops at the first failure with that step's exit code (steps
marked ``always``, the report, still run). A step whose inputs are unchanged is restored from
the step cache and says ``cached``. Image steps run only where a Docker engine answers; a step
marked ``service`` runs against the built image, started here on a loopback port.
"""

from __future__ import annotations

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
from pipeline.errors import PipelineError
from pipeline.io import outdir
from pipeline.io.run import RUN_ENV, new_run_id
from pipeline.records import Run, StepOutcome, StepStatus
from pipeline.runner.cache import StepCache

LOG_TAIL = 25
POLL_SECONDS = 0.02


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
        """Run ``table`` to completion or to the first failure; return the exit code."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / outdir.LOGS).mkdir(exist_ok=True)
        for step in table:
            if step.name not in self.skip:
                self._clear(step)
        self._record()
        started = time.perf_counter()
        pending = list(table)
        running: list[Running] = []
        failed: Outcome | None = None
        try:
            while pending or running:
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
                        if outcome.status == "ok" and job.key is not None:
                            self.cache.store(job.key, job.step)
                        self._finish(job.step, outcome)
                        if outcome.status == "failed" and failed is None:
                            failed = outcome
                if running:
                    time.sleep(POLL_SECONDS)
        finally:
            for job in running:
                if job.process is not None and job.process.poll() is None:
                    job.process.kill()
            self._stop_service()
        total = time.perf_counter() - started
        if failed is not None:
            name = next(n for n, o in self.outcomes.items() if o is failed)
            print(f"pipeline failed at {name} (exit {failed.code}) after {total:.1f}s", file=sys.stderr)
            if (self.out / outdir.REPORT).exists():
                print(f"report: {self.out / outdir.REPORT}", file=sys.stderr)
            return failed.code
        print(f"pipeline passed in {total:.1f}s; artefacts in {self.out}/", file=sys.stderr)
        return 0

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
        if key is not None and self.cache.restore(key, step):
            self._finish(step, Outcome("cached"))
            return None
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
        argv = _resolve(job.commands.pop(0))
        with job.log.open("ab") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())
        handle = job.log.open("ab")
        try:
            job.process = subprocess.Popen(
                argv,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=_child_env(self.run if job.step.in_run else None),
            )
        except FileNotFoundError:
            job.process = None
            with job.log.open("ab") as log:
                log.write(f"command not found: {argv[0]}\n".encode())
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
        if code != 0:
            return Outcome("failed", code=code, seconds=seconds, note=_error_line(job.log), log=job.log)
        if job.commands:
            self._launch_next(job)
            return None
        return Outcome("ok", seconds=seconds, log=job.log)

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


def _resolve(argv: tuple[str, ...]) -> list[str]:
    """Run ``python`` as this interpreter, so the runner's venv is the steps' venv."""
    return [sys.executable, *argv[1:]] if argv[0] == "python" else list(argv)


def _child_env(run: str | None) -> dict[str, str]:
    """Return a step's environment: this machine's, without any run id of the runner's own, plus ``run``."""
    env = {name: value for name, value in os.environ.items() if name != RUN_ENV}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")
    if run is not None:
        env[RUN_ENV] = run
    return env


def _error_line(log: Path) -> str:
    """Return the failing command's one-line reason: its last ``error:`` line, else its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1].removeprefix("error: ")

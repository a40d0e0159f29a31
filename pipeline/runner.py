"""Run the whole DAG on this host, the engine-free twin of ``dagger call full-pipeline``.

    python -m pipeline run --config configs/pipeline.toml --out out
    python -m pipeline run --skip lint,test          # quick run while iterating

Each step runs the same argv as the Dagger module (see ``pipeline/dag.py``); lint, test
and validate run concurrently. A status line per step shows its time; the run stops at
the first failure with that step's exit code (the report is still written). A step
whose inputs (files it reads, config, code of ``pipeline/`` and ``model/``, pinned
requirements) are unchanged is restored from a content-addressed cache and says
``cached``. Image steps run only where a Docker engine answers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model.files import staged_directory
from pipeline.config import Config, load_config
from pipeline.dag import Step, steps
from pipeline.errors import PipelineError

CODE_DIRS = ("pipeline", "model")
PROJECT_FILES = ("pyproject.toml", "requirements.txt", "requirements-serve.txt", "requirements-dev.txt")
LINT_TREES = ("pipeline", "model", "src", "tests", "bench", ".github")
TEST_TREES = ("pipeline", "model", "src", "tests", "configs", "data", "Dockerfile", "dagger.json")
SKIP_PARTS = frozenset({"__pycache__", ".venv", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
LOG_TAIL = 25


@dataclass(frozen=True)
class Plan:
    """What one step reads and writes, for the cache."""

    inputs: tuple[Path, ...] = ()
    outputs: tuple[str, ...] = ()  # names inside the out directory
    sections: tuple[str, ...] = ()  # config sections the step depends on (empty: the whole file)
    cacheable: bool = True


@dataclass
class Outcome:
    """How a step ended."""

    status: str  # ok, cached, failed, skipped
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


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``run`` options."""
    parser.add_argument("--out", default="out", help="artefact directory (default out)")
    parser.add_argument(
        "--skip", default="", help="comma-separated steps to skip, e.g. lint,test (dependants still run)"
    )
    parser.add_argument("--no-cache", action="store_true", help="run every step, even with unchanged inputs")
    parser.add_argument(
        "--cache-dir", default=".cache/ml-cicd", help="content-addressed step cache (default .cache/ml-cicd)"
    )
    parser.add_argument(
        "--image",
        choices=("auto", "always", "never"),
        default="auto",
        help="build and smoke-test the serving image: auto = when a Docker engine answers (default auto)",
    )


def run(args: argparse.Namespace) -> int:
    """Execute the DAG and return the exit code of the first failing step (0 if none)."""
    config = load_config(args.config)
    out = Path(args.out)
    table = steps(args.config, args.out)
    names = {step.name for step in table}
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    unknown = skip - names
    if unknown:
        listed = ", ".join(step.name for step in table)
        raise PipelineError(f"--skip: unknown step(s) {', '.join(sorted(unknown))}; steps are {listed}")
    engine = _engine_ready(args.image)
    runner = Runner(config, Path(args.config), out, Path(args.cache_dir), not args.no_cache, skip, engine)
    return runner.execute(table)


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
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.out = out
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.skip = skip
        self.engine = engine
        self.outcomes: dict[str, Outcome] = {}
        self.service: str | None = None
        self._code_hash: str | None = None
        self._keys: dict[str, tuple[str, Plan]] = {}  # running step -> its cache key

    def execute(self, table: Sequence[Step]) -> int:
        """Run ``table`` to completion or to the first failure; return the exit code."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "logs").mkdir(exist_ok=True)
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
                if (
                    pending
                    and not running
                    and not any(all(need in self.outcomes for need in step.needs) for step in pending)
                ):
                    raise PipelineError(f"steps can never start (unknown needs): {[s.name for s in pending]}")
                for job in list(running):
                    outcome = self._poll(job)
                    if outcome is not None:
                        running.remove(job)
                        self._finish(job.step, outcome)
                        if outcome.status == "failed" and failed is None:
                            failed = outcome
                if running:
                    time.sleep(0.02)
        finally:
            for job in running:
                if job.process is not None and job.process.poll() is None:
                    job.process.kill()
            self._stop_service()
        total = time.perf_counter() - started
        if failed is not None:
            name = next(n for n, o in self.outcomes.items() if o is failed)
            print(f"pipeline failed at {name} (exit {failed.code}) after {total:.1f}s", file=sys.stderr)
            if (self.out / "report.md").exists():
                print(f"report: {self.out / 'report.md'}", file=sys.stderr)
            return failed.code
        print(f"pipeline passed in {total:.1f}s; artefacts in {self.out}/", file=sys.stderr)
        return 0

    # -- one step -----------------------------------------------------------------------------

    def _start(self, step: Step) -> Running | None:
        """Start ``step`` or settle it at once (skipped, cached); return the running job."""
        reason = self._skip_reason(step)
        if reason:
            self._finish(step, Outcome("skipped", note=reason))
            return None
        plan = self._plan(step)
        key = self._cache_key(step, plan) if self.use_cache and plan.cacheable else None
        if key is not None and self._restore(key, plan):
            self._finish(step, Outcome("cached"))
            return None
        commands = list(step.commands)
        if step.name == "smoke_test":
            commands = [self._smoke_command()]
        print(f"  ...    {step.name}", file=sys.stderr, flush=True)
        job = Running(step, commands, self.out / "logs" / f"{step.name}.log")
        job.log.write_bytes(b"")
        self._launch_next(job)
        if key is not None:
            self._keys[step.name] = (key, plan)
        return job

    def _launch_next(self, job: Running) -> None:
        argv = _resolve(job.commands.pop(0))
        with job.log.open("ab") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())
        handle = job.log.open("ab")
        try:
            job.process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=_child_env())
        except FileNotFoundError:
            handle.close()
            job.process = None
            with job.log.open("ab") as log:
                log.write(f"command not found: {argv[0]}\n".encode())
        finally:
            if job.process is not None:
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
            return Outcome("failed", code=code, seconds=seconds, log=job.log)
        if job.commands:
            self._launch_next(job)
            return None
        return Outcome("ok", seconds=seconds, log=job.log)

    def _finish(self, step: Step, outcome: Outcome) -> None:
        self.outcomes[step.name] = outcome
        pending = self._keys.pop(step.name, None)
        if outcome.status == "ok" and pending is not None:
            self._store(*pending)
        label = {"ok": "ok", "cached": "cached", "failed": "FAILED", "skipped": "skip"}[outcome.status]
        timing = f"{outcome.seconds:6.1f}s" if outcome.status in {"ok", "failed"} else "       "
        note = f"  ({outcome.note})" if outcome.note else ""
        code = f"  exit {outcome.code}" if outcome.status == "failed" else ""
        print(f"  {label:<6} {step.name:<12}{timing}{code}{note}", file=sys.stderr, flush=True)
        if outcome.status == "failed" and outcome.log is not None:
            tail = outcome.log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
            for line in tail:
                print(f"         | {line}", file=sys.stderr)
            print(f"         full log: {outcome.log}", file=sys.stderr)

    def _skip_reason(self, step: Step) -> str:
        if step.name in self.skip:
            return "--skip"
        if step.image and not self.engine:
            return "no container engine"
        failed = [need for need in step.needs if self.outcomes[need].status == "failed"]
        if failed and not step.always:
            return f"{', '.join(failed)} failed"
        if step.image and any(self.outcomes[n].status == "skipped" for n in step.needs):
            return "image not built"
        return ""

    # -- image service ------------------------------------------------------------------------

    def _smoke_command(self) -> tuple[str, ...]:
        """Start the built image as a service and return the smoke argv pointing at it."""
        from pipeline import image

        tag = image.built_tag(self.out)
        url, self.service = image.start_service(tag)
        smoke = next(s for s in steps(str(self.config_path), str(self.out), url) if s.name == "smoke_test")
        return smoke.commands[0]

    def _stop_service(self) -> None:
        if self.service is not None:
            from pipeline import image

            image.stop_service(self.service)
            self.service = None

    # -- cache --------------------------------------------------------------------------------

    def _plan(self, step: Step) -> Plan:
        """Return what ``step`` reads and writes (the cache key and what to restore)."""
        cfg = self.config
        out = self.out
        data = [Path(cfg.data.path)] + ([Path(cfg.drift.reference)] if cfg.drift.reference else [])
        root = Path.cwd()
        plans = {
            "lint": Plan(_tree(root, LINT_TREES) + _files(root, PROJECT_FILES)),
            "test": Plan(_tree(root, TEST_TREES) + _files(root, PROJECT_FILES)),
            "validate": Plan(tuple(data), ("validation.json", "drift.json"), ("data", "schema", "drift")),
            "train": Plan(
                (Path(cfg.data.path),),
                ("model", "holdout.parquet"),
                ("data", "schema", "model", "training", "drift"),
            ),
            "evaluate": Plan(
                (out / "model", out / "holdout.parquet"), ("metrics.json",), ("data", "schema", "slices")
            ),
            "gate": Plan(
                _under(out, "metrics.json", "model", "holdout.parquet", "drift.json", "champion"),
                ("gates.json",),
                ("data", "gates"),
            ),
            "report": Plan(
                _under(out, "validation.json", "drift.json", "metrics.json", "gates.json"),
                ("report.md", "confusion_matrix.png", "residuals.png"),
            ),
        }
        return plans.get(step.name, Plan(cacheable=False))

    def _cache_key(self, step: Step, plan: Plan) -> str:
        digest = hashlib.sha256()
        digest.update(repr((step.name, step.commands)).encode())
        digest.update(self.code_hash().encode())
        if plan.sections:
            digest.update(self.config.section_hash(*plan.sections).encode())
        else:
            digest.update(self.config_path.read_bytes())
        for path in plan.inputs:
            _hash_path(digest, path)
        return digest.hexdigest()

    def code_hash(self) -> str:
        """Return a hash of the code and pinned requirements that every step depends on."""
        if self._code_hash is None:
            digest = hashlib.sha256()
            root = Path.cwd()
            for path in _tree(root, CODE_DIRS) + _files(root, PROJECT_FILES):
                _hash_path(digest, path)
            self._code_hash = digest.hexdigest()
        return self._code_hash

    def _restore(self, key: str, plan: Plan) -> bool:
        entry = self.cache_dir / key[:2] / key
        if not (entry / "complete").exists():
            return False
        for name in plan.outputs:
            target = self.out / name
            cached = entry / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            if cached.is_dir():
                shutil.copytree(cached, target)
            elif cached.exists():
                shutil.copy2(cached, target)
        return True

    def _store(self, key: str, plan: Plan) -> None:
        entry = self.cache_dir / key[:2] / key
        if (entry / "complete").exists():
            return
        with staged_directory(entry) as stage:
            for name in plan.outputs:
                source = self.out / name
                if source.is_dir():
                    shutil.copytree(source, stage / name)
                elif source.exists():
                    shutil.copy2(source, stage / name)
            (stage / "complete").write_text("ok\n")


def _engine_ready(mode: str) -> bool:
    if mode == "never":
        return False
    if mode == "always":
        return True
    if shutil.which("docker") is None and not Path("/usr/bin/docker").exists():
        return False
    from pipeline import image

    return image.engine_available()


def _resolve(argv: tuple[str, ...]) -> list[str]:
    """Run ``python`` as this interpreter, so the runner's venv is the steps' venv."""
    return [sys.executable, *argv[1:]] if argv[0] == "python" else list(argv)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _files(root: Path, names: Iterable[str]) -> tuple[Path, ...]:
    return tuple(root / n for n in names if (root / n).is_file())


def _tree(root: Path, names: Iterable[str]) -> tuple[Path, ...]:
    """Return every file under the named files/dirs, sorted, skipping caches and venvs."""
    found: list[Path] = []
    for name in names:
        path = root / name
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(p for p in path.rglob("*") if p.is_file() and not _ignored(p.relative_to(root)))
    return tuple(sorted(found))


def _ignored(relative: Path) -> bool:
    return bool(SKIP_PARTS.intersection(relative.parts))


def _under(out: Path, *names: str) -> tuple[Path, ...]:
    return tuple(out / name for name in names)


def _hash_path(digest: hashlib._Hash, path: Path) -> None:
    """Feed a file, a directory (names and contents) or its absence into ``digest``."""
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(child.relative_to(path)).encode())
            digest.update(hashlib.sha256(child.read_bytes()).digest())
    elif path.is_file():
        digest.update(str(path).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    else:
        digest.update(f"missing:{path}".encode())

"""The container replica: the Dagger module's DAG run with a local Docker engine, from ``spec.py``.

No Dagger engine runs on machines that reach only package registries; a Docker engine does. The
replica builds the step image the module builds (same base up to the documented stand-in, same
environment, requirement files and install), runs every step in the module's order in it with the
module's argv, paths and ``out/`` hand-offs, builds the serving image with ``docker build`` from
the context the module gives the engine (ml-cicd's Dockerfile, serving requirements and ``model/``
from the tool's tree, and the gated artefact), runs that image as service ``model``, smoke-tests it,
and writes the report with every step's outcome. ml-cicd's own files come from ``--tool`` (the
module's source: by default the repository this file is in), the team's from ``--source``. ``plan()`` is the step containers as operations; ``tests/dagger/test_replica.py`` holds it
equal to the module's offline query plan.

    PYTHONPATH=src .venv/bin/python -m ml_cicd.replica --source . --base-image local/python:3.13-trixie \\
        --champion out/champion --ca-bundle /etc/ssl/certs/ca-certificates.crt
    PYTHONPATH=src .venv/bin/python -m ml_cicd.replica --source ../their-repo --config ml/ml-cicd.toml

Exit code: the first failing step's, as ``python -m pipeline run`` and ``dagger call full-pipeline``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .spec import (
    APT_INSTALL,
    CA_PATH,
    CHAMPION,
    CONFIG,
    DOCKERFILE,
    ENV,
    IMAGE_STEP,
    INSTALL,
    KEY_DIR,
    KEY_ENV,
    KEY_VOLUME,
    MODEL,
    MODEL_INPUTS,
    OUT,
    PIP_CACHE_PATH,
    PIP_CACHE_VOLUME,
    PLATFORMS,
    PORT,
    PRODUCERS,
    PYTHON_IMAGE,
    REQUIREMENTS,
    SERVE_REQUIREMENTS,
    SERVICE,
    SOURCE_IGNORE,
    STAND_IN,
    TOOL_CODE,
    TOOL_DIR,
    WORKDIR,
    commands,
    image_inputs,
    image_labels,
    report_flags,
    step,
)

Op = tuple[str, ...]
DOCKER = (
    "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
)  # Debian's: BuildKit via the daemon
LOG_TAIL = 25
MODULE_SOURCE = Path(__file__).resolve().parents[2]  # the repository holding this module: its source


def environment(base_image: str, ca: bool) -> list[Op]:
    """Return the operations that make the step environment (ml-cicd's requirements and code; no project yet)."""
    ops: list[Op] = [("from", base_image), *(("env", name, value) for name, value in ENV)]
    ops += [("exec", *APT_INSTALL), ("cache", PIP_CACHE_PATH, PIP_CACHE_VOLUME), ("workdir", TOOL_DIR)]
    ops += [("file", f"{TOOL_DIR}/{name}", name) for name in REQUIREMENTS]
    if ca:
        ops += [("secret", CA_PATH), ("env", "PIP_CERT", CA_PATH)]
    ops.append(("exec", *INSTALL))
    if ca:
        ops += [("unset", "PIP_CERT"), ("unmount", CA_PATH)]
    ops += [("dir", f"{TOOL_DIR}/{name}", f"tool:{name}") for name in TOOL_CODE]
    return [*ops, ("workdir", WORKDIR)]


def plan(
    name: str,
    base_image: str = PYTHON_IMAGE,
    *,
    ca: bool = False,
    full: bool = False,
    revision: str = "",
    champion: bool = False,
    inputs: Sequence[str] | None = None,
    flags: Sequence[str] = (),
    key: bool = False,
    config: str = CONFIG,
) -> list[Op]:
    """Return step ``name``'s container as operations: environment, source, inputs' out/, extras, argv.

    ``inputs``: the steps whose out/ it gets (default: the spec's; the report's are the producers that
    left one). ``flags`` are appended to the last command (the report's ``--step`` outcomes). ``key``:
    the signing key is given as a secret variable (else only the engine's key volume is there).
    """
    spec = step(name)
    ops = [*environment(base_image, ca), ("dir", WORKDIR, "source"), ("cache", KEY_DIR, KEY_VOLUME)]
    if key:
        ops.append(("secret-env", KEY_ENV))
    ops += [
        ("dir", f"{WORKDIR}/{OUT}", f"out:{need}") for need in (spec.inputs if inputs is None else inputs)
    ]
    if spec.git_marker:
        ops.append(("dir", f"{WORKDIR}/.git", "empty"))
    if spec.champion and champion:
        ops.append(("dir", f"{WORKDIR}/{CHAMPION}", "champion"))
    if spec.revision and revision:
        ops.append(("env", "GIT_COMMIT", revision))
    if spec.service:
        ops.append(("service", SERVICE, str(PORT)))
    argvs = list(commands(spec, full, config))
    argvs[-1] = (*argvs[-1], *flags)
    return ops + [("exec", *argv) for argv in argvs]


def dockerfile(ops: Sequence[Op]) -> str:
    """Return a Dockerfile for the environment operations (a cache and a secret become RUN mounts)."""
    unset = {op[1] for op in ops if op[0] == "unset"}
    lines: list[str] = []
    mounts: dict[str, str] = {}
    transient: dict[str, str] = {}
    for op in ops:
        kind, *args = op
        if kind == "from":
            lines.append(f"FROM {args[0]}")
        elif kind == "env" and args[0] in unset:
            transient[args[0]] = args[1]
        elif kind == "env":
            lines.append(f"ENV {args[0]}={json.dumps(args[1])}")
        elif kind == "unset":
            transient.pop(args[0], None)
        elif kind == "cache":
            mounts[args[0]] = f"--mount=type=cache,id={args[1]},target={args[0]}"
        elif kind == "secret":
            mounts[args[0]] = f"--mount=type=secret,id={Path(args[0]).name},target={args[0]}"
        elif kind == "unmount":
            mounts.pop(args[0], None)
        elif kind == "workdir":
            lines.append(f"WORKDIR {args[0]}")
        elif kind == "file":
            lines.append(f"COPY {json.dumps([args[1], args[0]])}")
        elif kind == "dir" and args[1].startswith("tool:"):
            lines.append(f"COPY {json.dumps([args[1].removeprefix('tool:'), args[0]])}")
        elif kind == "exec":
            prefix = ["env", *(f"{k}={v}" for k, v in transient.items())] if transient else []
            lines.append(" ".join(["RUN", *mounts.values(), json.dumps([*prefix, *args])]))
        else:
            raise ValueError(f"no Dockerfile form for {op}")
    return "\n".join(lines) + "\n"


def _pattern(pattern: str) -> re.Pattern[str]:
    """Compile a Docker-style exclude pattern (``*``, ``?``, ``**``), as Dagger's Ignore applies them."""
    out = ""
    parts = pattern.strip("/").split("/")
    for i, part in enumerate(parts):
        if part == "**":
            out += "(?:.*/)?" if i < len(parts) - 1 else ".*"
            continue
        out += "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
        out += "/" if i < len(parts) - 1 else ""
    return re.compile(out + r"\Z")


def excluded(relative: str, patterns: Sequence[str] = SOURCE_IGNORE) -> bool:
    """Return True when ``relative`` (or a directory above it) matches one of ``patterns``."""
    compiled = [_pattern(p) for p in patterns]
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(rx.match(prefix) for rx in compiled for prefix in prefixes)


def copy_source(source: Path, dest: Path) -> int:
    """Copy ``source`` into ``dest`` without what the module's Ignore list leaves out; return the file count."""
    count = 0
    for root, dirs, files in os.walk(source):
        rel_root = Path(root).relative_to(source)
        dirs[:] = [d for d in dirs if not excluded((rel_root / d).as_posix())]
        for name in files:
            rel = (rel_root / name).as_posix()
            if excluded(rel):
                continue
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(root) / name, dest / rel, follow_symlinks=False)
            count += 1
    return count


def docker(*args: str, check: bool = True, quiet: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the docker client; raise with its last error line when ``check`` and it fails."""
    done = subprocess.run(
        [DOCKER, *args],
        capture_output=quiet,
        text=True,
        check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )
    if check and done.returncode != 0:
        detail = ((done.stderr or "") + (done.stdout or "")).strip().splitlines()
        raise RuntimeError(f"docker {args[0]} failed: {detail[-1] if detail else done.returncode}")
    return done


@dataclass
class Outcome:
    """How a step ended, as ``run.json`` says it."""

    status: str
    code: int = 0
    seconds: float = 0.0
    note: str = ""


@dataclass
class Replica:
    """One run of the DAG in containers: the work directory holds the source copy, each step's out/ and logs."""

    source: Path
    work: Path
    base_image: str = STAND_IN
    ca_bundle: Path | None = None
    champion: Path | None = None
    full: bool = False
    revision: str = ""
    tool: Path = MODULE_SOURCE  # the module's source: ml-cicd's code, requirements and Dockerfile
    config: str = CONFIG  # the project's config, a path inside the source
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    tag: str = field(default_factory=lambda: f"ml-cicd-replica-{os.getpid()}")

    def run(self) -> int:
        """Run every step in order; return the first failure's exit code (0 when all passed)."""
        started = time.perf_counter()
        tree = self.work / "source"
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        files = copy_source(self.source, tree)
        self._say(f"source: {files} files of {self.source} (the module's Ignore list applied)")
        tool = self.work / "tool"
        shutil.rmtree(tool, ignore_errors=True)
        tool.mkdir(parents=True)
        files = copy_source(self.tool, tool)
        self._say(f"tool: {files} files of {self.tool} (the module's source, dagger.json's include applied)")
        image = self._step_image(tool)
        network = docker("network", "create", f"{self.tag}-net").stdout.strip()
        try:
            for name in ("lint", "test", "validate"):  # the module runs these three concurrently
                self._step(name, image, tree)
            for name in ("train", "evaluate", "gate"):
                if self._stopped():
                    break
                self._step(name, image, tree)
            if not self._stopped():
                served = self._serving_image(tool, image, tree)
                if served:
                    with self._service(served, network):
                        self._step("smoke_test", image, tree, network)
            self._report(image, tree)
        finally:
            docker("network", "rm", network, check=False)
        failed = next(((n, o) for n, o in self.outcomes.items() if o.status == "failed"), None)
        took = time.perf_counter() - started
        if failed is None:
            self._say(f"replica passed in {took:.0f}s; out/ in {self.work / 'outs' / 'report'}")
            return 0
        self._say(f"replica failed at {failed[0]} (exit {failed[1].code}) after {took:.0f}s")
        return failed[1].code

    def _stopped(self) -> bool:
        return any(o.status == "failed" for o in self.outcomes.values())

    def _say(self, line: str) -> None:
        print(f"replica: {line}", file=sys.stderr, flush=True)

    def _finish(self, name: str, outcome: Outcome, log: Path | None = None) -> None:
        self.outcomes[name] = outcome
        label = {"ok": "ok", "failed": "FAILED", "skipped": "skip"}[outcome.status]
        code = f"  exit {outcome.code}" if outcome.status == "failed" else ""
        print(f"  {label:<6} {name:<12}{outcome.seconds:6.1f}s{code}", file=sys.stderr, flush=True)
        if outcome.status == "failed" and log is not None:
            for line in log.read_text(errors="replace").splitlines()[-LOG_TAIL:]:
                print(f"         | {line}", file=sys.stderr)
            print(f"         full log: {log}", file=sys.stderr)

    def _step_image(self, tool: Path) -> str:
        """Build the step environment (the operations before the project) from ``tool``; return its tag."""
        ops = environment(self.base_image, self.ca_bundle is not None)
        text = dockerfile(ops)
        context = self.work / "step-image"
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        digest = hashlib.sha256(text.encode())
        for name in REQUIREMENTS:
            shutil.copy2(tool / name, context / name)
            digest.update((tool / name).read_bytes())
        for name in TOOL_CODE:
            shutil.copytree(tool / name, context / name, ignore=shutil.ignore_patterns("__pycache__"))
            for path in sorted((context / name).rglob("*")):
                if path.is_file():
                    digest.update(path.relative_to(context).as_posix().encode() + path.read_bytes())
        (context / "Dockerfile").write_text(text)
        tag = f"ml-cicd-replica-steps:{digest.hexdigest()[:12]}"
        self._say(f"step image {tag} on {self.base_image} (pip install -r requirements-dev.txt)...")
        started = time.perf_counter()
        argv = ["build", "-q", "-t", tag, *self._secret(), str(context)]
        done = docker(*argv, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"building the step image failed:\n{done.stderr[-3000:]}")
        self._say(f"step image ready in {time.perf_counter() - started:.0f}s")
        return tag

    def _secret(self) -> list[str]:
        return [] if self.ca_bundle is None else ["--secret", f"id=ca-bundle,src={self.ca_bundle}"]

    def _inputs(self, name: str) -> list[str]:
        if name == "report":
            return [p for p in PRODUCERS if (self.work / "outs" / p).is_dir()]
        return list(step(name).inputs)

    def _step(self, name: str, image: str, tree: Path, network: str | None = None) -> None:
        """Run step ``name`` in a container of ``image`` as the module does; keep its out/ and log."""
        flags = report_flags(self._report_outcomes()) if name == "report" else ()
        ops = plan(
            name,
            image,
            full=self.full,
            revision=self.revision,
            champion=self.champion is not None,
            inputs=self._inputs(name),
            flags=flags,
            key=bool(os.environ.get(KEY_ENV)),
            config=self.config,
        )
        ops = ops[ops.index(("dir", WORKDIR, "source")) :]  # the environment is the image
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        create = ["create", "--workdir", WORKDIR, "-v", f"{PIP_CACHE_VOLUME}:{PIP_CACHE_PATH}"]
        create += [arg for op in ops if op[0] == "cache" for arg in ("-v", f"{op[2]}:{op[1]}")]
        if network is not None:
            create += ["--network", network]
        create += [arg for op in ops if op[0] == "env" for arg in ("-e", f"{op[1]}={op[2]}")]
        create += [arg for op in ops if op[0] == "secret-env" for arg in ("-e", op[1])]  # its value from here
        container = docker(*create, image, "sleep", "infinity").stdout.strip()
        code = 0
        try:
            for op in ops:
                if op[0] == "dir":
                    self._place(container, op[1], op[2], tree)
            docker("start", container)
            with log.open("w") as handle:
                for op in (op for op in ops if op[0] == "exec"):
                    handle.write("$ " + " ".join(op[1:]) + "\n")
                    handle.flush()
                    code = subprocess.run(
                        [DOCKER, "exec", container, *op[1:]],
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        check=False,
                    ).returncode
                    if code != 0:
                        break
            keeps = name in (*PRODUCERS, "report")
            if keeps and docker("exec", container, "test", "-d", OUT, check=False).returncode == 0:
                kept = self.work / "outs" / name
                shutil.rmtree(kept, ignore_errors=True)
                kept.parent.mkdir(parents=True, exist_ok=True)
                docker("cp", f"{container}:{WORKDIR}/{OUT}", str(kept))
        finally:
            docker("rm", "-f", container, check=False)
        seconds = time.perf_counter() - started
        note = _error_line(log) if code else ""
        self._finish(name, Outcome("ok" if code == 0 else "failed", code, seconds, note), log)

    def _place(self, container: str, path: str, origin: str, tree: Path) -> None:
        """Copy an input directory into the created container at ``path`` (``with_directory``)."""
        if origin == "source":
            src = tree
        elif origin == "empty":
            src = self.work / "empty"
            src.mkdir(exist_ok=True)
        elif origin == "champion":
            assert self.champion is not None
            src = self.champion
        else:
            src = self.work / "outs" / origin.removeprefix("out:")
        docker("cp", f"{src}/.", f"{container}:{path}")

    def _serving_image(self, tool: Path, image: str, tree: Path) -> str | None:
        """Build the serving image as the module does: ml-cicd's Dockerfile, requirements and model/, then
        out/model, then what the model adds (``image inputs``, run where the gate ran)."""
        started = time.perf_counter()
        gate_out = self.work / "outs" / "gate"
        context = self.work / "image-context"
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        for name in (DOCKERFILE, *SERVE_REQUIREMENTS):
            shutil.copy2(tool / name, context / name)
        shutil.copytree(tool / "model", context / "model")
        shutil.copytree(gate_out / "model", context / MODEL)
        log = self.work / "logs" / f"{IMAGE_STEP}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        problem = self._model_inputs(image, tree, context)
        if problem is not None:
            log.write_text(problem)
            outcome = Outcome("failed", 2, time.perf_counter() - started, _error_line(log))
            self._finish(IMAGE_STEP, outcome, log)
            return None
        metadata = json.loads((gate_out / "model" / "metadata.json").read_text())
        metrics = json.loads((gate_out / "metrics.json").read_text())
        args = {"BASE_IMAGE": self.base_image, "MODEL_DIR": MODEL}
        args |= image_labels(metadata, metrics, self.revision, "")
        tag = f"{self.tag}-model"
        argv = ["build", "--platform", PLATFORMS[0], "-t", tag, *self._secret()]
        argv += [arg for key, value in args.items() for arg in ("--build-arg", f"{key}={value}")]
        with log.open("w") as handle:
            handle.write("$ docker " + " ".join([*argv, str(context)]) + "\n")
            handle.flush()
            code = subprocess.run(
                [DOCKER, *argv, "--progress=plain", str(context)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={**os.environ, "DOCKER_BUILDKIT": "1"},
                check=False,
            ).returncode
        seconds = time.perf_counter() - started
        outcome = Outcome("ok" if code == 0 else "failed", code, seconds, _error_line(log) if code else "")
        self._finish(IMAGE_STEP, outcome, log)
        return tag if code == 0 else None

    def _model_inputs(self, image: str, tree: Path, context: Path) -> str | None:
        """Write what the model adds to the build context into ``context``, as the module does: the gate's
        container (the source, the gate's out/) runs ``image inputs`` and its MODEL_INPUTS is merged in.

        Return None, or the command's output when it failed.
        """
        container = docker("create", "--workdir", WORKDIR, image, "sleep", "infinity").stdout.strip()
        try:
            self._place(container, WORKDIR, "source", tree)
            self._place(container, f"{WORKDIR}/{OUT}", "out:gate", tree)
            docker("start", container)
            done = docker("exec", container, *image_inputs(self.config), check=False)
            if done.returncode != 0:
                return done.stdout + done.stderr
            docker("cp", f"{container}:{MODEL_INPUTS}/.", str(context))
        finally:
            docker("rm", "-f", container, check=False)
        return None

    def _service(self, image: str, network: str) -> _Service:
        """Return the serving image as service SERVICE (the smoke step polls /ready itself, as in Dagger)."""
        return _Service(image, network, SERVICE)

    def _report_outcomes(self) -> dict[str, tuple[str, int, str]]:
        return {n: (o.status, o.code, o.note) for n, o in self.outcomes.items()}

    def _report(self, image: str, tree: Path) -> None:
        self._step("report", image, tree)
        report = self.work / "outs" / "report" / "report.md"
        if report.is_file():
            self._say(f"report: {report} ({report.read_text().splitlines()[0]})")


@dataclass
class _Service:
    """The serving image running as ``alias`` on ``network`` (Dagger's service binding), removed on exit."""

    image: str
    network: str
    alias: str
    container: str = ""

    def __enter__(self) -> _Service:
        run = ["run", "-d", "--network", self.network, "--network-alias", self.alias, "--expose", str(PORT)]
        self.container = docker(*run, self.image).stdout.strip()
        return self

    def __exit__(self, *exc: object) -> None:
        docker("rm", "-f", self.container, check=False)


def _error_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1].removeprefix("error: ")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run the replica."""
    parser = argparse.ArgumentParser(prog="python -m ml_cicd.replica", description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("."), help="the team's project (default .)")
    parser.add_argument(
        "--tool", type=Path, default=MODULE_SOURCE, help=f"the module's source (default {MODULE_SOURCE})"
    )
    parser.add_argument(
        "--config", default=CONFIG, help=f"the project's config inside --source (default {CONFIG})"
    )
    parser.add_argument(
        "--base-image",
        default=os.environ.get("ML_CICD_BASE_IMAGE") or STAND_IN,
        help=f"stand-in for {PYTHON_IMAGE} (default $ML_CICD_BASE_IMAGE, else {STAND_IN})",
    )
    parser.add_argument(
        "--ca-bundle", type=Path, help="CA bundle for pip, as a build secret (as --ca-bundle)"
    )
    parser.add_argument("--champion", type=Path, help="champion model artefact directory (as --champion)")
    parser.add_argument("--full", action="store_true", help="train on every row (as --full)")
    parser.add_argument("--revision", default="", help="git commit SHA (as --revision)")
    parser.add_argument("--work", type=Path, help="work directory (default: a new temp directory)")
    args = parser.parse_args(argv)
    if args.ca_bundle is not None and not args.ca_bundle.is_file():
        parser.error(f"--ca-bundle {args.ca_bundle}: no such file")
    if args.champion is not None and not (args.champion / "metadata.json").is_file():
        parser.error(f"--champion {args.champion}: no model artefact (metadata.json) there")
    work = args.work or Path(tempfile.mkdtemp(prefix="ml-cicd-replica-"))
    replica = Replica(
        args.source.resolve(),
        work.resolve(),
        args.base_image,
        args.ca_bundle,
        args.champion.resolve() if args.champion else None,
        args.full,
        args.revision,
        args.tool.resolve(),
        args.config,
    )
    return replica.run()


if __name__ == "__main__":
    sys.exit(main())

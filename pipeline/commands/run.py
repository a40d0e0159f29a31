"""Run the whole DAG on this host: the engine-free twin of `dagger call full-pipeline`.

    python -m pipeline run --config ml-cicd.toml --out out
    python -m pipeline run --skip lint,test          # quick run while iterating

Each step runs the same argv as the Dagger module (see ``pipeline/dag.py``); lint, test
and validate run concurrently. A status line per step shows its time; the run stops at
the first failure with that step's exit code (the report is still written). A step
whose inputs (files it reads, config, code of ``pipeline/`` and ``model/``, pinned
requirements) are unchanged is restored from a content-addressed cache and says
``cached``; an entry is restored only when every file hashes as stored under that very
key, else the step runs. Image steps run only where a Docker engine answers.

One run at a time per --out: a second run on the same directory says it waits and starts
when the first ends. Exit codes are the failing step's: 1 a check failed, 2 bad input,
4 the environment (disk full, no permission). SIGINT or SIGTERM stops the running steps
(their whole process groups) and exits 130 or 143; on Linux a step dies with a killed
runner even on SIGKILL.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from pipeline.commands.options import check_config
from pipeline.config import load_config, project_root
from pipeline.dag import steps
from pipeline.errors import PipelineError
from pipeline.io.run import run_id
from pipeline.runner.scheduler import Runner

CACHE = Path(".cache") / "ml-cicd"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``run`` options."""
    parser.add_argument("--out", help="artefact directory (default: out/ beside the config)")
    parser.add_argument(
        "--skip", default="", help="comma-separated steps to skip, e.g. lint,test (dependants still run)"
    )
    parser.add_argument("--no-cache", action="store_true", help="run every step, even with unchanged inputs")
    parser.add_argument(
        "--cache-dir", help="content-addressed step cache (default: .cache/ml-cicd beside the config)"
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
    out = str(args.out)
    table = steps(args.config, out)
    names = {step.name for step in table}
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    unknown = skip - names
    if unknown:
        listed = ", ".join(step.name for step in table)
        raise PipelineError(f"--skip: unknown step(s) {', '.join(sorted(unknown))}; steps are {listed}")
    engine = engine_ready(args.image)
    why = "--image never" if args.image == "never" else "no container engine answers (--image auto)"
    cache = Path(args.cache_dir) if args.cache_dir else project_root(args.config) / CACHE
    runner = Runner(
        config, Path(args.config), Path(out), cache, not args.no_cache, skip, engine, why, run_id()
    )
    # model.params matter only where a model is fitted: a train restored from the cache was
    # fitted with this very [model] section, so checking them (importing scikit-learn) is moot
    train = next(step for step in table if step.name == "train")
    check_config(
        config, project_root(args.config), model="train" not in skip and not runner.restorable(train)
    )
    return runner.execute(table)


def engine_ready(mode: str) -> bool:
    """Return whether image steps run: ``never``, ``always``, or ``auto`` (a Docker engine answers)."""
    if mode == "never":
        return False
    if mode == "always":
        return True
    if shutil.which("docker") is None and not Path("/usr/bin/docker").exists():
        return False
    from pipeline.io import docker

    return docker.engine_available()

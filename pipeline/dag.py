"""The DAG of ARCHITECTURE.md as data: each step's commands (argv lists), needs, and what it reads and writes.

The host runner executes this table and takes each step's cache key and outputs from it;
the Dagger module runs the same argv in its containers, and ``tests/dagger/test_module.py``
holds the two equal. Keep this module free of heavy imports: ``python -m pipeline run`` reads
it on every call.
"""

from __future__ import annotations

from dataclasses import dataclass

# -P: the team's own top-level packages (a model/ or pipeline/ of theirs) never shadow ml-cicd's
PY = ("python", "-P", "-m", "pipeline")
PROJECT = "project:"  # a read of the whole project (the config's directory; out/, caches, venvs left out)
# The whole project too, when the config names a [model] factory: the team's code shapes the model.
TEAM_CODE = "team-code:"
DATA = "config:data.path"  # a read named by a config key: the file that key points at
REFERENCE = "config:drift.reference"
SERVICE_URL = "http://model:8080"  # the serving image as Dagger's service "model"


@dataclass(frozen=True)
class Step:
    """One node of the DAG."""

    name: str
    commands: tuple[tuple[str, ...], ...]
    needs: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()  # repo paths, OUT/... paths, or config:KEY (the cache key's inputs)
    writes: tuple[
        str, ...
    ] = ()  # names inside the out directory: cleared before a run, restored by the cache
    sections: tuple[str, ...] = ()  # config sections the result depends on (empty: the whole file)
    cache: bool = True  # False: always runs (side effects, or needs a live engine)
    always: bool = False  # run even after an earlier failure (the report explains it)
    host_only: str = ""  # why the Dagger module has no such exec (empty: it has one)
    image: bool = False  # needs a container engine (the host runner skips it without one)
    service: bool = False  # talks to the serving image, reached at the ``url`` given to ``steps``
    in_run: bool = (
        True  # False: a check of the repository (lint, test), given no run id: its runs are its own
    )


def steps(config: str = "ml-cicd.toml", out: str = "out", url: str = SERVICE_URL) -> tuple[Step, ...]:
    """Return the pipeline steps, in a valid execution order."""
    common = ("--config", config, "--out", out)
    code = ("--config", config)
    return (
        Step("lint", ((*PY, "checks", "lint", *code),), reads=(PROJECT,), in_run=False),
        Step("test", ((*PY, "checks", "test", *code),), reads=(PROJECT,), in_run=False),
        Step(
            "validate",
            ((*PY, "validate", *common),),
            reads=(DATA, REFERENCE),
            writes=("validation.json", "drift.json"),
            sections=("data", "schema", "drift"),
        ),
        Step(
            "train",
            ((*PY, "train", *common),),
            needs=("lint", "test", "validate"),
            reads=(DATA, TEAM_CODE),
            writes=("model", "holdout.parquet"),
            sections=("data", "schema", "model", "training", "drift", "serving"),
        ),
        Step(
            "evaluate",
            ((*PY, "evaluate", *common),),
            needs=("train",),
            reads=(f"{out}/model", f"{out}/holdout.parquet"),
            writes=("metrics.json",),
            sections=("data", "schema", "slices"),
        ),
        Step(
            "champion",
            ((*PY, "registry", "export", "production", *code, "--to", f"{out}/champion", "--missing-ok"),),
            writes=("champion",),
            cache=False,
            host_only="Dagger takes the champion from an image address or a Directory argument",
        ),
        Step(
            "gate",
            ((*PY, "gate", *common, "--champion", f"{out}/champion"),),
            needs=("evaluate", "champion"),
            reads=tuple(
                f"{out}/{name}"
                for name in ("metrics.json", "model", "holdout.parquet", "drift.json", "champion")
            ),
            writes=("gates.json",),
            sections=("data", "gates", "serving"),
        ),
        Step(
            "build_image",
            ((*PY, "image", "build", *common),),
            needs=("gate",),
            writes=("image.json",),
            cache=False,
            image=True,
            host_only="the engine builds the Dockerfile itself (Directory.docker_build)",
        ),
        Step(
            "smoke_test",
            ((*PY, "smoke", *common, "--url", url),),
            needs=("build_image",),
            writes=("smoke.json",),
            cache=False,
            image=True,
            service=True,
        ),
        Step(
            "register",
            (
                (
                    *PY,
                    "registry",
                    "register",
                    f"{out}/model",
                    *code,
                    "--gates",
                    f"{out}/gates.json",
                    "--alias",
                    "staging",
                    "--if-publishable",  # a check passed with a warning (inconclusive) is not published
                ),
            ),
            needs=("gate", "smoke_test"),  # only a model whose image passed its smoke test (when they ran)
            cache=False,
            host_only="in Dagger the published image is the versioned artefact (publish)",
        ),
        Step(
            "report",
            ((*PY, "report", *common),),
            needs=("gate", "smoke_test"),  # after the image steps: its headline covers them
            reads=tuple(
                f"{out}/{name}" for name in ("validation.json", "drift.json", "metrics.json", "gates.json")
            ),
            writes=(
                "report.md",
            ),  # the plots beside it say what they show; report keeps, redraws or removes them
            cache=False,  # it reports on this run's steps (run.json), cached or not
            always=True,
        ),
    )

"""The DAG of ARCHITECTURE.md as data: step name, commands (argv lists), needs.

The host runner executes this table; the Dagger module runs the same argv in its
containers, and ``tests/test_dagger_module.py`` holds the two equal. Keep this module
free of heavy imports: ``python -m pipeline run`` reads it on every call.
"""

from __future__ import annotations

from dataclasses import dataclass

PY = ("python", "-m", "pipeline")
TEST_MARKERS = "not slow and not docker and not dagger"


@dataclass(frozen=True)
class Step:
    """One node of the DAG."""

    name: str
    commands: tuple[tuple[str, ...], ...]
    needs: tuple[str, ...] = ()
    always: bool = False  # run even after an earlier failure (the report explains it)
    host_only: str = ""  # why the Dagger module has no such exec (empty: it has one)
    image: bool = False  # needs a container engine (the host runner skips it without one)


def steps(
    config: str = "configs/pipeline.toml", out: str = "out", url: str = "http://model:8080"
) -> tuple[Step, ...]:
    """Return the pipeline steps, in a valid execution order."""
    common = ("--config", config, "--out", out)
    return (
        Step(
            "lint",
            (
                ("ruff", "check", "."),
                ("ruff", "format", "--check", "."),
                ("mypy",),
                ("actionlint",),
            ),
        ),
        Step("test", (("python", "-m", "pytest", "-q", "-m", TEST_MARKERS),)),
        Step("validate", ((*PY, "validate", *common),)),
        Step("train", ((*PY, "train", *common),), needs=("lint", "test", "validate")),
        Step("evaluate", ((*PY, "evaluate", *common),), needs=("train",)),
        Step(
            "champion",
            (
                (
                    *PY,
                    "registry",
                    "export",
                    "production",
                    "--config",
                    config,
                    "--to",
                    f"{out}/champion",
                    "--missing-ok",
                ),
            ),
            host_only="Dagger takes the champion from an image address or a Directory argument",
        ),
        Step(
            "gate", ((*PY, "gate", *common, "--champion", f"{out}/champion"),), needs=("evaluate", "champion")
        ),
        Step("report", ((*PY, "report", *common),), needs=("gate",), always=True),
        Step(
            "register",
            (
                (
                    *PY,
                    "registry",
                    "register",
                    f"{out}/model",
                    "--config",
                    config,
                    "--gates",
                    f"{out}/gates.json",
                    "--alias",
                    "staging",
                ),
            ),
            needs=("gate",),
            host_only="in Dagger the published image is the versioned artefact (publish)",
        ),
        Step(
            "build_image",
            ((*PY, "image", "build", *common),),
            needs=("gate",),
            image=True,
            host_only="the engine builds the Dockerfile itself (Directory.docker_build)",
        ),
        Step("smoke_test", ((*PY, "smoke", *common, "--url", url),), needs=("build_image",), image=True),
    )

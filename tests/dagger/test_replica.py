"""The container replica (src/ml_cicd/replica.py) builds what the Dagger module builds, offline.

The module's step containers are read from their lazy queries (``_ctx.selections``, as in
test_module.py) and written as the replica's operations; each must equal ``replica.plan()`` for the
same step and options, up to the base image (the documented stand-in). The replica's run itself is
in ``.ci/run`` (Docker engine, end to end).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import dagger
import pytest
from dagger import dag

from tests.conftest import CLINIC_CODE, FOREIGN_TABLE, FOREIGN_TARGET, REPO, factory_repo, use_factory


@pytest.fixture(scope="module")
def pkg() -> dict[str, ModuleType]:
    src = str(REPO / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    return {name: importlib.import_module(f"ml_cicd.{name}") for name in ("main", "spec", "replica")}


def _calls(obj: Any) -> list[Any]:
    return list(obj._ctx.selections)


def _ops(ctr: dagger.Container, origins: dict[int, str]) -> list[tuple[str, ...]]:
    """Return the module's container as the replica's operations; directories named by ``origins``."""
    ops: list[tuple[str, ...]] = []
    for call in _calls(ctr):
        args = call.args
        if call.name == "container":
            continue
        if call.name == "from":
            ops.append(("from", args["address"]))
        elif call.name == "withEnvVariable":
            ops.append(("env", args["name"], args["value"]))
        elif call.name == "withoutEnvVariable":
            ops.append(("unset", args["name"]))
        elif call.name == "withMountedCache":
            ops.append(("cache", args["path"], _calls(args["cache"])[-1].args["key"]))
        elif call.name == "withWorkdir":
            ops.append(("workdir", args["path"]))
        elif call.name == "withFile":
            ops.append(("file", args["path"], _calls(args["source"])[-1].args["path"]))
        elif call.name == "withMountedSecret":
            ops.append(("secret", args["path"]))
        elif call.name == "withoutMount":
            ops.append(("unmount", args["path"]))
        elif call.name == "withExec":
            ops.append(("exec", *args["args"]))
        elif call.name == "withDirectory":
            source = args["source"]
            chain = _calls(source)
            empty = [c.name for c in chain] == ["directory"]
            if [c.name for c in chain] == ["currentModule", "source", "directory"]:  # the module's own files
                ops.append(("dir", args["path"], f"tool:{chain[-1].args['path']}"))
                continue
            ops.append(("dir", args["path"], origins.get(id(source)) or ("empty" if empty else "?")))
        elif call.name == "withSecretVariable":
            ops.append(("secret-env", args["name"]))
        elif call.name == "withServiceBinding":
            port = next(c.args["port"] for c in _calls(args["service"]) if c.name == "withExposedPort")
            ops.append(("service", args["alias"], str(port)))
        else:
            raise AssertionError(f"the replica has no operation for {call.name}({args})")
    return ops


CASES = [
    ("lint", {}),
    ("test", {}),
    ("validate", {"ca": True}),
    ("train", {"full": True, "revision": "c0ffee"}),
    ("train", {}),
    ("evaluate", {"ca": True}),
    ("gate", {"champion": True}),
    ("gate", {}),
    ("smoke_test", {}),
    ("gate", {"key": True}),
]


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{'-'.join(o) or 'plain'}" for n, o in CASES])
def test_each_step_container_is_the_replicas_plan(
    pkg: dict[str, ModuleType], name: str, options: dict[str, Any]
) -> None:
    # given the module's step container, built offline with named inputs
    main, spec, replica = pkg["main"], pkg["spec"], pkg["replica"]
    source, champion = dag.directory(), dag.directory()
    inputs = {need: dag.directory() for need in spec.step(name).inputs}
    origins = {id(source): "source", id(champion): "champion"} | {
        id(d): f"out:{n}" for n, d in inputs.items()
    }
    ca = dag.set_secret(spec.CA_SECRET, "pem") if options.get("ca") else None
    full, revision = options.get("full", False), options.get("revision", "")
    module = main.MlCicd(signing_key=dag.set_secret("key", "k" * 32) if options.get("key") else None)
    ctr = module._before(
        name,
        source,
        ca,
        inputs,
        full,
        champion if options.get("champion") else None,
        revision,
        service=dag.container(),
    )
    ctr = ctr.with_(main.run(spec.commands(spec.step(name), full)))
    # when the replica plans the same step with the same options
    planned = replica.plan(
        name,
        spec.PYTHON_IMAGE,
        ca=bool(ca),
        full=full,
        revision=revision,
        champion=bool(options.get("champion")),
        key=bool(options.get("key")),
    )
    # then base image, environment, files, directories, argv and their order are the same
    assert _ops(ctr, origins) == planned


def test_the_report_is_the_replicas_plan_with_the_same_inputs_and_outcomes(
    pkg: dict[str, ModuleType],
) -> None:
    # given a run that stopped at a failed gate: its producers left out/ and the report sums up the steps
    main, spec, replica = pkg["main"], pkg["spec"], pkg["replica"]
    outs = {name: dag.directory() for name in ("validate", "train", "evaluate", "gate")}
    outcomes = dict.fromkeys(("lint", "test", "validate", "train", "evaluate"), ("ok", 0, ""))
    outcomes["gate"] = ("failed", 1, "no_regression failed")
    ran = main.Ran(outcomes=dict(outcomes), outs=outs)
    source = dag.directory()
    ctr = main.MlCicd()._report(ran, source, None)
    origins = {id(source): "source"} | {id(d): f"out:{n}" for n, d in outs.items()}
    # when the replica plans its report from the same outcomes
    planned = replica.plan("report", spec.PYTHON_IMAGE, inputs=list(outs), flags=spec.report_flags(outcomes))
    # then the two are equal: the same outs merged in order, the host runner's argv and the --step outcomes
    assert _ops(ctr, origins) == planned


def test_the_replicas_step_image_is_the_environment_as_a_dockerfile(pkg: dict[str, ModuleType]) -> None:
    spec, replica = pkg["spec"], pkg["replica"]
    text = replica.dockerfile(replica.environment("local/python:3.13-trixie", ca=True))
    lines = text.splitlines()
    assert lines[0] == "FROM local/python:3.13-trixie"
    assert 'ENV PYTHONUNBUFFERED="1"' in lines and "WORKDIR /src" in lines
    assert all(f'COPY ["{n}", "{spec.TOOL_DIR}/{n}"]' in lines for n in spec.REQUIREMENTS)
    # ml-cicd's code after the install (a code change reuses it), then the project's workdir
    assert lines[-3:] == [
        *(f'COPY ["{n}", "{spec.TOOL_DIR}/{n}"]' for n in spec.TOOL_CODE),
        f"WORKDIR {spec.WORKDIR}",
    ]
    install = lines[-4]
    # the pip cache and the CA are mounts of the install only; PIP_CERT is set for it alone
    assert install.startswith("RUN --mount=type=cache,id=ml-cicd-pip-python3.13,target=/root/.cache/pip ")
    assert "--mount=type=secret,id=ca-bundle,target=/run/secrets/ca-bundle" in install
    assert install.endswith(
        '["env", "PIP_CERT=/run/secrets/ca-bundle", "python", "-m", "pip", "install", "-r", "requirements-dev.txt"]'
    )
    assert not any(line.startswith("ENV PIP_CERT") for line in lines)


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        (".git/config", True),
        (".venv/bin/python", True),
        ("out/model/metadata.json", True),
        ("pipeline/__pycache__/cli.cpython-313.pyc", True),
        ("tests/.pytest_cache/v/x", True),
        ("ml_cicd.egg-info/PKG-INFO", True),
        ("src/ml_cicd.egg-info/PKG-INFO", True),
        (".cache/ml-cicd/steps/x", True),
        ("registry/aliases.json", True),
        ("pipeline/out.py", False),
        ("outline.md", False),
        ("tests/io/test_git.py", False),
        (".dockerignore", False),
        ("data/churn.csv", False),
    ],
)
def test_the_source_leaves_out_what_the_modules_ignore_list_does(
    pkg: dict[str, ModuleType], path: str, left_out: bool
) -> None:
    # the replica applies the module's Ignore patterns as Dagger does (Docker-style, relative to the root)
    main, replica = pkg["main"], pkg["replica"]
    assert replica.excluded(path) is left_out
    source = main.MlCicd.__dagger_object_type__.functions["lint"].parameters["source"]
    assert tuple(source.ignore) == pkg["spec"].SOURCE_IGNORE


def test_the_replica_copies_a_clone_without_the_ignored_files(
    pkg: dict[str, ModuleType], tmp_path: Path
) -> None:
    # given a project tree with clutter a user's clone has after a run
    root = tmp_path / "clone"
    for name in (
        "pipeline/cli.py",
        ".venv/lib/x.py",
        "out/report.md",
        ".dockerignore",
        "tests/__pycache__/t.pyc",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    # when it is copied as the module receives it
    dest = tmp_path / "copy"
    count = pkg["replica"].copy_source(root, dest)
    # then only the project's own files arrive, .dockerignore among them (the image build applies it)
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert got == [".dockerignore", "pipeline/cli.py"] and count == 2


@pytest.mark.docker
@pytest.mark.slow
def test_another_teams_repository_passes_the_replica_with_ml_cicds_files_from_the_module(
    pkg: dict[str, ModuleType], tmp_path: Path
) -> None:
    # given a Docker engine, and another team's repository onboarded with `init` (no file of ml-cicd's in it)
    from pipeline.cli import main
    from pipeline.io import docker as engine

    if not engine.engine_available():
        if os.environ.get("ML_CICD_REQUIRE_DOCKER") == "1":
            pytest.fail(
                "ML_CICD_REQUIRE_DOCKER=1 but no Docker engine answers (run scripts/docker-engine.sh)"
            )
        pytest.skip("no Docker engine: run scripts/docker-engine.sh")
    team = factory_repo(tmp_path / "clinic")
    config = ["--config", str(team / "ml-cicd.toml"), "--ci", "none"]
    assert main(["init", str(team / FOREIGN_TABLE), "--target", FOREIGN_TARGET, *config]) == 0
    use_factory(team / "ml-cicd.toml")  # their own estimator: a Pipeline around a transformer class of theirs
    ca = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    # when the replica runs the module's DAG on it, the tool taken from this checkout (the module's source)
    replica = pkg["replica"].Replica(
        team,
        tmp_path / "work",
        base_image=os.environ.get("ML_CICD_BASE_IMAGE") or pkg["spec"].STAND_IN,
        ca_bundle=ca if ca.is_file() else None,
        tool=REPO,
    )
    code = replica.run()
    # then every step passed: the team's test ran, their lint had nothing to run, the report names their table
    logs = tmp_path / "work" / "logs"
    assert code == 0, {n: o.note for n, o in replica.outcomes.items() if o.status != "ok"}
    assert [n for n, o in replica.outcomes.items() if o.status != "ok"] == []
    assert "1 passed" in (logs / "test.log").read_text()
    assert "lint: skipped: nothing to run" in (logs / "lint.log").read_text()
    report = (tmp_path / "work" / "outs" / "report" / "report.md").read_text()
    assert report.startswith("# Model report: PASSED") and "from clinic_biopsies.csv" in report
    # and the serving image got the team's code from `image inputs` run where the gate ran, so the model
    # (kind factory) unpickled in it and answered as offline
    context = tmp_path / "work" / "image-context"
    assert sorted(
        p.relative_to(context / "team").as_posix() for p in (context / "team").rglob("*.py")
    ) == sorted(CLINIC_CODE)
    smoke = (logs / "smoke_test.log").read_text()
    assert "served by sklearn: labels equal and probabilities equal the offline model's" in smoke

"""The Dagger module (src/ml_cicd), offline: registration, container shapes and the identical DAG.

No engine runs here. Registration is read the way Dagger's Python runtime reads it
(``dagger.mod.cli.load_module()`` with the runtime's environment variables), once from this
project's venv and once from a fresh venv built from the root ``pyproject.toml`` (slow: pip
installs it, cached under ``.cache/ml-cicd-tests``). Container shapes are read from the lazy
query objects (``obj._ctx.selections``), a private API of the pinned ``dagger-io``.
``TestWithEngine`` needs the dagger CLI and an engine: ``pytest -m dagger`` on such a machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import dagger
import pytest
from dagger import dag

from pipeline.dag import steps
from tests.conftest import REPO

MAIN_OBJECT = "MlCicd"
MODULE_NAME = "ml-cicd"
PACKAGE = "ml_cicd"
# Dagger functions that run no step of pipeline/dag.py themselves: they compose the step functions
# or move published images. Anything else must be a step of the host runner's table.
COMPOSITE = {"artifacts", "publish", "promote", "rollback", "retrain", "full_pipeline"}
CHECKS = {"lint", "test", "validate"}
SIDE_EFFECTS = {"publish", "promote", "rollback", "retrain", "full_pipeline"}
PIPELINE_ARGS = ("source", "champion", "champion_image", "full", "revision")
RETURNS = {
    "lint": "str",
    "test": "str",
    "validate": "str",
    "train": "Directory",
    "evaluate": "File",
    "gate": "File",
    "report": "str",
    "artifacts": "Directory",
    "build_image": "Container",
    "smoke_test": "str",
    "publish": "str",
    "promote": "str",
    "rollback": "str",
    "retrain": "str",
    "full_pipeline": "str",
}
MUST_IGNORE = {".git", ".venv", "out", "registry", "**/__pycache__", ".cache"}
CACHE = REPO / ".cache" / "ml-cicd-tests"

# Run inside the venv under test: load the module like the runtime, print every function as JSON.
DESCRIBE = """
import json, os
from dagger.mod._utils import get_parent_module_doc
from dagger.mod.cli import get_entry_point, load_module

def kind(t):
    text = t.__name__ if isinstance(t, type) else str(t)
    return text.replace("dagger.client.gen.", "").replace("dagger.", "")

def arg(p):
    default = None if p.default_value is None else json.loads(p.default_value)
    return {"doc": p.doc, "type": kind(p.resolved_type), "default": default, "has_default": p.has_default,
            "optional": p.is_optional, "default_path": p.default_path, "ignore": p.ignore}

main = load_module().get_object(os.environ["DAGGER_MAIN_OBJECT"])
print(json.dumps({
    "entry_point": get_entry_point().value,
    "class": f"{main.cls.__module__}.{main.cls.__name__}",
    "description": get_parent_module_doc(main.cls),
    "constructor": {p.name: arg(p) for p in main.get_constructor().parameters.values()},
    "functions": {
        name: {"doc": fn.doc, "check": fn.check, "cache": fn.cache_policy, "returns": kind(fn.return_type),
               "args": {p.name: arg(p) for p in fn.parameters.values()}}
        for name, fn in main.functions.items() if name
    },
}))
"""


# --- helpers ---------------------------------------------------------------------------------


def _calls(obj: Any) -> list[Any]:
    """Return the lazy query's selections: one per chained call (name, args)."""
    return list(obj._ctx.selections)


def _execs(ctr: dagger.Container) -> list[list[str]]:
    return [call.args["args"] for call in _calls(ctr) if call.name == "withExec"]


def _index(calls: list[Any], call: str, /, **args: Any) -> int:
    """Return the position of the first ``call`` whose arguments include ``args``."""
    for i, each in enumerate(calls):
        if each.name == call and all(each.args.get(k) == v for k, v in args.items()):
            return i
    raise AssertionError(f"no {call}({args}) in {[c.name for c in calls]}")


def _pin(package: str) -> str:
    for line in (REPO / "requirements-dev.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"requirements-dev.txt pins no {package}")


def _describe(python: Path, cwd: Path, pythonpath: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"DAGGER_MAIN_OBJECT": MAIN_OBJECT, "DAGGER_MODULE": MODULE_NAME}
    env["DAGGER_DEFAULT_PYTHON_PACKAGE"] = PACKAGE
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [str(python), "-c", DESCRIBE], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"loading the module like the runtime failed:\n{done.stderr}"
    described: dict[str, Any] = json.loads(done.stdout)
    return described


def _fresh_venv() -> Path:
    """Return a venv with ``pip install -e .`` of the root project and the pinned dagger-io (cached)."""
    pin = _pin("dagger-io")
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + pin.encode() + sys.version.encode())
    venv = CACHE / f"module-venv-{key.hexdigest()[:16]}"
    if (venv / "ready").exists():
        return venv
    building = CACHE / f"building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True, timeout=300)
    install = [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet", "-e", str(REPO)]
    done = subprocess.run([*install, f"dagger-io=={pin}"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"pip install -e . failed:\n{done.stderr[-3000:]}"
    (building / "ready").write_text(pin)
    if venv.exists():  # another session finished first
        shutil.rmtree(building, ignore_errors=True)
    else:
        building.rename(venv)
    return venv


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ml() -> ModuleType:
    """Import src/ml_cicd/main.py in-process (src/ is not on the path of the project's venv)."""
    src = str(REPO / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    return importlib.import_module(f"{PACKAGE}.main")


@pytest.fixture(scope="module")
def containers(ml: ModuleType) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}._containers")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("project-venv", id="project-venv"),
        pytest.param("fresh-venv", id="fresh-venv", marks=pytest.mark.slow),
    ],
)
def described(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The module as the runtime loads it: from this venv (src/ on PYTHONPATH) or a fresh one."""
    cwd = tmp_path_factory.mktemp("describe")
    if request.param == "project-venv":
        return _describe(Path(sys.executable), cwd, str(REPO / "src"))
    venv = _fresh_venv()
    described = _describe(venv / "bin" / "python", cwd, None)
    described["fresh_venv"] = True
    return described


# --- registration ----------------------------------------------------------------------------


class TestRegistration:
    def test_main_object_and_entry_point_match_pyproject_and_dagger_json(
        self, described: dict[str, Any]
    ) -> None:
        # given the manifest and the project
        manifest = json.loads((REPO / "dagger.json").read_text())
        project = tomllib.loads((REPO / "pyproject.toml").read_text())
        entry = project["project"]["entry-points"]["dagger.mod"]["main_object"]
        # then the runtime finds the class the manifest's name implies
        pascal = "".join(part.capitalize() for part in re.split(r"[-_]", manifest["name"]))
        assert pascal == MAIN_OBJECT, f"dagger.json name {manifest['name']!r} implies {pascal}"
        assert described["class"] == f"{PACKAGE}.main.{MAIN_OBJECT}", described["class"]
        assert entry == f"{PACKAGE}.main:{MAIN_OBJECT}", f"pyproject entry point {entry!r}"
        expected = entry if described.get("fresh_venv") else f"{PACKAGE}:{MAIN_OBJECT}"
        assert described["entry_point"] == expected, "runtime did not load the module through its entry point"

    def test_module_description_is_one_short_first_line(self, described: dict[str, Any]) -> None:
        first = (described["description"] or "").splitlines()[0]
        assert first.endswith(".") and len(first) <= 110, f"`dagger functions` would show {first!r}"

    def test_every_function_is_registered_with_its_return_type(self, described: dict[str, Any]) -> None:
        functions = described["functions"]
        returns = {name: fn["returns"] for name, fn in functions.items()}
        assert returns == RETURNS, f"functions or return types differ: {returns}"

    def test_each_function_has_a_one_line_imperative_docstring(self, described: dict[str, Any]) -> None:
        for name, fn in described["functions"].items():
            first = (fn["doc"] or "").splitlines()[0] if fn["doc"] else ""
            assert first.endswith("."), f"{name}: docstring {first!r} must be one sentence ending with '.'"
            assert not first.split()[0].endswith("s"), f"{name}: {first!r} is not imperative"

    def test_every_argument_and_the_constructor_are_documented(self, described: dict[str, Any]) -> None:
        args = [
            (f"{name}.{arg}", spec)
            for name, fn in described["functions"].items()
            for arg, spec in fn["args"].items()
        ]
        args += [(f"constructor.{arg}", spec) for arg, spec in described["constructor"].items()]
        undocumented = [name for name, spec in args if not spec["doc"]]
        assert not undocumented, f"arguments without Doc: {undocumented}"
        assert described["constructor"]["ca_bundle"]["type"] == "File | None"

    def test_source_defaults_to_the_repo_root_without_local_clutter(self, described: dict[str, Any]) -> None:
        with_source = {
            name: fn["args"]["source"]
            for name, fn in described["functions"].items()
            if "source" in fn["args"]
        }
        assert set(with_source) == set(RETURNS) - {"promote", "rollback"}, sorted(with_source)
        for name, source in with_source.items():
            assert source["type"] == "Directory" and source["default_path"] == "/", f"{name}: {source}"
            missing = MUST_IGNORE - set(source["ignore"] or [])
            assert not missing, f"{name}: source does not ignore {sorted(missing)}"

    def test_pipeline_functions_share_arguments_and_defaults(self, described: dict[str, Any]) -> None:
        functions = described["functions"]
        for name in ("gate", "report", "artifacts", "build_image", "smoke_test", "full_pipeline"):
            args = functions[name]["args"]
            assert tuple(args)[: len(PIPELINE_ARGS)] == PIPELINE_ARGS, f"{name}: {tuple(args)}"
            assert args["champion"]["type"] == "Directory | None" and args["champion"]["default"] is None
            assert args["champion_image"]["default"] == "" and args["full"]["default"] is False
        assert functions["train"]["args"]["full"]["default"] is False

    def test_checks_are_lint_test_validate_and_need_no_arguments(self, described: dict[str, Any]) -> None:
        functions = described["functions"]
        assert {name for name, fn in functions.items() if fn["check"]} == CHECKS
        for name in CHECKS:
            required = [arg for arg, spec in functions[name]["args"].items() if not spec["optional"]]
            assert not required, f"check {name} needs {required}"

    def test_side_effects_are_never_cached(self, described: dict[str, Any]) -> None:
        policies = {name: fn["cache"] for name, fn in described["functions"].items()}
        assert {name for name, cache in policies.items() if cache == "never"} == SIDE_EFFECTS, policies
        assert all(policies[name] is None for name in set(policies) - SIDE_EFFECTS), policies

    def test_credentials_are_secrets_and_production_needs_approval(self, described: dict[str, Any]) -> None:
        functions = described["functions"]
        for name in ("publish", "promote", "rollback", "retrain", "full_pipeline"):
            password = functions[name]["args"]["registry_password"]
            assert password["type"] == "Secret | None", f"{name}: password is {password['type']}"
        for name, tag in (("promote", "staging"), ("rollback", "production")):
            args = functions[name]["args"]
            assert args["tag"]["default"] == tag and args["approve"]["default"] is False, f"{name}: {args}"
        assert not functions["publish"]["args"]["revision"]["optional"], "publish must require --revision"


# --- container shapes ------------------------------------------------------------------------


class TestContainers:
    def test_step_image_is_a_python_3_11_or_3_12_slim_pinned_by_digest(
        self, ml: ModuleType, containers: ModuleType
    ) -> None:
        # given a step container
        calls = _calls(ml.MlCicd()._validate(dag.directory(), None))
        # then it starts from the pinned image
        image = calls[_index(calls, "from")].args["address"]
        assert image == containers.PYTHON_IMAGE
        assert re.fullmatch(r"python:3\.1[12](\.\d+)?-slim@sha256:[0-9a-f]{64}", image), image

    def test_pip_cache_volume_is_named_per_tool_and_python_version(
        self, ml: ModuleType, containers: ModuleType
    ) -> None:
        calls = _calls(ml.MlCicd()._validate(dag.directory(), None))
        mount = calls[_index(calls, "withMountedCache", path="/root/.cache/pip")]
        key = _calls(mount.args["cache"])[-1].args["key"]
        minor = re.match(r"python:(\d+\.\d+)", containers.PYTHON_IMAGE)
        assert minor is not None
        assert "pip" in key and minor.group(1) in key, (
            f"cache volume {key!r} should name pip and {minor.group(1)}"
        )

    def test_requirements_are_installed_before_the_source_is_added(
        self, ml: ModuleType, containers: ModuleType
    ) -> None:
        # given a step container
        calls = _calls(ml.MlCicd()._train(dag.directory(), None))
        # when the requirement files, the install and the source copy are located
        files = [_index(calls, "withFile", path=f"/src/{name}") for name in containers.REQUIREMENTS]
        install = _index(calls, "withExec", args=list(containers.INSTALL))
        source = _index(calls, "withDirectory", path="/src")
        # then only requirement files precede the install, and the code comes after it
        assert max(files) < install < source, f"order: files {files}, install {install}, source {source}"
        assert set(containers.REQUIREMENTS) == {p.name for p in REPO.glob("requirements*.txt")}

    def test_lint_marks_the_repository_root_for_actionlint(self, ml: ModuleType) -> None:
        calls = _calls(ml.MlCicd()._lint(dag.directory(), None))
        assert _index(calls, "withDirectory", path="/src") < _index(calls, "withDirectory", path="/src/.git")

    def test_workdir_is_src_before_any_exec(self, ml: ModuleType) -> None:
        calls = _calls(ml.MlCicd()._lint(dag.directory(), None))
        workdir = _index(calls, "withWorkdir", path="/src")
        first_exec = _index(calls, "withExec")
        assert workdir < first_exec

    def test_ca_bundle_is_a_secret_mounted_only_for_the_install(
        self, ml: ModuleType, containers: ModuleType
    ) -> None:
        # given a CA bundle secret
        ca = dag.set_secret(containers.CA_SECRET, "-----BEGIN CERTIFICATE-----")
        calls = _calls(ml.MlCicd()._evaluate(dag.directory(), ca))
        # then it is mounted as a secret with PIP_CERT around the install exec, and removed after it
        mount = _index(calls, "withMountedSecret", path=containers.CA_PATH)
        assert isinstance(calls[mount].args["source"], dagger.Secret)
        cert = _index(calls, "withEnvVariable", name="PIP_CERT", value=containers.CA_PATH)
        install = _index(calls, "withExec", args=list(containers.INSTALL))
        unset = _index(calls, "withoutEnvVariable", name="PIP_CERT")
        unmount = _index(calls, "withoutMount", path=containers.CA_PATH)
        assert mount < install and cert < install < unset < unmount < _index(
            calls, "withDirectory", path="/src"
        )
        copies = [c.args["path"] for c in calls if c.name in {"withFile", "withNewFile"}]
        assert all("ca" not in Path(path).name for path in copies), f"CA bundle copied as a file: {copies}"

    def test_without_a_ca_bundle_nothing_is_mounted(self, ml: ModuleType) -> None:
        names = [c.name for c in _calls(ml.MlCicd()._evaluate(dag.directory(), None))]
        assert "withMountedSecret" not in names and "withoutMount" not in names

    def test_artefacts_arrive_at_the_host_runners_paths(self, ml: ModuleType) -> None:
        # given a champion directory
        champion = dag.directory()
        calls = _calls(ml.MlCicd()._gate(dag.directory(), None, champion=champion))
        # then validate's and evaluate's out/ and the champion land where the host runner puts them
        outs = [i for i, c in enumerate(calls) if c.name == "withDirectory" and c.args["path"] == "/src/out"]
        assert len(outs) == 2, f"gate should get validate's and evaluate's out/, got {len(outs)}"
        placed = calls[_index(calls, "withDirectory", path="/src/out/champion")]
        assert placed.args["source"] is champion
        assert max(outs) < _index(calls, "withDirectory", path="/src/out/champion") < len(calls) - 1

    def test_without_a_champion_gate_finds_no_champion_directory(self, ml: ModuleType) -> None:
        paths = [c.args.get("path") for c in _calls(ml.MlCicd()._gate(dag.directory(), None))]
        assert "/src/out/champion" not in paths

    def test_champion_image_is_read_at_the_serving_model_path(self, ml: ModuleType) -> None:
        calls = _calls(ml._champion(None, "registry.example/acme/churn:production"))
        assert [(c.name, c.args) for c in calls[1:]] == [
            ("from", {"address": "registry.example/acme/churn:production"}),
            ("directory", {"path": "/app/model"}),
        ]

    def test_champion_directory_and_image_together_are_refused(self, ml: ModuleType) -> None:
        with pytest.raises(ValueError, match="either --champion or --champion-image"):
            ml._champion(dag.directory(), "registry.example/acme/churn:production")

    def test_full_training_adds_the_full_flag(self, ml: ModuleType) -> None:
        assert _execs(ml.MlCicd()._train(dag.directory(), None, full=True))[-1][-1] == "--full"

    def test_image_is_built_from_the_dockerfile_with_the_gated_model(
        self, ml: ModuleType, containers: ModuleType
    ) -> None:
        # given a CA secret and a revision
        ca = dag.set_secret(containers.CA_SECRET, "pem")
        calls = _calls(ml.MlCicd()._image(dag.directory(), ca, revision="abc123"))
        # then the model goes into the build context at out/model and the build gets args and the secret
        assert _index(calls, "withDirectory", path="out/model") < _index(calls, "dockerBuild")
        build = calls[_index(calls, "dockerBuild")]
        args = {arg["name"]: arg["value"] for arg in build.args["buildArgs"]}
        assert args == {"BASE_IMAGE": containers.PYTHON_IMAGE, "MODEL_DIR": "out/model", "REVISION": "abc123"}
        assert [type(s) for s in build.args["secrets"]] == [dagger.Secret]

    def test_smoke_test_reaches_the_image_as_service_model_on_8080(self, ml: ModuleType) -> None:
        calls = _calls(ml.MlCicd()._smoke_test(dag.directory(), None))
        binding = calls[_index(calls, "withServiceBinding", alias="model")]
        service = [(c.name, c.args) for c in _calls(binding.args["service"])[-2:]]
        assert service == [("withExposedPort", {"port": 8080}), ("asService", {"useEntrypoint": True})]

    def test_registry_credentials_are_passed_as_secrets(self, containers: ModuleType) -> None:
        password = dag.set_secret("token", "s3cret")
        auth = containers.registry_auth("ghcr.io/acme/churn", "bot", password)
        calls = _calls(dag.container().with_(auth))
        attached = calls[_index(calls, "withRegistryAuth", address="ghcr.io/acme/churn", username="bot")]
        assert attached.args["secret"] is password
        assert "withRegistryAuth" not in [
            c.name for c in _calls(dag.container().with_(containers.registry_auth("a", "", None)))
        ]

    @pytest.mark.parametrize(
        ("ref", "repo"),
        [
            ("ghcr.io/acme/churn:abc", "ghcr.io/acme/churn"),
            ("ghcr.io/acme/churn@sha256:" + "a" * 64, "ghcr.io/acme/churn"),
            ("localhost:5000/churn:v1", "localhost:5000/churn"),
            ("localhost:5000/churn", "localhost:5000/churn"),
        ],
    )
    def test_repository_strips_tag_and_digest(self, containers: ModuleType, ref: str, repo: str) -> None:
        assert containers.repository(ref) == repo

    def test_production_tag_needs_an_explicit_approval(self, ml: ModuleType) -> None:
        with pytest.raises(ValueError, match="needs --approve"):
            asyncio.run(ml._move_tag("ghcr.io/acme/churn:abc", "production", False, "", None))


# --- the identical DAG -----------------------------------------------------------------------


class TestIdenticalDag:
    def test_steps_and_functions_correspond_one_to_one(self, ml: ModuleType) -> None:
        # given the host runner's table and the registered functions
        table = {step.name: step for step in steps("configs/pipeline.toml", "out", "http://model:8080")}
        functions = set(ml.MlCicd.__dagger_object_type__.functions) - {""}
        # then every step the module runs is a function, and every function is a step or composite
        in_dagger = {name for name, step in table.items() if not step.host_only}
        assert in_dagger <= functions, f"steps without a Dagger function: {sorted(in_dagger - functions)}"
        stray = functions - set(table) - COMPOSITE
        assert not stray, f"Dagger functions that are no step of pipeline/dag.py: {sorted(stray)}"
        assert not COMPOSITE & set(table), "a composite function shadows a step"

    def test_each_step_execs_the_host_runners_argv(self, ml: ModuleType, containers: ModuleType) -> None:
        # given every step the Dagger module runs, rendered as the host runner renders it
        table = steps(config="configs/pipeline.toml", out="out", url="http://model:8080")
        for step in (s for s in table if not s.host_only):
            # when that function's lazy container is built offline
            execs = _execs(getattr(ml.MlCicd(), f"_{step.name}")(dag.directory(), None))
            # then after the one dependency install it runs exactly the step's commands
            assert execs[0] == list(containers.INSTALL), f"{step.name}: first exec {execs[0]}"
            expected = [list(command) for command in step.commands]
            assert execs[1:] == expected, f"{step.name}: Dagger runs {execs[1:]}, host runner {expected}"


# --- with a real engine ----------------------------------------------------------------------


@pytest.mark.dagger
@pytest.mark.skipif(shutil.which("dagger") is None, reason="needs the dagger CLI and a container engine")
class TestWithEngine:
    """Real `dagger` calls against this repository (run with `pytest -m dagger` where Dagger exists)."""

    @staticmethod
    def _dagger(*args: str, timeout: int = 3600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["dagger", "--progress=plain", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
        )

    def test_functions_are_listed(self) -> None:
        done = self._dagger("functions")
        assert done.returncode == 0, done.stderr
        for name in RETURNS:
            assert name.replace("_", "-") in done.stdout, f"{name} missing from `dagger functions`"

    def test_checks_pass(self) -> None:
        done = self._dagger("check")
        assert done.returncode == 0, done.stderr[-3000:]

    def test_artifacts_export_the_report_and_model(self, tmp_path: Path) -> None:
        done = self._dagger("call", "artifacts", "--source=.", "export", f"--path={tmp_path / 'out'}")
        assert done.returncode == 0, done.stderr[-3000:]
        for name in ("report.md", "metrics.json", "gates.json", "model/metadata.json"):
            assert (tmp_path / "out" / name).is_file(), f"{name} not exported"

    def test_full_pipeline_prints_the_report(self) -> None:
        done = self._dagger("call", "full-pipeline", "--source=.")
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.lstrip().startswith("#"), done.stdout[:500]

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
import importlib.metadata
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

from model.artifact import read_metadata
from model.codec import read_record
from model.records import Metrics
from pipeline.core.labels import LABEL_ARGS, image_labels
from pipeline.dag import steps
from tests.conftest import REPO, Project, dump_toml
from tests.dagger.registry import PASSWORD, USER, serve

MAIN_OBJECT = "MlCicd"
MODULE_NAME = "ml-cicd"
PACKAGE = "ml_cicd"
# Dagger functions that run no step of pipeline/dag.py themselves: they compose the step functions
# or move published images. Anything else must be a step of the host runner's table.
COMPOSITE = {"artifacts", "publish", "promote", "rollback", "retrain", "full_pipeline", "step"}
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
    "step": "Container",
    "version": "str",
    "dev_checks": "str",
}
TOOL_FUNCTIONS = {"version", "dev_checks"}  # about ml-cicd itself: no step, no --source
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


def _readme_cache_policy() -> dict[str, str | None]:
    """Return the README's cache table ("Dagger", "Cache policy") as function -> policy (None: default)."""
    section = (REPO / "README.md").read_text().split("**Cache policy.**", 1)[1].split("\n\n")[1]
    policy: dict[str, str | None] = {}
    for row in section.splitlines()[2:]:
        functions, cache = row.split("|")[1:3]
        value = cache.strip().strip("`")
        policy |= dict.fromkeys(re.findall(r"`(\w+)`", functions), None if value == "default" else value)
    return policy


def _requirement(entry: dict[str, Any]) -> str:
    """Render a uv.lock ``requires-dist`` entry the way package metadata writes it."""
    extras = f"[{','.join(entry['extras'])}]" if entry.get("extras") else ""
    return f"{entry['name']}{extras}{entry.get('specifier', '')}"


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


@pytest.fixture(scope="module")
def spec(ml: ModuleType) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.spec")


@pytest.fixture(scope="module")
def lock() -> dict[str, Any]:
    return tomllib.loads((REPO / "uv.lock").read_text())


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


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
        assert set(with_source) == set(RETURNS) - {"promote", "rollback"} - TOOL_FUNCTIONS, sorted(
            with_source
        )
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

    def test_cache_policy_is_the_readmes_table(self, described: dict[str, Any]) -> None:
        # given the policy each function registers and the README's table
        policies = {name: fn["cache"] for name, fn in described["functions"].items()}
        # then they agree, side effects are never cached and nothing taking a tag keeps the default
        assert policies == _readme_cache_policy(), policies
        assert {name for name, cache in policies.items() if cache == "never"} == SIDE_EFFECTS, policies
        for name, fn in described["functions"].items():
            if "champion_image" in fn["args"]:
                assert policies[name] in {"session", "never"}, (
                    f"{name} takes a moving tag but caches for days"
                )

    def test_credentials_are_module_options_and_production_needs_approval(
        self, described: dict[str, Any]
    ) -> None:
        # given the constructor and the functions
        constructor, functions = described["constructor"], described["functions"]
        # then the credentials are given once, to the module, the password as a secret
        assert constructor["registry_password"]["type"] == "Secret | None", constructor["registry_password"]
        assert constructor["registry_username"]["default"] == ""
        assert constructor["champion_platform"]["default"] == "linux/amd64"
        with_credentials = [name for name, fn in functions.items() if "registry_password" in fn["args"]]
        assert not with_credentials, f"functions still taking credentials: {with_credentials}"
        for name, tag in (("promote", "staging"), ("rollback", "production")):
            args = functions[name]["args"]
            assert args["tag"]["default"] == tag and args["approve"]["default"] is False, f"{name}: {args}"
        assert not functions["publish"]["args"]["revision"]["optional"], "publish must require --revision"


class TestLockfile:
    """uv.lock is what Dagger's Python runtime installs the module from (uv sync)."""

    @staticmethod
    def _package(lock: dict[str, Any], name: str) -> dict[str, Any]:
        found = [p for p in lock["package"] if p["name"] == name]
        assert len(found) == 1, f"uv.lock has {len(found)} entries for {name}"
        return found[0]

    def test_lock_records_the_projects_python_and_dependencies(
        self, lock: dict[str, Any], project: dict[str, Any]
    ) -> None:
        # given the lock and pyproject.toml
        root = self._package(lock, project["project"]["name"])
        # then the lock was made from this pyproject: same Python range, same direct dependencies
        assert lock["version"] == 1 and lock["requires-python"] == project["project"]["requires-python"]
        assert root["source"] == {"editable": "."}
        sources = project["tool"]["uv"]["sources"]
        expected = []
        extras = [
            (req, extra)
            for extra, reqs in project["project"]["optional-dependencies"].items()
            for req in reqs
        ]
        for requirement, extra in [(req, None) for req in project["project"]["dependencies"]] + extras:
            name, specifier = re.match(r"([A-Za-z0-9_.-]+)(.*)", requirement).groups()  # type: ignore[union-attr]
            pinned = {"editable": sources[name]["path"]} if name in sources else {"specifier": specifier}
            marker = {} if extra is None else {"marker": f"extra == '{extra}'"}
            expected.append({"name": name} | marker | pinned)
        expected.sort(key=lambda entry: entry["name"])
        assert root["metadata"]["requires-dist"] == expected, (
            "uv.lock is stale: run `uv lock` (README, 'Lockfile')"
        )

    def test_sdk_is_the_vendored_editable_one_with_the_pinned_sdks_dependencies(
        self, lock: dict[str, Any], project: dict[str, Any]
    ) -> None:
        # given the locked dagger-io and the pinned SDK installed in this venv
        sdk = self._package(lock, "dagger-io")
        assert project["tool"]["uv"]["sources"]["dagger-io"] == {"path": "sdk", "editable": True}
        assert sdk["source"] == {"editable": "sdk"}
        locked = {_requirement(entry) for entry in sdk["metadata"]["requires-dist"]}
        pinned = {re.sub(r"\s|;.*", "", r) for r in importlib.metadata.requires("dagger-io") or []}
        # then the lock was resolved for that SDK's requirements, and each one is locked
        assert importlib.metadata.version("dagger-io") == _pin("dagger-io")
        assert locked == pinned, f"locked for another SDK: {sorted(locked ^ pinned)}"
        names = {p["name"] for p in lock["package"]}
        missing = {re.split(r"[\[<>=!~]", r)[0] for r in pinned} - names
        assert not missing, f"uv.lock has no entry for {sorted(missing)}"

    def test_lock_is_part_of_the_module_and_sdk_is_not(self) -> None:
        include = json.loads((REPO / "dagger.json").read_text())["include"]
        assert "!uv.lock" not in include and "!sdk" in include
        assert (REPO / ".gitignore").read_text().count("sdk") >= 1


# --- container shapes# --- container shapes ------------------------------------------------------------------------


class TestContainers:
    def test_steps_image_and_runtime_share_one_python_pinned_by_index_digest(
        self, ml: ModuleType, spec: ModuleType, project: dict[str, Any]
    ) -> None:
        # given a step container, the Dockerfile and pyproject.toml
        calls = _calls(ml.MlCicd()._chain("validate", dag.directory(), None))
        image = calls[_index(calls, "from")].args["address"]
        dockerfile = re.search(r"^ARG BASE_IMAGE=(\S+)$", (REPO / "Dockerfile").read_text(), re.M)
        assert dockerfile is not None
        # then steps, serving image and the module's runtime start from one Python 3.13 slim, by digest
        assert image == spec.PYTHON_IMAGE == dockerfile.group(1) == project["tool"]["dagger"]["base-image"]
        assert re.fullmatch(r"python:3\.13\.\d+-slim-trixie@sha256:[0-9a-f]{64}", image), image
        assert spec.PYTHON_VERSION == "3.13" and image.startswith(f"python:{spec.PYTHON_VERSION}.")
        # and the stand-in built here is of the same Debian release and Python minor
        assert spec.STAND_IN == "local/python:3.13-trixie"
        engine = (REPO / "scripts" / "docker-engine.sh").read_text()
        assert "RELEASE=trixie" in engine and "local/python:3.13-$RELEASE" in engine

    def test_pip_cache_volume_is_named_per_tool_and_python_version(self, ml: ModuleType) -> None:
        calls = _calls(ml.MlCicd()._chain("validate", dag.directory(), None))
        mount = calls[_index(calls, "withMountedCache", path="/root/.cache/pip")]
        key = _calls(mount.args["cache"])[-1].args["key"]
        assert key == "ml-cicd-pip-python3.13", f"cache volume {key!r} should name pip and 3.13"

    def test_the_tool_comes_from_the_modules_source_and_only_the_project_from_source(
        self, ml: ModuleType, spec: ModuleType
    ) -> None:
        # given a step container built with a --source directory
        project = dag.directory()
        calls = _calls(ml.MlCicd()._chain("train", project, None))
        # when the requirement files, the install, ml-cicd's code and the project are located
        files = [_index(calls, "withFile", path=f"{spec.TOOL_DIR}/{name}") for name in spec.REQUIREMENTS]
        install = _index(calls, "withExec", args=list(spec.INSTALL))
        code = [_index(calls, "withDirectory", path=f"{spec.TOOL_DIR}/{name}") for name in spec.TOOL_CODE]
        source = _index(calls, "withDirectory", path="/src")
        # then requirements, install, code, project, in that order (a code or project change reuses the install)
        assert max(files) < install < min(code) and max(code) < source, (files, install, code, source)
        assert set(spec.REQUIREMENTS) == {p.name for p in REPO.glob("requirements*.txt")}
        # and every file of ml-cicd's is the module's own source, never the caller's --source
        for index in (*files, *code):
            chain = [c.name for c in _calls(calls[index].args["source"])]
            assert chain[:2] == ["currentModule", "source"], chain
        # and --source is used once: as the project at /src (config, data, tests, lint settings)
        uses = [c for c in calls if c.name in ("withDirectory", "withFile") and c.args["source"] is project]
        assert [c.args["path"] for c in uses] == ["/src"]
        # and steps import ml-cicd's code, never a package of the project's of the same name
        env = {c.args["name"]: c.args["value"] for c in calls if c.name == "withEnvVariable"}
        assert env["PYTHONPATH"] == spec.TOOL_DIR
        assert _execs(ml.MlCicd()._chain("train", project, None))[-1][:3] == ["python", "-P", "-m"]

    def test_lint_marks_the_repository_root_for_actionlint(self, ml: ModuleType) -> None:
        calls = _calls(ml.MlCicd()._chain("lint", dag.directory(), None))
        assert _index(calls, "withDirectory", path="/src") < _index(calls, "withDirectory", path="/src/.git")

    def test_workdir_is_src_before_any_step_exec(self, ml: ModuleType, spec: ModuleType) -> None:
        calls = _calls(ml.MlCicd()._chain("lint", dag.directory(), None))
        install = _index(calls, "withExec", args=list(spec.INSTALL))
        workdirs = [i for i, c in enumerate(calls) if c.name == "withWorkdir"]
        assert calls[workdirs[0]].args["path"] == spec.TOOL_DIR and workdirs[0] < install
        assert calls[workdirs[-1]].args["path"] == "/src" and install < workdirs[-1]
        apt = _index(calls, "withExec", args=list(spec.APT_INSTALL))
        execs = [i for i, c in enumerate(calls) if c.name == "withExec" and i not in (apt, install)]
        assert apt < workdirs[0] and execs and min(execs) > workdirs[-1]

    def test_ca_bundle_is_a_secret_mounted_only_for_the_install(
        self, ml: ModuleType, spec: ModuleType
    ) -> None:
        # given a CA bundle secret
        ca = dag.set_secret(spec.CA_SECRET, "-----BEGIN CERTIFICATE-----")
        calls = _calls(ml.MlCicd()._chain("evaluate", dag.directory(), ca))
        # then it is mounted as a secret with PIP_CERT around the install exec, and removed after it
        mount = _index(calls, "withMountedSecret", path=spec.CA_PATH)
        assert isinstance(calls[mount].args["source"], dagger.Secret)
        cert = _index(calls, "withEnvVariable", name="PIP_CERT", value=spec.CA_PATH)
        install = _index(calls, "withExec", args=list(spec.INSTALL))
        unset = _index(calls, "withoutEnvVariable", name="PIP_CERT")
        unmount = _index(calls, "withoutMount", path=spec.CA_PATH)
        assert mount < install and cert < install < unset < unmount < _index(
            calls, "withDirectory", path="/src"
        )
        copies = [c.args["path"] for c in calls if c.name in {"withFile", "withNewFile"}]
        assert all("ca" not in Path(path).name for path in copies), f"CA bundle copied as a file: {copies}"

    def test_without_a_ca_bundle_nothing_is_mounted(self, ml: ModuleType) -> None:
        names = [c.name for c in _calls(ml.MlCicd()._chain("evaluate", dag.directory(), None))]
        assert "withMountedSecret" not in names and "withoutMount" not in names

    def test_artefacts_arrive_at_the_host_runners_paths(self, ml: ModuleType) -> None:
        # given a champion directory
        champion = dag.directory()
        calls = _calls(ml.MlCicd()._chain("gate", dag.directory(), None, champion=champion))
        # then validate's and evaluate's out/ and the champion land where the host runner puts them
        outs = [i for i, c in enumerate(calls) if c.name == "withDirectory" and c.args["path"] == "/src/out"]
        assert len(outs) == 2, f"gate should get validate's and evaluate's out/, got {len(outs)}"
        placed = calls[_index(calls, "withDirectory", path="/src/out/champion")]
        assert placed.args["source"] is champion
        assert max(outs) < _index(calls, "withDirectory", path="/src/out/champion") < len(calls) - 1

    def test_without_a_champion_gate_finds_no_champion_directory(self, ml: ModuleType) -> None:
        paths = [c.args.get("path") for c in _calls(ml.MlCicd()._chain("gate", dag.directory(), None))]
        assert "/src/out/champion" not in paths

    def test_champion_image_is_pulled_for_amd64_and_read_at_the_serving_model_path(
        self, ml: ModuleType
    ) -> None:
        # given no credentials
        calls = _calls(ml.MlCicd()._champion(None, "registry.example/acme/churn:production"))
        # then the pull is for linux/amd64 whatever the engine's platform, and only /app/model is read
        assert [(c.name, c.args) for c in calls] == [
            ("container", {"platform": "linux/amd64"}),
            ("from", {"address": "registry.example/acme/churn:production"}),
            ("directory", {"path": "/app/model"}),
        ]

    def test_private_champion_is_pulled_with_the_credentials_attached_first(self, ml: ModuleType) -> None:
        # given module credentials and another platform
        password = dag.set_secret("token", "s3cret")
        module = ml.MlCicd(
            registry_username="bot", registry_password=password, champion_platform="linux/arm64"
        )
        calls = _calls(module._champion(None, "ghcr.io/acme/churn:production"))
        # then the credentials are registered before the pull, which is for the platform asked
        assert calls[0].args == {"platform": "linux/arm64"}
        auth = _index(calls, "withRegistryAuth", address="ghcr.io/acme/churn:production", username="bot")
        assert calls[auth].args["secret"] is password
        assert auth < _index(calls, "from", address="ghcr.io/acme/churn:production")

    def test_champion_directory_and_image_together_are_refused(self, ml: ModuleType) -> None:
        with pytest.raises(ValueError, match="either --champion or --champion-image"):
            ml.MlCicd()._champion(dag.directory(), "registry.example/acme/churn:production")

    def test_full_training_adds_the_full_flag(self, ml: ModuleType) -> None:
        assert _execs(ml.MlCicd()._chain("train", dag.directory(), None, full=True))[-1][-1] == "--full"

    def test_image_is_built_for_amd64_from_the_dockerfile_with_the_gated_model_and_its_labels(
        self, ml: ModuleType, spec: ModuleType
    ) -> None:
        # given a CA secret, a model directory and its labels
        ca = dag.set_secret(spec.CA_SECRET, "pem")
        model, inputs = dag.directory(), dag.directory()
        labels = {"REVISION": "abc123", "MODEL_SHA256": "f" * 64}
        calls = _calls(ml.MlCicd()._build(ca, model, labels, inputs=inputs))
        # then the context is ml-cicd's Dockerfile, serving requirements and model/ from the module's own
        # source (never --source), then the model at out/model, then what the model adds merged at the
        # context's root; the build gets args and the secret
        placed = _index(calls, "withDirectory", path="out/model")
        merged = _index(calls, "withDirectory", path=".")
        assert calls[placed].args["source"] is model and calls[merged].args["source"] is inputs
        assert placed < merged < _index(calls, "dockerBuild")
        assert [c.name for c in calls][:2] == ["directory", "withFile"]
        taken = {
            c.args["path"]: _calls(c.args["source"])
            for c in calls
            if c.name in ("withFile", "withDirectory") and c.args["path"] not in ("out/model", ".")
        }
        assert set(taken) == {"Dockerfile", *spec.SERVE_REQUIREMENTS, "model"}
        for path, chain in taken.items():
            assert [c.name for c in chain[:2]] == ["currentModule", "source"], f"{path} from {chain}"
        build = calls[_index(calls, "dockerBuild")]
        args = {arg["name"]: arg["value"] for arg in build.args["buildArgs"]}
        assert args == {"BASE_IMAGE": spec.PYTHON_IMAGE, "MODEL_DIR": "out/model"} | labels
        assert [type(s) for s in build.args["secrets"]] == [dagger.Secret]
        # and for linux/amd64, what production runs, whatever the engine's own platform
        assert build.args["platform"] == "linux/amd64"

    def test_the_models_image_inputs_are_written_where_the_gate_ran_with_the_host_argv(
        self, ml: ModuleType, containers: ModuleType, spec: ModuleType
    ) -> None:
        # given the gate step's container of a call with the team's config
        gated = ml.MlCicd(config="ml/ml-cicd.toml")._chain("gate", dag.directory(), None)
        # when the model's image inputs are taken from it
        calls = _calls(containers.model_inputs(gated, "ml/ml-cicd.toml"))
        # then the gate's container runs `pipeline image inputs` with that config after the gate's own argv,
        # and the directory it wrote is what the build gets
        execs = [c.args["args"] for c in calls if c.name == "withExec"]
        assert execs[-2] == list(spec.commands(spec.step("gate"), config="ml/ml-cicd.toml")[0])
        assert execs[-1] == list(spec.image_inputs("ml/ml-cicd.toml"))
        assert execs[-1][:7] == ["python", "-P", "-m", "pipeline", "image", "inputs", "--config"]
        assert calls[-1].name == "directory" and calls[-1].args["path"] == spec.MODEL_INPUTS

    def test_more_platforms_are_one_build_each_and_one_publish_with_variants(
        self, ml: ModuleType, spec: ModuleType
    ) -> None:
        # given the module asked for two platforms
        module = ml.MlCicd(platforms="linux/amd64,linux/arm64")
        builds = [
            module._build(None, dag.directory(), {}, platform)
            for platform in spec.platforms(module.platforms)
        ]
        # then each build is for its platform, amd64 first (the one smoke-tested)
        chosen = [_calls(b)[_index(_calls(b), "dockerBuild")].args["platform"] for b in builds]
        assert chosen == ["linux/amd64", "linux/arm64"]
        # and a malformed list is refused with what was expected
        with pytest.raises(ValueError, match="comma-separated list such as linux/amd64,linux/arm64"):
            spec.platforms("amd64")

    def test_publish_pushes_every_platform_as_one_image(self, ml: ModuleType) -> None:
        # given two per-platform images, the publish of the first carries the second as a variant
        module = ml.MlCicd()
        first, second = dag.container(), dag.container()
        captured: dict[str, Any] = {}

        async def publish(address: str, platform_variants: list[Any] | None = None) -> str:
            captured.update(address=address, variants=platform_variants)
            return f"{address}@sha256:{'0' * 64}"

        first.publish = publish  # type: ignore[method-assign]
        first.with_ = lambda build: first  # type: ignore[method-assign]
        asyncio.run(module._publish([first, second], "r.example/acme/churn", "abc"))
        assert captured == {"address": "r.example/acme/churn:abc", "variants": [second]}

    def test_smoke_test_reaches_the_image_as_service_model_on_8080(self, ml: ModuleType) -> None:
        ctr = ml.MlCicd()._before(
            "smoke_test", dag.directory(), None, {"gate": dag.directory()}, service=dag.container()
        )
        calls = _calls(ctr)
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
    def test_repository_strips_tag_and_digest(self, spec: ModuleType, ref: str, repo: str) -> None:
        assert spec.repository(ref) == repo

    def test_production_tag_needs_an_explicit_approval(self, ml: ModuleType) -> None:
        with pytest.raises(ValueError, match="needs --approve"):
            asyncio.run(ml.MlCicd()._move_tag("ghcr.io/acme/churn:abc", "production", False))

    def test_tag_mover_copies_the_published_manifest_with_the_password_as_a_secret(
        self, containers: ModuleType, spec: ModuleType
    ) -> None:
        # given a tag move with credentials
        password = dag.set_secret("token", "s3cret")
        image, target = "ghcr.io/acme/churn@sha256:" + "a" * 64, "ghcr.io/acme/churn:production"
        calls = _calls(containers.tag_mover(image, target, "bot", password, "call-1"))
        # then Debian's skopeo (the upstream release pinned) runs the script with the references as variables
        assert calls[_index(calls, "from")].args["address"] == spec.PYTHON_IMAGE
        install = calls[_index(calls, "withExec")].args["args"][-1]
        assert f"'{containers.SKOPEO}'" in install and re.fullmatch(
            r"skopeo=\d+\.\d+\.\d+\+ds1-\*", containers.SKOPEO
        )
        env = {c.args["name"]: c.args["value"] for c in calls if c.name == "withEnvVariable"}
        assert env == {
            "IMAGE": image,
            "REPOSITORY": "ghcr.io/acme/churn",
            "TARGET": target,
            "REGISTRY_USERNAME": "bot",
            "ML_CICD_CALL": "call-1",
        }
        secret = calls[_index(calls, "withSecretVariable", name="REGISTRY_PASSWORD")]
        assert secret.args["secret"] is password
        assert calls[-1].name == "withExec" and calls[-1].args["args"] == ["bash", "-c", containers.MOVE_TAG]
        assert "skopeo copy --all --preserve-digests" in containers.MOVE_TAG
        assert "s3cret" not in json.dumps([str(c.args) for c in calls])

    def test_the_tag_move_exec_carries_an_input_that_differs_on_every_call(
        self, ml: ModuleType, containers: ModuleType
    ) -> None:
        # given the same promote asked for twice (same image, tag and credentials)
        seen: list[list[Any]] = []

        def record(*args: Any) -> Any:
            mover = containers.tag_mover(*args)
            seen.append(_calls(mover))
            raise RuntimeError("stop before the engine")

        module = ml.MlCicd()
        original = ml.tag_mover
        ml.tag_mover = record
        try:
            for _ in range(2):
                with pytest.raises(RuntimeError, match="stop before the engine"):
                    asyncio.run(module._move_tag("r.example/acme/churn:abc", "staging", False))
        finally:
            ml.tag_mover = original
        # then the move's exec differs between the two calls only by the per-call input set just before it,
        # so the engine cannot answer the second from its cache of the first
        first, second = ([(c.name, c.args) for c in calls] for calls in seen)
        differ = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b]
        assert len(differ) == 1, f"calls differ at {differ}"
        name, args = first[differ[0]]
        assert name == "withEnvVariable" and args["name"] == "ML_CICD_CALL"
        assert differ[0] == len(first) - 2 and first[-1][0] == "withExec"

    def test_tag_mover_without_a_password_sets_no_secret(self, containers: ModuleType) -> None:
        calls = _calls(containers.tag_mover("r.example/a:b", "r.example/a:staging", "", None, "c"))
        assert "withSecretVariable" not in [c.name for c in calls]

    def test_step_returns_the_container_after_its_commands_whatever_they_exit(self, ml: ModuleType) -> None:
        # given the container `dagger call step --name=gate ... terminal` would open
        ctr = asyncio.run(ml.MlCicd().step("gate", dag.directory()))
        calls = _calls(ctr)
        # then the gate ran last, with any exit code, so a failed gate still leaves its shell and out/
        assert calls[-1].name == "withExec" and calls[-1].args["args"][:5] == [
            "python",
            "-P",
            "-m",
            "pipeline",
            "gate",
        ]
        assert calls[-1].args["expect"] == "ANY"
        with pytest.raises(KeyError, match="no step 'gates'; steps are lint, test"):
            asyncio.run(ml.MlCicd().step("gates", dag.directory()))


class TestOutcomes:
    """What a call returns or raises for each outcome of the gate step (no engine needed)."""

    REPORT = "# Model report: FAILED\n\nroc_auc 0.61 < 0.75\n"
    PASSED = json.dumps({"passed": True, "publishable": True, "gates": []})
    NOT_PASSED = json.dumps({"passed": False, "publishable": False, "gates": []})

    @pytest.mark.parametrize(
        ("name", "code", "line"),
        [
            ("gate", 1, "the gate step exited 1: the candidate did not pass its required gates"),
            ("gate", 2, "the gate step exited 2: bad input or config, no verdict on the model"),
            ("lint", 1, "the lint step failed (exit 1)"),
            ("smoke_test", 1, "the smoke_test step failed (exit 1)"),
        ],
    )
    def test_the_failure_line_says_what_the_exit_code_means(
        self, ml: ModuleType, name: str, code: int, line: str
    ) -> None:
        assert ml.failure_line(name, code) == line

    def test_retrain_publishes_a_better_candidate(self, ml: ModuleType) -> None:
        assert ml.retrain_outcome(0, self.PASSED, self.REPORT) is None  # go on: build, smoke-test, publish

    def test_retrain_not_better_succeeds_with_the_report_and_publishes_nothing(self, ml: ModuleType) -> None:
        result = ml.retrain_outcome(1, self.NOT_PASSED, self.REPORT)
        assert result is not None and result.startswith(self.REPORT) and "Not better, not published" in result

    def test_retrain_publishes_nothing_when_the_check_passed_with_a_warning(self, ml: ModuleType) -> None:
        # given the gate's exit 0 with an inconclusive no_regression that the "warn" rule passed
        warned = json.dumps(
            {
                "passed": True,
                "publishable": False,
                "gates": [{"name": "no_regression", "status": "inconclusive", "required": True}],
            }
        )

        # when
        result = ml.retrain_outcome(0, warned, self.REPORT)

        # then: the call succeeds with the report and a line naming what stopped the publish
        assert result is not None and result.startswith(self.REPORT)
        assert "Not published" in result and "no_regression inconclusive" in result

    @pytest.mark.parametrize(
        ("code", "gates", "why"),
        [
            (
                1,
                None,
                "exited 1: the candidate did not pass its required gates with no gates.json",
            ),  # a crash
            (2, NOT_PASSED, "exited 2: bad input or config"),
            (2, None, "exited 2"),
            (1, PASSED, "gates.json says passed=True"),
            (0, NOT_PASSED, "gates.json says passed=False"),
            (1, "{not json", "gates.json says passed=None"),
        ],
    )
    def test_retrain_without_a_verdict_fails_the_call(
        self, ml: ModuleType, code: int, gates: str | None, why: str
    ) -> None:
        with pytest.raises(ml.GateFailed, match=re.escape(why)) as raised:
            ml.retrain_outcome(code, gates, self.REPORT)
        assert str(raised.value).startswith(self.REPORT) and "nothing published" in str(raised.value)

    def test_a_failed_steps_reason_is_its_last_error_line(self, ml: ModuleType) -> None:
        output = "loading\nerror: column 'x' has 20.0% nulls\nTraceback...\nsomething else\n"
        assert ml.error_line(output) == "column 'x' has 20.0% nulls"
        assert ml.error_line("a\nlast line\n") == "last line" and ml.error_line("") == "no output"

    def test_a_ca_bundle_over_the_secret_limit_is_refused_with_its_size(self, containers: ModuleType) -> None:
        system_sized = "-----BEGIN CERTIFICATE-----\n" + "A" * 219_597
        with pytest.raises(
            ValueError, match=r"--ca-bundle is 219,625 bytes; a Dagger secret holds at most 128,000"
        ):
            containers.ca_secret(system_sized)
        assert isinstance(containers.ca_secret("-----BEGIN CERTIFICATE-----\n"), dagger.Secret)


class TestLabels:
    """Images built by the engine carry the labels the host build sets."""

    def test_module_labels_equal_the_host_builds_on_a_trained_model(
        self, spec: ModuleType, trained: dict[str, Project]
    ) -> None:
        # given a model trained and evaluated by the real CLI
        out = trained["good"].out
        metadata = read_metadata(out / "model")
        metrics = read_record(out / Metrics.FILE, Metrics)
        # when both sides compute the labels (the module from the JSON files it reads in the engine)
        host = image_labels(metadata, metrics, None, "c0ffee", "https://github.com/acme/churn")
        module = spec.image_labels(
            json.loads((out / "model" / "metadata.json").read_text()),
            json.loads((out / Metrics.FILE).read_text()),
            "c0ffee",
            "https://github.com/acme/churn",
        )
        # then they are equal, complete and non-trivial
        assert module == host
        assert tuple(host) == LABEL_ARGS
        assert host["MODEL_SHA256"] == metadata.model_sha256 and "roc_auc=" in host["MODEL_METRICS"]
        assert host["CREATED"] == metadata.created_at

    def test_without_a_revision_both_fall_back_to_the_models_commit(
        self, spec: ModuleType, trained: dict[str, Project]
    ) -> None:
        out = trained["good"].out
        metadata = read_metadata(out / "model")
        raw = json.loads((out / "model" / "metadata.json").read_text())
        host = image_labels(metadata, None, None, "", "")
        assert spec.image_labels(raw, None, "", "") == host
        assert host["REVISION"] == (metadata.git_commit or "unknown") and host["MODEL_METRICS"] == ""

    def test_every_label_argument_reaches_a_label_in_the_dockerfile(self) -> None:
        dockerfile = (REPO / "Dockerfile").read_text()
        final = dockerfile.rsplit("\nFROM ", 1)[1]
        for name in LABEL_ARGS:
            assert re.search(rf"^ARG {name}(=|$)", final, re.M), f"the final stage declares no ARG {name}"
            assert f"${{{name}}}" in final.split("LABEL", 1)[1], f"no LABEL uses {name}"


# --- the identical DAG# --- the identical DAG -----------------------------------------------------------------------


class TestIdenticalDag:
    def test_steps_and_functions_correspond_one_to_one(self, ml: ModuleType) -> None:
        # given the host runner's table and the registered functions
        table = {step.name: step for step in steps("ml-cicd.toml", "out", "http://model:8080")}
        functions = set(ml.MlCicd.__dagger_object_type__.functions) - {""}
        # then every step the module runs is a function, and every function is a step or composite
        in_dagger = {name for name, step in table.items() if not step.host_only}
        assert in_dagger <= functions, f"steps without a Dagger function: {sorted(in_dagger - functions)}"
        stray = functions - set(table) - COMPOSITE - TOOL_FUNCTIONS
        assert not stray, f"Dagger functions that are no step of pipeline/dag.py: {sorted(stray)}"
        assert not COMPOSITE & set(table), "a composite function shadows a step"

    def test_each_step_execs_the_host_runners_argv(self, ml: ModuleType, spec: ModuleType) -> None:
        # given every step the Dagger module runs, rendered as the host runner renders it
        table = steps(config="ml-cicd.toml", out="out", url="http://model:8080")
        module = {s.name for s in spec.STEPS}
        for step in (s for s in table if not s.host_only and s.name != "build_image"):
            assert step.name in module, f"{step.name}: no step container in src/ml_cicd/spec.py"
            # when that step's container is built offline (its inputs as empty directories)
            inputs = {need: dag.directory() for need in spec.step(step.name).inputs}
            ctr = ml.MlCicd()._before(step.name, dag.directory(), None, inputs, service=dag.container())
            execs = _execs(ctr.with_(ml.run(spec.commands(spec.step(step.name)))))
            # then after the system packages and the one dependency install it runs exactly the step's commands
            assert execs[:2] == [list(spec.APT_INSTALL), list(spec.INSTALL)], (
                f"{step.name}: first execs {execs[:2]}"
            )
            expected = [list(command) for command in step.commands]
            assert execs[2:] == expected, f"{step.name}: Dagger runs {execs[2:]}, host runner {expected}"
            assert step.in_run == (step.name not in {"lint", "test"})

    def test_the_report_gets_every_steps_outcome_after_the_host_runners_argv(
        self, ml: ModuleType, spec: ModuleType
    ) -> None:
        # given a run where the gate failed
        ran = ml.Ran({"lint": ("ok", 0, ""), "gate": ("failed", 1, "no_regression failed")})
        ctr = ml.MlCicd()._report(ran, dag.directory(), None)
        report = _execs(ctr)[-1]
        host = next(s for s in steps() if s.name == "report").commands[0]
        # then the report runs the host runner's argv, then one --step per step of the DAG, in order
        assert tuple(report[: len(host)]) == host
        flags = report[len(host) :]
        assert flags[::2] == ["--step"] * 8
        named = [flag.split("=", 1)[0] for flag in flags[1::2]]
        assert named == ["lint", "test", "validate", "train", "evaluate", "gate", "build_image", "smoke_test"]
        assert "gate=failed:1:no_regression failed" in flags
        assert "train=skipped:0:stopped after a failure" in flags

    def test_the_modules_config_reaches_every_steps_argv(self, ml: ModuleType, spec: ModuleType) -> None:
        # given the module called with another config (a path inside --source)
        module = ml.MlCicd(config="ml/clinic.toml")
        table = {s.name: s for s in steps(config="ml/clinic.toml", out="out", url="http://model:8080")}
        for name in ("lint", "test", "validate", "train", "evaluate", "gate"):
            # when the step's container is built offline
            execs = _execs(module._chain(name, dag.directory(), None))
            # then its commands are the host runner's with that config, lint and test the project's checks
            assert execs[-1] == list(table[name].commands[-1]), name
        assert table["lint"].commands == (
            ("python", "-P", "-m", "pipeline", "checks", "lint", "--config", "ml/clinic.toml"),
        )
        assert table["test"].commands == (
            ("python", "-P", "-m", "pipeline", "checks", "test", "--config", "ml/clinic.toml"),
        )


# --- with a real engine ----------------------------------------------------------------------


@pytest.mark.dagger
@pytest.mark.skipif(shutil.which("dagger") is None, reason="needs the dagger CLI and a container engine")
class TestWithEngine:
    """Real `dagger` calls against this repository (run with `pytest -m dagger` where Dagger exists).

    The private-champion test starts a registry on the host's 127.0.0.1 (Debian's docker-registry,
    htpasswd auth): the engine must share the host's network to reach it (an engine container run
    with ``--network host`` and ``_EXPERIMENTAL_DAGGER_RUNNER_HOST=docker-container://<name>``); the
    engine speaks plain HTTP to loopback registries (engine/server/registryhosts.go, MatchLocalhost).
    """

    @staticmethod
    def _dagger(
        *args: str, timeout: int = 3600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["dagger", "--progress=plain", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=os.environ | (env or {}),
        )

    @staticmethod
    def _project_copy(root: Path, threshold: float | None = None) -> Path:
        """Copy the tracked files of this repository under ``root``; optionally raise the first metric gate."""
        files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
        for name in files.stdout.splitlines():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
        if threshold is not None:
            config = root / "ml-cicd.toml"
            raw = tomllib.loads(config.read_text())
            raw["gates"]["metric"][0]["threshold"] = threshold
            config.write_text(dump_toml(raw))
        return root

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

    def test_failed_gate_fails_the_call_and_shows_the_report(self, tmp_path: Path) -> None:
        # given a project whose first metric gate cannot be met
        source = self._project_copy(tmp_path / "project", threshold=0.999)
        # when the whole pipeline runs
        done = self._dagger("call", "full-pipeline", f"--source={source}")
        # then the call fails, and what it prints is the report naming the gate, then the exit line
        assert done.returncode != 0, done.stdout[-2000:]
        shown = done.stdout + done.stderr
        assert "# " in shown and "0.999" in shown, shown[-3000:]
        assert "the gate step exited 1: the candidate did not pass its required gates" in shown
        # and the artefacts (report included) are still there from a second call
        out = tmp_path / "out"
        exported = self._dagger("call", "artifacts", f"--source={source}", "export", f"--path={out}")
        assert exported.returncode == 0 and "FAILED" in (out / "report.md").read_text()

    def test_retrain_with_bad_data_fails_and_publishes_nothing(self, tmp_path: Path) -> None:
        # given a table that is not the configured schema (semicolons, one column)
        bad = tmp_path / "new_churn.csv"
        bad.write_text("customer_id;tenure_months;churned\nc1;5;1\nc2;x;0\n")
        # when retrain is asked to publish it
        done = self._dagger(
            "call",
            "retrain",
            "--source=.",
            "--address=127.0.0.1:9/nowhere",
            "--revision=retrain-test",
            f"--data={bad}",
        )
        # then the call fails: bad data is no "not better" verdict
        assert done.returncode != 0, done.stdout[-2000:]
        assert "Not published" not in done.stdout and "Published" not in done.stdout

    def test_champion_from_a_private_image_on_loopback(self, tmp_path: Path) -> None:
        with serve(tmp_path / "registry") as registry:
            creds = [
                "--registry-username",
                USER,
                "--registry-password",
                "env://ML_CICD_TEST_REGISTRY_PASSWORD",
            ]
            secret = {"ML_CICD_TEST_REGISTRY_PASSWORD": PASSWORD}
            address = f"{registry.host}/acme/churn"
            # given a champion published to a registry that needs credentials
            published = self._dagger(
                *("call", *creds, "publish", "--source=.", f"--address={address}", "--revision=champion"),
                env=secret,
            )
            assert published.returncode == 0, published.stderr[-3000:]
            assert "@sha256:" in published.stdout
            # when the gate takes it by tag, with the module's credentials
            gates = tmp_path / "gates.json"
            gate = ("gate", "--source=.", f"--champion-image={address}:champion", "export", f"--path={gates}")
            done = self._dagger("call", *creds, *gate, env=secret)
            # then it was pulled and compared on rows it never trained on
            assert done.returncode == 0, done.stderr[-3000:]
            champion = json.loads(gates.read_text())["champion"]
            assert champion is not None and champion["rows"] > 0, champion
            # and without the credentials the pull is refused
            refused = self._dagger("call", *gate)
            assert refused.returncode != 0

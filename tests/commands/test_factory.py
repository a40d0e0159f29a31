"""The team's own estimator (``[model] factory``) in another team's repository, through the real commands.

The repository is ``tests/conftest.py``'s ``factory_repo``: the clinic's biopsy table, their own
top-level ``model/`` and ``pipeline/`` packages, and ``clinic_ml/`` with a factory returning a
``Pipeline`` around a transformer class of theirs (``Roundness``). Commands run as a user runs them:
``python -P -m pipeline`` in a child process started in the repository, ml-cicd on ``PYTHONPATH``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import DataError
from pipeline.io import docker as engine
from pipeline.steps.model_inputs import (
    MODEL_REQUIREMENTS,
    NATIVE_PACKAGES,
    SYSTEM_PACKAGES,
    TEAM_DIR,
    write_model_inputs,
)
from tests.commands.test_image import _require_engine
from tests.conftest import (
    CLINIC_CODE,
    FACTORY,
    FOREIGN_TABLE,
    REPO,
    factory_repo,
    read_metadata,
    use_factory,
)

STAND_IN = "local/python:3.13-trixie"


def _ml(team: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -P -m pipeline ARGS`` in ``team`` as a user would (ml-cicd importable, nothing of the team's)."""
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ML_CICD_RUN")}
    full = {**base, "PYTHONPATH": str(REPO), **(env or {})}
    argv = [sys.executable, "-P", "-m", "pipeline", *args]
    return subprocess.run(argv, cwd=team, env=full, capture_output=True, text=True, check=False)


def _onboarded(root: Path, factory: bool = True) -> Path:
    team = factory_repo(root)
    done = _ml(team, "init", FOREIGN_TABLE, "--target", "diagnosis", "--ci", "none")
    assert done.returncode == 0, done.stderr
    if factory:
        use_factory(team / "ml-cicd.toml")
    return team


def _statuses(team: Path) -> dict[str, str]:
    run = json.loads((team / "out" / "run.json").read_text())
    return {step["name"]: step["status"] for step in run["steps"]}


@pytest.mark.slow
def test_a_factory_model_trains_gates_against_a_champion_of_another_kind_and_records_the_teams_code(
    tmp_path: Path,
) -> None:
    # given another team's repository whose first model (init's random forest) is the registered champion
    team = _onboarded(tmp_path / "clinic", factory=False)
    first = _ml(team, "run", "--image", "never")
    assert first.returncode == 0, first.stderr[-3000:]
    promoted = _ml(team, "registry", "promote", "1", "--to", "production", "--approver", "clinic-lead")
    assert promoted.returncode == 0, promoted.stderr
    # when the config names their factory instead, and the pipeline runs again
    use_factory(team / "ml-cicd.toml")
    done = _ml(team, "run", "--image", "never")
    # then it passes, and the champion gate measured the factory's model against the random forest
    assert done.returncode == 0, done.stderr[-3000:]
    gates = json.loads((team / "out" / "gates.json").read_text())
    champion = next(g for g in gates["gates"] if g["name"] == "no_regression")
    # (on 142 held-out rows a 0.003 ROC AUC difference may honestly be undecided: init's config reports that)
    assert champion["status"] in ("passed", "inconclusive") and champion["observed"] is not None, champion
    assert "champion 0.9" in champion["message"], champion
    assert read_metadata(team / "out" / "champion").kind == "random_forest"
    # and the artefact records the factory, the team's modules with the files' sha256, and the libraries
    metadata = read_metadata(team / "out" / "model")
    assert metadata.kind == "factory" and metadata.needs is not None and metadata.needs.factory == FACTORY
    assert {"clinic_ml.factory", "clinic_ml.transforms"} <= set(metadata.needs.modules)
    recorded = {f.path: f.sha256 for f in metadata.needs.files}
    assert recorded == {name: hashlib.sha256((team / name).read_bytes()).hexdigest() for name in CLINIC_CODE}
    assert set(metadata.needs.libraries) == {"numpy", "scikit-learn"}
    # and the report names the factory as the model
    assert f"factory {FACTORY}" in (team / "out" / "report.md").read_text()
    # and the pickle holds the team's transformer under its module name
    assert b"clinic_ml.transforms" in (team / "out" / "model" / "model.joblib").read_bytes()


@pytest.mark.slow
def test_the_teams_code_is_part_of_the_training_steps_key_and_a_model_without_it_is_one_line(
    tmp_path: Path,
) -> None:
    # given a factory repository that ran once (the train step stored in the cache)
    team = _onboarded(tmp_path / "clinic")
    assert _ml(team, "run", "--image", "never", "--skip", "lint,test").returncode == 0
    again = _ml(team, "run", "--image", "never", "--skip", "lint,test")
    assert again.returncode == 0 and _statuses(team)["train"] == "cached", again.stderr[-2000:]
    # when the team changes their transformer's code
    path = team / "clinic_ml" / "transforms.py"
    path.write_text(path.read_text().replace("4 * np.pi", "4.0 * np.pi"))
    changed = _ml(team, "run", "--image", "never", "--skip", "lint,test")
    # then training runs again (the model would otherwise be the old code's), and the record has the new hash
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert _statuses(team)["train"] == "ok"
    metadata = read_metadata(team / "out" / "model")
    assert metadata.needs is not None
    recorded = {f.path: f.sha256 for f in metadata.needs.files}
    assert recorded["clinic_ml/transforms.py"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # and the model served where the team's code is not gives one line naming the module, exit 2
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(team / "out" / "model", elsewhere / "model")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(REPO)}
    served = subprocess.run(
        [sys.executable, "-P", "-m", "model", "--model-dir", str(elsewhere / "model"), "--port", "0"],
        cwd=elsewhere,
        env={**env, "MODEL_WORKERS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = served.stderr.strip().splitlines()
    assert served.returncode == 2 and len(lines) == 1, served.stderr
    assert "needs the team's module 'clinic_ml'" in lines[0] and "clinic_ml/transforms.py" in lines[0]
    assert "Traceback" not in served.stderr


FACTORIES = {
    "kind_too": ('kind = "random_forest"\n', "model.kind and model.factory both say which estimator to fit"),
    "ml_cicds_name": ('factory = "model/est.py:build"\n', "starts with 'model', ml-cicd's own package"),
    "stdlib_name": ('factory = "json/est.py:build"\n', "starts with 'json', a standard library module"),
    "missing_file": ('factory = "clinic_ml/nothing.py:build"\n', "nothing.py: no such file"),
    "missing_function": (
        'factory = "clinic_ml/factory.py:make"\n',
        "clinic_ml.factory has no function 'make'",
    ),
    "bad_shape": ('factory = "clinic_ml/factory.py"\n', "is not 'path/to/file.py:function'"),
}


@pytest.mark.parametrize("case", sorted(FACTORIES))
def test_a_bad_factory_line_is_one_line_naming_it_before_any_work(tmp_path: Path, case: str) -> None:
    # given the factory repository and a [model] table that gets the factory wrong
    team = _onboarded(tmp_path / "clinic")
    line, expected = FACTORIES[case]
    config, factory_line = team / "ml-cicd.toml", f'factory = "{FACTORY}"\n'
    replacement = line + factory_line if case == "kind_too" else line
    config.write_text(config.read_text().replace(factory_line, replacement))
    # when training starts
    done = _ml(team, "train")
    # then it stops with one line naming the problem, exit 2, and writes nothing
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert expected in lines[0] and not (team / "out" / "model").exists()


RETURNS = {
    "not_an_estimator": (
        "    return {'model': 'forest'}\n",
        "returned dict, which lacks fit, predict, get_params",
    ),
    "raises": ("    raise KeyError('max_depth')\n", "raised KeyError: 'max_depth'"),
    "no_proba": (
        "    from sklearn.svm import LinearSVC\n    return LinearSVC()\n",
        "returned LinearSVC, which has no predict_proba; roc_auc score(s) probabilities",
    ),
}


@pytest.mark.parametrize("case", sorted(RETURNS))
def test_a_factory_that_does_not_give_a_usable_estimator_is_one_line(tmp_path: Path, case: str) -> None:
    # given a factory whose function returns something unusable (or raises)
    team = _onboarded(tmp_path / "clinic")
    body, expected = RETURNS[case]
    (team / "clinic_ml" / "other.py").write_text(
        f"def build(numeric, categorical, boolean, task, params):\n{body}"
    )
    config = team / "ml-cicd.toml"
    config.write_text(config.read_text().replace(FACTORY, "clinic_ml/other.py:build"))
    # when the pipeline's training starts
    done = _ml(team, "train")
    # then one line names the factory and what is wrong, exit 2
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "model.factory" in lines[0] and expected in lines[0]


def test_image_inputs_copy_the_teams_files_pin_missing_libraries_and_refuse_changed_code(
    tmp_path: Path,
) -> None:
    # given a factory model trained in the team's repository
    team = _onboarded(tmp_path / "clinic")
    assert _ml(team, "train").returncode == 0
    metadata = read_metadata(team / "out" / "model")
    # when the sklearn flavour's inputs are written
    pins = write_model_inputs(metadata, team, tmp_path / "ctx", "sklearn")
    # then team/ holds the team's files at their project paths, and nothing needs installing on top
    copied = sorted(
        p.relative_to(tmp_path / "ctx" / TEAM_DIR).as_posix()
        for p in (tmp_path / "ctx" / TEAM_DIR).rglob("*.py")
    )
    assert copied == sorted(CLINIC_CODE) and pins == []
    assert (tmp_path / "ctx" / MODEL_REQUIREMENTS).read_text() == ""
    # and the lean flavour takes none of them (ONNX Runtime serves; nothing is unpickled)
    write_model_inputs(metadata, team, tmp_path / "lean", "onnx")
    assert list((tmp_path / "lean" / TEAM_DIR).iterdir()) == []
    # and a model of a library the image lacks pins it, with the system package its wheel links
    needs = metadata.needs
    assert needs is not None
    boosted = type(metadata)(
        **{**metadata.__dict__, "needs": type(needs)(None, (), (), {"lightgbm": "4.7.0", "numpy": "2.4.6"})}
    )
    assert write_model_inputs(boosted, team, tmp_path / "boost", "sklearn") == ["lightgbm==4.7.0"]
    assert (tmp_path / "boost" / SYSTEM_PACKAGES).read_text().split() == list(NATIVE_PACKAGES["lightgbm"])
    # and a team file changed since training is refused: the image would serve code never gated
    (team / "clinic_ml" / "transforms.py").write_text("# rewritten\n")
    with pytest.raises(DataError, match=r"clinic_ml/transforms\.py: changed since the model was trained"):
        write_model_inputs(metadata, team, tmp_path / "stale", "sklearn")


def test_the_images_system_package_pins_are_the_step_containers() -> None:
    sys.path.insert(0, str(REPO / "src"))
    try:
        from ml_cicd.spec import SYSTEM_PACKAGES as STEP_PACKAGES
    finally:
        sys.path.remove(str(REPO / "src"))
    assert set(NATIVE_PACKAGES["lightgbm"]) <= set(STEP_PACKAGES)


@pytest.mark.docker
@pytest.mark.slow
def test_a_factory_model_is_served_from_its_sklearn_image_with_the_teams_code_and_passes_the_smoke_test(
    tmp_path: Path,
) -> None:
    # given a Docker engine and the team's factory repository
    _require_engine()
    team = _onboarded(tmp_path / "clinic")
    # when the whole pipeline runs, the serving image built
    base = os.environ.get("ML_CICD_BASE_IMAGE") or STAND_IN
    done = _ml(team, "run", "--image", "always", env={"ML_CICD_BASE_IMAGE": base})
    # then every step passed, the smoke test among them: the served answers equal the offline model's
    assert done.returncode == 0, done.stderr[-4000:]
    assert _statuses(team)["smoke_test"] == "ok"
    smoke = (team / "out" / "logs" / "smoke_test.log").read_text()
    assert "served by sklearn: labels equal and probabilities equal the offline model's" in smoke
    # and the image is the sklearn flavour, with the team's files where its PYTHONPATH finds them
    built = json.loads((team / "out" / "image.json").read_text())
    assert built["flavour"] == "sklearn"
    listed = subprocess.run(
        [
            engine.docker_bin(),
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            built["tag"],
            "-c",
            "cd /app/team && find . -name '*.py' | sort && echo $PYTHONPATH",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert listed == [f"./{name}" for name in sorted(CLINIC_CODE)] + ["/app/src:/app/team"]


def test_only_the_teams_packages_a_model_refers_to_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a project with two packages of the team's loaded: one defines a transformer, one is unrelated
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from pipeline.steps.needs import model_needs

    for package, text in {
        "shapes": "from sklearn.preprocessing import FunctionTransformer\n\n\nclass Shape(FunctionTransformer):\n    pass\n",
        "notebooks": "VALUE = 1\n",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    shapes = importlib.import_module("shapes")
    importlib.import_module("notebooks")
    try:
        # when a model with only scikit-learn's classes, then one with the team's, are recorded
        plain = model_needs(make_pipeline(LogisticRegression()), tmp_path, None)
        own = model_needs(make_pipeline(shapes.Shape(), LogisticRegression()), tmp_path, "x.py:build")
    finally:
        for name in ("shapes", "notebooks"):
            sys.modules.pop(name, None)
    # then the first needs none of the team's code, the second only the package its class is in
    assert plain.modules == () and plain.files == () and "scikit-learn" in plain.libraries
    assert own.modules == ("shapes",) and [f.path for f in own.files] == ["shapes/__init__.py"]


def test_the_modules_of_a_large_model_are_found_without_keeping_its_bytes() -> None:
    # given an object whose pickle hands large buffers straight to the file (protocol 5)
    import numpy as np

    from pipeline.steps.needs import pickled_modules

    big = {"weights": np.zeros(2_000_000), "shape": np.ones((3, 3))}
    # then its modules are found (numpy's), the large buffers counted, not kept
    assert any(name.startswith("numpy") for name in pickled_modules(big))

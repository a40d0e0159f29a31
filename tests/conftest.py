"""Shared fixtures: the one seeded-project builder, and models trained through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from model.artifact import read_metadata
from model.codec import write_record
from model.records import Feature, Metrics, ModelMetadata, Result, SplitRule, Status
from pipeline.cli import main
from pipeline.core.synth import churn_frame
from pipeline.records import DriftLimits, FeatureDrift, Gates
from pipeline.render.toml import toml_key, toml_value

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "ml-cicd.toml"
Edit = Callable[[dict[str, Any]], None]


def pytest_configure(config: pytest.Config) -> None:
    """Keep ONNX Runtime's usage telemetry off, and no outer run's id, in every test and process it starts.

    The suite's own runs make their own ids, whoever started pytest (the host runner gives its test
    step none either; ``pipeline/runner/scheduler.py``).
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    os.environ.pop("ML_CICD_RUN", None)
    # artefacts are signed with a key of the test session's own, never the user's (model/signing.py)
    os.environ.pop("ML_CICD_SIGNING_KEY", None)
    os.environ["ML_CICD_SIGNING_KEY_FILE"] = os.path.join(
        tempfile.mkdtemp(prefix="ml-cicd-key-"), "signing-key"
    )


@dataclass(frozen=True)
class Project:
    """A config file and its data, all under one temp directory."""

    root: Path
    config: Path
    data: Path
    reference: Path
    out: Path

    def cli(self, *args: str) -> list[str]:
        """Return argv for ``python -m pipeline`` with this project's --config and --out."""
        return [args[0], "--config", str(self.config), *args[1:], "--out", str(self.out)]


@dataclass(frozen=True)
class Trained:
    """A model artefact written by ``python -m pipeline train`` and its held-out rows."""

    model_dir: Path
    holdout: Path

    def features(self) -> pd.DataFrame:
        """Return the held-out rows' feature columns in the model's order."""
        return pd.read_parquet(self.holdout)[read_metadata(self.model_dir).feature_names]


# One churn row as a client sends it to the model server (JSON scalars; a missing value is null).
CHURN_RECORD: dict[str, Any] = {
    "tenure_months": 5,
    "monthly_charges": 89.5,
    "total_charges": None,
    "contract": "month_to_month",
    "internet_service": "fiber",
    "payment_method": "card",
    "support_calls": 3,
    "has_partner": False,
    "region": "north",
}


def dump_toml(data: dict[str, Any]) -> str:
    """Serialise nested dicts (and arrays of tables) as TOML; enough for test configs."""
    lines: list[str] = []

    def emit(table: dict[str, Any], prefix: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)}
        if prefix and (scalars or not table):
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
        for key, value in table.items():
            name = f"{prefix}.{toml_key(key)}" if prefix else toml_key(key)
            if isinstance(value, dict):
                emit(value, name)
            elif _is_table_array(value):
                for item in value:
                    lines.append(f"[[{name}]]")
                    lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in item.items())

    emit(data, "")
    return "\n".join(lines) + "\n"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def repo_config_text(where: Path, repo: Path = REPO) -> str:
    """Return ``repo``'s ml-cicd.toml, comments kept, for a copy written under ``where``.

    Its table and drift reference are named absolutely (a config's relative paths are its own
    directory's) and its registry is ``where/registry``.
    """
    text = (repo / "ml-cicd.toml").read_text().replace('path = "registry"', f'path = "{where / "registry"}"')
    for name in ("data/churn.csv", "data/churn_reference.csv"):
        text = text.replace(f'"{name}"', f'"{repo / name}"')
    return text


def default_config_dict() -> dict[str, Any]:
    """Return the repo's default config as a dict (a fresh copy each call)."""
    return tomllib.loads(DEFAULT_CONFIG.read_text())


def write_project(
    root: Path, rows: int = 800, seed: int = 3, frame: pd.DataFrame | None = None, edit: Edit | None = None
) -> Project:
    """Write a seeded churn table, a drift reference and a config under ``root`` (any fixture scope).

    ``frame`` replaces the table; ``edit`` changes the config dict in place before it is written.
    Tests measure latency on a few rows only (``gates.latency.samples``).
    """
    root.mkdir(parents=True, exist_ok=True)
    project = Project(root, root / "pipeline.toml", root / "data.csv", root / "reference.csv", root / "out")
    (churn_frame(rows, seed) if frame is None else frame).to_csv(project.data, index=False)
    churn_frame(rows, seed + 100).to_csv(project.reference, index=False)
    raw = default_config_dict()
    raw["data"]["path"] = str(project.data)
    raw["drift"]["reference"] = str(project.reference)
    raw["registry"]["path"] = str(root / "registry")
    raw["schema"]["min_rows"] = 50
    raw["training"]["sample_rows"] = 0
    raw["gates"]["latency"].update(samples=20)
    if edit is not None:
        edit(raw)
    project.config.write_text(dump_toml(raw))
    return project


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    """Return ``write_project`` rooted at ``tmp_path/<name>`` (keyword ``config`` is the edit)."""

    def factory(
        rows: int = 800, seed: int = 3, frame: Any = None, config: Edit | None = None, name: str = "project"
    ) -> Project:
        return write_project(tmp_path / name, rows, seed, frame, config)

    return factory


def run_cli(project: Project, *commands: str) -> Path:
    """Run each command (``train``, ``evaluate``, ...) on ``project`` with the real CLI; return its out."""
    for command in commands:
        assert main(project.cli(command)) == 0, f"`{command}` failed while preparing a test in {project.root}"
    return project.out


def build_out(project: Project, out: Path | None = None) -> Path:
    """Validate, train and evaluate ``project`` into ``out`` (default ``project.out``) with the real commands."""
    target = replace(project, out=out) if out is not None else project
    return run_cli(target, "validate", "train", "evaluate")


def train_artifact(root: Path, seed: int = 3, rows: int = 600, edit: Edit | None = None) -> Trained:
    """Write a seeded project under ``root`` and train it with the real CLI."""
    out = run_cli(write_project(root, rows, seed, edit=edit), "train")
    return Trained(out / "model", out / "holdout.parquet")


def copy_of(project: Project, root: Path, registry: Path | None = None) -> Project:
    """Return ``project`` with its trained --out copied under ``root`` and its registry (default ``root/registry``)."""
    raw = tomllib.loads(project.config.read_text())
    raw["registry"]["path"] = str(registry or root / "registry")
    root.mkdir(parents=True, exist_ok=True)
    config = root / "pipeline.toml"
    config.write_text(dump_toml(raw))
    shutil.copytree(project.out, root / "out")
    return replace(project, root=root, config=config, out=root / "out")


def weak_features(raw: dict[str, Any]) -> None:
    """Config edit: the model sees only ``region`` and ``has_partner`` (no churn signal to speak of)."""
    keep = {"customer_id", "region", "has_partner", "churned"}
    raw["schema"]["columns"] = {k: v for k, v in raw["schema"]["columns"].items() if k in keep}
    raw["schema"]["allow_unexpected_columns"] = True
    raw["gates"]["metric"] = []


def as_regression(raw: dict[str, Any]) -> None:
    """Edit a churn config into a regression of monthly charges (``churned`` becomes a feature)."""
    raw["data"].update(task="regression", target="monthly_charges")
    raw["data"].pop("positive_label", None)
    for key in ("labels", "min_class_fraction"):
        raw["schema"].pop(key, None)
    raw["model"] = {"kind": "ridge", "params": {"alpha": 1.0}}
    raw["training"]["stratify"] = False
    raw["gates"] = {"latency": {"samples": 20}}
    raw["slices"] = {"columns": [], "min_rows": 50}


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Project]:
    """Train and evaluate once: ``good`` (logistic regression, all features) and ``weak``; use copies to write."""
    root = tmp_path_factory.mktemp("trained")
    projects = {
        "good": write_project(root / "good"),
        "weak": write_project(root / "weak", edit=weak_features),
    }
    for project in projects.values():
        build_out(project)
    return projects


def model_metadata(**fields: Any) -> ModelMetadata:
    """Return a complete churn-like ``ModelMetadata`` for hand-made artefacts; ``fields`` override."""
    base: dict[str, Any] = {
        "run": "test",
        "task": "classification",
        "target": "churned",
        "labels": (0, 1),
        "positive_label": 1,
        "features": (Feature("tenure_months", "numeric", None, 0.0, 120.0, False),),
        "id_columns": ("customer_id",),
        "kind": "logistic_regression",
        "params": {},
        "data_sha256": "0" * 64,
        "config_sha256": "0" * 64,
        "git_commit": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        "train_rows": 0,
        "holdout_rows": 0,
        "seed": 0,
        "split": SplitRule(("customer_id",), "ml-cicd", 0.25),
        "validated": True,
        "profile": {"numeric": {}, "categorical": {}},
        "compiled": None,
        "out_of_range": "count",
    }
    return ModelMetadata(**{**base, **fields})


def metadata_json(model_dir: Path) -> dict[str, Any]:
    """Return a model artefact's metadata.json as written (the file's contract, not the record)."""
    return dict(json.loads((Path(model_dir) / "metadata.json").read_text()))


# ---------------------------------------------------------------------------------------------
# Registry: small artefacts fitted by hand, and the registry command in-process or in a process.

MODELS = 8
FEATURES = [("tenure_months", "numeric"), ("monthly_charges", "numeric"), ("contract", "categorical")]


def fit_artefact(where: Path, seed: int, passed: bool = True) -> Path:
    """Fit a tiny model on seeded churn rows; write ``model/``, ``metrics.json`` and ``gates.json``."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    from model.artifact import save_artifact
    from model.estimator import build_pipeline
    from pipeline.core.synth import churn_frame

    frame = churn_frame(160, seed)
    train, holdout = frame.iloc[:120], frame.iloc[120:]
    names = [name for name, _ in FEATURES]
    estimator = build_pipeline(FEATURES, "logistic_regression", "classification", {"C": 0.5}, seed)
    estimator.fit(train[names], train["churned"])
    metadata = model_metadata(
        features=(
            Feature("tenure_months", "numeric", None, 0.0, 120.0, False),
            Feature("monthly_charges", "numeric", None, 0.0, 500.0, False),
            Feature("contract", "categorical", ("month_to_month", "one_year", "two_year"), None, None, False),
        ),
        params={"C": 0.5},
        data_sha256=f"{seed:064x}",
        config_sha256="c" * 64,
        created_at="2025-01-01T00:00:00Z",
        train_rows=len(train),
        holdout_rows=len(holdout),
        seed=seed,
    )
    saved = save_artifact(where / "model", estimator, metadata)
    y = holdout["churned"]
    proba = estimator.predict_proba(holdout[names])[:, 1]
    north = holdout["region"] == "north"
    metrics = Metrics(
        run="test",
        task="classification",
        model_sha256=saved.model_sha256,
        rows=len(holdout),
        overall={
            "accuracy": float(accuracy_score(y, proba > 0.5)),
            "roc_auc": float(roc_auc_score(y, proba)),
        },
        per_class=None,
        confusion_matrix=None,
        slices={"region": {"north": {"rows": int(north.sum()), "accuracy": 0.5}}},
        prediction_distribution={"0": 0.5, "1": 0.5},
    )
    write_record(where / "metrics.json", metrics)
    status = Status.PASSED if passed else Status.FAILED
    result = Result("metric:roc_auc", status, True, 0.8, 0.75, "roc_auc 0.8000 meets >= 0.75")
    gates = Gates("test", saved.model_sha256, passed, (result,), None, None)
    write_record(where / "gates.json", gates)
    return where / "model"


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Return eight distinct model artefact directories (each with metrics.json and gates.json beside it)."""
    root = tmp_path_factory.mktemp("artefacts")
    return [fit_artefact(root / f"m{i}", seed=i) for i in range(MODELS)]


@pytest.fixture(scope="module")
def failing_artefact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a model artefact whose gates.json says it failed."""
    return fit_artefact(tmp_path_factory.mktemp("failing"), seed=99, passed=False)


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """Return a fresh (not yet created) registry directory."""
    return tmp_path / "registry"


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(registry: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Return a runner of ``python -m pipeline registry ...`` (in-process) -> (code, stdout, stderr)."""

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["registry", *args, "--config", str(DEFAULT_CONFIG), "--registry", str(registry)])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def register(cli: Cli, model: Path, *extra: str) -> int:
    """Register ``model`` with its gates.json and return the version number."""
    code, out, err = cli(
        "register", str(model), "--gates", str(model.parent / "gates.json"), "--json", *extra
    )
    assert code == 0, f"register {model} failed with {code}: {err}"
    return int(json.loads(out)["version"])


def subprocess_register(
    registry: Path, model: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``python -m pipeline registry register MODEL`` in a process of its own."""
    argv = [sys.executable, "-m", "pipeline", "registry", "register", str(model)]
    argv += ["--config", str(DEFAULT_CONFIG), "--registry", str(registry)]
    return subprocess.Popen(
        argv,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# Tables made from datasets scikit-learn ships, shaped as users have them.


def realistic_cancer() -> pd.DataFrame:
    """breast_cancer as a clinic would export it: ids, a text target, a 0/1 flag, a text category, nulls."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    frame.insert(0, "patient_id", [f"P-{i:05d}" for i in range(len(frame))])
    frame["smoker"] = (rng.random(len(frame)) < 0.2).astype(int)
    frame["clinic"] = rng.choice(["north", "south", "east"], len(frame))
    frame.loc[rng.random(len(frame)) < 0.02, "mean texture"] = np.nan
    return frame


def wine_table() -> pd.DataFrame:
    """wine with its three cultivars named (a text multiclass target)."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame["cultivar"] = frame.pop("target").map({0: "barolo", 1: "grignolino", 2: "barbera"})
    return frame


def diabetes_table() -> pd.DataFrame:
    """diabetes (regression) with sex as text."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    frame["sex"] = np.where(frame["sex"] > 0, "F", "M")
    return frame


def wine_with_flag() -> pd.DataFrame:
    """wine with named cultivars and a yes/no flag."""
    frame = wine_table()
    frame["organic"] = np.where(np.random.default_rng(1).random(len(frame)) < 0.3, "yes", "no")
    return frame


def with_states(frame: pd.DataFrame, seed: int = 2) -> pd.DataFrame:
    """Return ``frame`` with a free categorical ``state``: 51 values, the commonest 70 times the rarest."""
    weights = 0.918 ** np.arange(51)
    names = np.array([f"S{i:02d}" for i in range(51)], dtype=object)
    return frame.assign(
        state=np.random.default_rng(seed).choice(names, len(frame), p=weights / weights.sum())
    )


def iris_named() -> pd.DataFrame:
    """iris with its species named: a real feature (petal width) predicts the label nearly alone."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame["species"] = frame.pop("target").map({0: "setosa", 1: "versicolor", 2: "virginica"})
    return frame


def telco_table() -> pd.DataFrame:
    """The churn table as a telco exports it: a Yes/No target and yes/no flags."""
    frame = churn_frame(1500, seed=21)
    frame["churned"] = frame["churned"].map({1: "Yes", 0: "No"})
    frame["has_partner"] = frame["has_partner"].map({True: "yes", False: "no"})
    return frame


FOREIGN_TABLE = "data/clinic_biopsies.csv"
FOREIGN_TARGET = "diagnosis"


def foreign_repo(root: Path) -> Path:
    """Write a repository laid out as another team lays out theirs, with no file of ml-cicd's; return it.

    Their table (breast_cancer as a clinic exports it), a tests/ with one passing test of their own
    code, and top-level ``model/`` and ``pipeline/`` packages of their own: importing their
    ``pipeline`` raises, so ml-cicd taking it for its own fails loudly.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    realistic_cancer().to_csv(root / FOREIGN_TABLE, index=False)
    files = {
        "model/__init__.py": '"""The clinic team\'s own model code."""\n\nOWNER = "clinic"\n',
        "model/features.py": "def ratio(a: float, b: float) -> float:\n    return a / b\n",
        "pipeline/__init__.py": 'raise ImportError("the clinic\'s own pipeline package: ml-cicd must never import it")\n',
        "tests/test_features.py": (
            "from model import OWNER\nfrom model.features import ratio\n\n\n"
            "def test_ratio() -> None:\n    assert ratio(6, 3) == 2 and OWNER == 'clinic'\n"
        ),
        "train.py": "# the team's own training script: ml-cicd leaves it alone\nprint('training')\n",
        "README.md": "# Clinic biopsies\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


FACTORY = "clinic_ml/factory.py:build"
CLINIC_CODE = {
    "clinic_ml/__init__.py": '"""The clinic team\'s model code."""\n',
    "clinic_ml/transforms.py": (
        '"""A feature of the clinic\'s own: how round a nucleus is (area over perimeter squared)."""\n\n'
        "import numpy as np\n"
        "from sklearn.base import BaseEstimator, TransformerMixin\n\n\n"
        "class Roundness(TransformerMixin, BaseEstimator):\n"
        "    def __init__(self, area='mean area', perimeter='mean perimeter'):\n"
        "        self.area = area\n"
        "        self.perimeter = perimeter\n\n"
        "    def fit(self, X, y=None):\n"
        "        self.n_features_in_ = X.shape[1]\n"
        "        return self\n\n"
        "    def transform(self, X):\n"
        "        X = X.copy()\n"
        "        X['roundness'] = 4 * np.pi * X[self.area] / X[self.perimeter] ** 2\n"
        "        return X\n"
    ),
    "clinic_ml/factory.py": (
        "from sklearn.compose import ColumnTransformer\n"
        "from sklearn.impute import SimpleImputer\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.pipeline import Pipeline, make_pipeline\n"
        "from sklearn.preprocessing import OneHotEncoder, StandardScaler\n\n"
        "from clinic_ml.transforms import Roundness\n\n\n"
        "def build(numeric, categorical, boolean, task, params):\n"
        "    numbers = make_pipeline(SimpleImputer(strategy='median'), StandardScaler())\n"
        "    words = make_pipeline(\n"
        "        SimpleImputer(strategy='constant', fill_value='unknown'), OneHotEncoder(handle_unknown='ignore')\n"
        "    )\n"
        "    columns = ColumnTransformer(\n"
        "        [('numbers', numbers, [*numeric, *boolean, 'roundness']), ('words', words, categorical)]\n"
        "    )\n"
        "    return Pipeline([('roundness', Roundness()), ('columns', columns), ('model', LogisticRegression(**params))])\n"
    ),
}


def factory_repo(root: Path) -> Path:
    """Write :func:`foreign_repo` plus the clinic's own estimator code (a custom transformer) in ``clinic_ml/``."""
    foreign_repo(root)
    for name, text in CLINIC_CODE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def use_factory(config: Path, spec: str = FACTORY, params: str = "C = 0.5\nmax_iter = 2000\n") -> None:
    """Replace the ``[model]`` tables of an ``init``-written config with ``factory = spec`` and its params."""
    lines, kept, skipping = config.read_text().splitlines(), [], False
    for line in lines:
        if line.startswith("["):
            skipping = line == "[model]" or line.startswith("[model.")
        if not skipping:
            kept.append(line)
    kept += ["", "[model]", f'factory = "{spec}"', "", "[model.params]", *params.splitlines()]
    config.write_text("\n".join(kept) + "\n")


def drift_limits() -> DriftLimits:
    """Return the limits a default [drift] section gives."""
    return DriftLimits(
        "auto", 1000, 0.05, 0.1, 0.1, None, max_drifted_features=0, max_unseen_share=0.01, bins=10
    )


def feature_drift(name: str, kind: str, statistic: float, drifted: bool, psi: float = 0.0) -> FeatureDrift:
    """Return one distance-judged comparison of 5,000 rows a side."""
    method = "wasserstein" if kind == "numeric" else "jensen_shannon"
    return FeatureDrift(name, kind, method, statistic, None, None, 0.1, 5000, 5000, psi, {}, drifted)


def resign(model_dir: Path) -> None:
    """Sign an artefact again after a test changed it on purpose, as the key holder (training) would."""
    from model.artifact import artifact_files
    from model.signing import sign, signing_key

    key = signing_key()
    assert key is not None, "the test session has a signing key from training"
    sign(model_dir, artifact_files(read_metadata(model_dir)), key)

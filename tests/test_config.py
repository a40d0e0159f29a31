"""Config loading: the shipped file parses; bad keys and values name themselves."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from model.records import Status
from pipeline.cli import main
from pipeline.config import ColumnSchema, DriftConfig, load_config, parse_config
from pipeline.config_gates import ChampionGate, SliceGate
from pipeline.config_types import (
    MAX_BATCH_REQUESTS,
    MAX_BINS,
    MAX_BOOTSTRAP,
    MAX_CONCURRENCY,
    MAX_FEATURES,
    MAX_LATENCY_SAMPLES,
    MAX_LEAKAGE_ROWS,
    MAX_LOAD_BATCHES,
    MAX_ROWS,
    MAX_TEST_ROWS,
    MAX_THREADS,
)
from pipeline.core import integrity
from pipeline.core.bootstrap import Predictions, paired_bootstrap
from pipeline.core.gates import slice_gate
from pipeline.core.statistics import DISTANCE_ROWS
from pipeline.errors import ConfigError
from tests.conftest import DEFAULT_CONFIG, Project, default_config_dict, dump_toml


def test_shipped_config_loads_into_frozen_dataclasses() -> None:
    config = load_config(DEFAULT_CONFIG)

    assert config.data.target == "churned"
    assert "customer_id" not in config.feature_columns, "id columns must not be features"
    assert config.data.target not in config.feature_columns
    with pytest.raises(AttributeError):
        config.data.target = "other"  # type: ignore[misc]


def test_dump_toml_round_trips_the_default_config(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(dump_toml(default_config_dict()))

    assert parse_config(tomllib.loads(path.read_text())) == parse_config(default_config_dict())


def test_relative_paths_are_the_config_directorys_wherever_the_command_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a project whose config names its table, reference and registry relative to itself
    project = tmp_path / "team"
    raw = default_config_dict()
    raw["data"]["path"] = "data/table.csv"
    raw["drift"]["reference"] = "../shared/reference.csv"
    raw["registry"]["path"] = str(tmp_path / "elsewhere" / "registry")
    (project / "data").mkdir(parents=True)
    (project / "ml-cicd.toml").write_text(dump_toml(raw))
    # when it is loaded from another directory
    monkeypatch.chdir(tmp_path)
    config = load_config("team/ml-cicd.toml")
    # then each relative path names the file beside the config; an absolute one is kept
    assert Path(config.data.path) == Path("team/data/table.csv")
    assert Path(str(config.drift.reference)) == Path("shared/reference.csv")
    assert config.registry.path == str(tmp_path / "elsewhere" / "registry")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["training"].update(sample_rows=-5), "training.sample_rows must be an integer >= 0"),
        (lambda c: c["training"].update(sample_rows="many"), "training.sample_rows must be an integer"),
        (lambda c: c["training"].update(colour="red"), "unknown key 'training.colour'"),
        (lambda c: c.update(extra={"a": 1}), "unknown key 'extra'"),
        (lambda c: c["data"].update(task="clustering"), "data.task must be one of"),
        (lambda c: c["schema"]["columns"]["region"].update(type="text"), "schema.columns.region.type"),
        (lambda c: c["gates"]["metric"][0].update(direction="up"), "direction must be one of"),
        (lambda c: c["data"].pop("target"), "missing required key 'data.target'"),
        (
            lambda c: c["training"].update(test_fraction=1.5),
            "training.test_fraction must be a number between",
        ),
    ],
)
def test_bad_values_are_named(edit, message: str) -> None:
    raw = default_config_dict()
    edit(raw)

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_config(raw, origin="cfg")


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[data\npath = 1\n")

    with pytest.raises(ConfigError, match="malformed TOML"):
        load_config(path)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_section_hash_ignores_unrelated_sections() -> None:
    base = parse_config(default_config_dict())
    raw = default_config_dict()
    raw["slices"]["min_rows"] = 99
    changed = parse_config(raw)

    assert base.section_hash("data", "model", "training") == changed.section_hash("data", "model", "training")
    assert base.section_hash() != changed.section_hash()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["gates"]["metric"][0].update(metric="roc_acu"),
            "unknown classification metric 'roc_acu'",
        ),
        (lambda c: c["gates"]["metric"][0].update(metric="rmse"), "unknown classification metric 'rmse'"),
        (lambda c: c["gates"]["metric"][2].update(direction="higher"), "log_loss is lower-is-better"),
        (lambda c: c["gates"]["champion"].update(metric="r2"), "gates.champion.metric"),
        (lambda c: c["gates"]["slices"].update(metric="f2"), "gates.slices.metric"),
    ],
)
def test_gate_metrics_come_from_the_metric_table(edit, message: str) -> None:
    raw = default_config_dict()
    edit(raw)

    with pytest.raises(ConfigError, match=message):
        parse_config(raw, origin="cfg")


def test_a_gate_may_leave_its_direction_to_the_metric_table() -> None:
    raw = default_config_dict()
    raw["gates"]["metric"][2].pop("direction")

    config = parse_config(raw)

    assert config.gates.metric[2].metric == "log_loss" and config.gates.metric[2].direction is None


# ---------------------------------------------------------------------------------------------
# Finite numbers and bounded counts (issue 17, point 6; issue 19, point 7).


def _column(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda c: c["schema"]["columns"][name]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    ("table", "key", "named"),
    [
        (_column("tenure_months"), "min", "schema.columns.tenure_months.min"),
        (_column("tenure_months"), "max", "schema.columns.tenure_months.max"),
        (_column("total_charges"), "max_null_fraction", "schema.columns.total_charges.max_null_fraction"),
        (lambda c: c["gates"]["metric"][0], "threshold", "gates.metric[0].threshold"),
        (lambda c: c["gates"]["slices"], "min", "gates.slices.min"),
        (lambda c: c["gates"]["latency"], "p95_ms", "gates.latency.p95_ms"),
        (lambda c: c["gates"]["latency"], "max_ratio", "gates.latency.max_ratio"),
        (lambda c: c["gates"]["champion"], "tolerance", "gates.champion.tolerance"),
        (lambda c: c["gates"]["champion"], "confidence", "gates.champion.confidence"),
        (lambda c: c["gates"]["collapse"], "min_class_fraction", "gates.collapse.min_class_fraction"),
        (lambda c: c["drift"], "alpha", "drift.alpha"),
        (lambda c: c["drift"], "wasserstein_limit", "drift.wasserstein_limit"),
        (lambda c: c["drift"], "psi_limit", "drift.psi_limit"),
        (lambda c: c["serving"], "parity_limit", "serving.parity_limit"),
    ],
)
def test_nan_and_infinities_are_refused_naming_the_key(
    table: Callable[[dict[str, Any]], dict[str, Any]], key: str, named: str, value: float
) -> None:
    # given the shipped config with one number made non-finite
    raw = default_config_dict()
    table(raw)[key] = value

    # when / then
    with pytest.raises(ConfigError, match=rf"^cfg: {re.escape(named)} must be .*, got -?(nan|inf)$"):
        parse_config(raw, origin="cfg")


def test_a_nan_in_the_toml_file_is_refused_by_the_cli_in_one_line(
    make_project: Callable[..., Project], capsys: pytest.CaptureFixture[str]
) -> None:
    # given a range limit of nan, which used to switch the range check off (every comparison with
    # NaN is false, so no value was ever out of range)
    project = make_project(rows=100)
    text = project.config.read_text()
    assert "max = 120\n" in text
    project.config.write_text(text.replace("max = 120\n", "max = nan\n"))

    # when
    code = main(project.cli("validate"))

    # then
    err = capsys.readouterr().err
    assert code == 2, f"expected exit 2, got {code}:\n{err}"
    assert err.splitlines() == [
        f"error: {project.config}: schema.columns.tenure_months.max must be a finite number, got nan"
    ], err
    assert not project.out.exists(), "a refused config must stop validate before it writes anything"


def test_a_slice_floor_of_nan_no_longer_lets_a_required_gate_pass() -> None:
    # given a required slice floor of nan (a slice below it never compared as below, so it passed)
    raw = default_config_dict()
    raw["gates"]["slices"].update(min=math.nan, required=True)

    # when / then: refused at load
    with pytest.raises(ConfigError, match=r"gates\.slices\.min must be a finite number, got nan"):
        parse_config(raw, origin="cfg")
    # and a slice measured as NaN is no measurement: it neither passes nor hides the others
    slices = {"region": {"north": {"rows": 90, "roc_auc": math.nan}}}
    assert slice_gate(SliceGate("roc_auc", 0.65, required=True), slices).status is Status.INCONCLUSIVE


@pytest.mark.parametrize("value", [10**9, 1e9], ids=["int", "float"])
def test_a_billion_bootstrap_resamples_are_refused(value: float) -> None:
    raw = default_config_dict()
    raw["gates"]["champion"]["bootstrap"] = value

    with pytest.raises(
        ConfigError, match=r"gates\.champion\.bootstrap must be an integer >= 100 and <= 10,000"
    ):
        parse_config(raw, origin="cfg")


# Every count that sizes work or counts rows, with its bounds: the bound loads, one past it is refused.
BOUNDS: list[tuple[str, int, int]] = [
    ("training.sample_rows", 0, MAX_ROWS),
    ("training.seed", 0, 2**32 - 1),
    ("schema.min_rows", 1, MAX_ROWS),
    ("schema.leakage_rows", 100, MAX_LEAKAGE_ROWS),
    ("gates.champion.bootstrap", 100, MAX_BOOTSTRAP),
    ("gates.champion.min_rows", 1, MAX_ROWS),
    ("gates.latency.samples", 1, MAX_LATENCY_SAMPLES),
    ("gates.latency.concurrency", 1, MAX_CONCURRENCY),
    ("gates.latency.batches", 6, MAX_LOAD_BATCHES),
    ("gates.latency.requests", 20, MAX_BATCH_REQUESTS),
    ("drift.test_max_rows", 1, MAX_TEST_ROWS),
    ("drift.bins", 2, MAX_BINS),
    ("drift.max_drifted_features", 0, MAX_FEATURES),
    ("slices.min_rows", 1, MAX_ROWS),
    ("serving.threads", 1, MAX_THREADS),
]


def _set(raw: dict[str, Any], key: str, value: Any) -> None:
    *tables, name = key.split(".")
    for table in tables:
        raw = raw.setdefault(table, {})
    raw[name] = value


@pytest.mark.parametrize(("key", "low", "high"), BOUNDS, ids=[key for key, _, _ in BOUNDS])
def test_counts_have_a_lower_and_an_upper_bound(key: str, low: int, high: int) -> None:
    for value in (low, high):
        raw = default_config_dict()
        _set(raw, key, value)
        parse_config(raw)  # within the bounds: loads
    for value in (low - 1, high + 1):
        raw = default_config_dict()
        _set(raw, key, value)
        with pytest.raises(
            ConfigError, match=rf"^cfg: {re.escape(key)} must be an integer >= {low:,} and <= {high:,}"
        ):
            parse_config(raw, origin="cfg")


def test_drift_test_rows_are_bounded_by_the_rows_drift_samples() -> None:
    assert MAX_TEST_ROWS == DISTANCE_ROWS, "a larger drift.test_max_rows would mean the same as DISTANCE_ROWS"


def _leaves(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{key}.{k}" if key else k)]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{key}[{i}]")]
    return [(key, value)]


def _set_leaf(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = [int(p) if p.isdigit() else p for p in re.split(r"\.|\[|\]\.?", key) if p]
    for part in parts[:-1]:
        raw = raw[part]
    raw[parts[-1]] = value


SETTINGS = [key for key, value in _leaves(default_config_dict()) if not key.startswith("model.params")]


@pytest.mark.parametrize("key", SETTINGS)
def test_every_setting_is_strictly_typed(key: str) -> None:
    # given each setting of the shipped config, set to a value of a type it never takes
    value = dict(_leaves(default_config_dict()))[key]
    if key == "data.positive_label":  # a label: text, an integer or a boolean
        wrong: list[Any] = [0.5, [1]]
    elif isinstance(value, bool):
        wrong = [1, "true"]
    elif isinstance(value, int | float):
        wrong = [True, str(value)]  # booleans are never numbers; numbers are never text
    elif isinstance(value, str):
        wrong = [1, True]
    else:  # a list
        wrong = ["x", {"a": 1}]
    for bad in wrong:
        raw = default_config_dict()
        _set_leaf(raw, key, bad)

        # when / then: refused, naming the key
        with pytest.raises(ConfigError) as refused:
            parse_config(raw, origin="cfg")
        assert f"cfg: {key}" in str(refused.value), f"{key} = {bad!r}: {refused.value}"


def test_an_integer_is_a_number_where_a_number_is_expected() -> None:
    raw = default_config_dict()
    raw["gates"]["metric"][0]["threshold"] = 1
    raw["schema"]["columns"]["tenure_months"]["max"] = 120

    config = parse_config(raw)

    assert config.gates.metric[0].threshold == 1.0 and isinstance(config.gates.metric[0].threshold, float)
    assert isinstance(config.schema.column("tenure_months").max, float)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["schema"]["columns"]["tenure_months"].update(min=200),
            "schema.columns.tenure_months.max must be a number >= min (200), got 120",
        ),
        (
            lambda c: c["schema"]["columns"]["region"].update(allowed=[]),
            "region.allowed must be a non-empty list",
        ),
        (
            lambda c: c["schema"].update(labels=[0, 1, 0]),
            "schema.labels must be a non-empty list of distinct",
        ),
        (
            lambda c: c["data"].update(positive_label=3),
            "data.positive_label 3 is not one of schema.labels (0, 1)",
        ),
        (lambda c: c["data"].update(path=""), "data.path must be a non-empty string, got ''"),
        (lambda c: c["registry"].update(path=""), "registry.path must be a non-empty string"),
        (lambda c: c["drift"].update(reference=""), "drift.reference must be a non-empty string"),
        (
            lambda c: c["slices"].update(columns=["region", ""]),
            "slices.columns[1] must be a non-empty string",
        ),
        (
            lambda c: c["data"].update(id_columns=["churned"]),
            "data.id_columns must not name the target 'churned'",
        ),
        (lambda c: c["gates"]["slices"].pop("min"), "missing required key 'gates.slices.min'"),
        (lambda c: c["schema"]["columns"].update({"": {"type": "numeric"}}), "a column with an empty name"),
        (lambda c: c["schema"].update(columns=5), "schema.columns must be a table of column tables"),
        (lambda c: c["schema"]["columns"].update(age=5), "schema.columns.age must be a table, got 5"),
        (lambda c: c.update(schema=[1]), "schema must be a table, got [1]"),
        (lambda c: c["gates"].update(champion=[{"bootstrap": 100}]), "gates.champion must be a table"),
        (lambda c: c["training"].update(seed=-1), "training.seed must be an integer >= 0"),
        (
            lambda c: c["model"]["params"].update(max_iter=10**9),
            "model.params.max_iter must be an integer >= 1 and <= 10,000 (it sizes the fit), got 1000000000",
        ),
        (
            lambda c: c["model"].update(kind="random_forest", params={"n_estimators": True}),
            "model.params.n_estimators must be an integer >= 1 and <= 5,000",
        ),
        (
            lambda c: c["gates"]["latency"].update(max_ratio=0),
            "gates.latency.max_ratio must be a finite number > 0",
        ),
    ],
)
def test_clearly_invalid_values_are_refused(edit: Callable[[dict[str, Any]], None], message: str) -> None:
    raw = default_config_dict()
    edit(raw)

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(raw, origin="cfg")


def test_a_long_value_is_shortened_so_the_error_stays_one_readable_line() -> None:
    raw = default_config_dict()
    raw["gates"]["champion"] = [{"metric": "roc_auc", "tolerance": 0.01}] * 20

    with pytest.raises(ConfigError) as refused:
        parse_config(raw, origin="cfg")

    message = str(refused.value)
    assert "\n" not in message and len(message) < 160 and message.endswith("..."), message


def test_the_section_classes_validate_when_built_in_code_too() -> None:
    # so the bounds hold wherever a config object exists (the core takes them as given)
    with pytest.raises(ValidationError):
        ChampionGate(bootstrap=10**9)
    with pytest.raises(ValidationError):
        dataclasses.replace(DriftConfig(), bins=10**9)
    with pytest.raises(ValidationError):
        ColumnSchema("age", "numeric", min=math.nan)
    assert dataclasses.replace(DriftConfig(), bins=20).bins == 20


def test_the_bootstrap_refuses_unbounded_work_when_called_directly() -> None:
    y = np.array([0, 1] * 10)
    predictions = Predictions(y, None)

    with pytest.raises(ValueError, match="resamples must be from 1 to 10,000"):
        paired_bootstrap("accuracy", "classification", y, predictions, predictions, [0, 1], 1, 10**9)
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        paired_bootstrap("accuracy", "classification", y, predictions, predictions, [0, 1], 1, 100, math.nan)


def test_lists_stay_tuples() -> None:
    config = load_config(DEFAULT_CONFIG)

    assert isinstance(config.data.id_columns, tuple) and isinstance(config.schema.columns, tuple)
    assert isinstance(config.schema.labels, tuple) and isinstance(config.gates.metric, tuple)
    assert isinstance(config.slices.columns, tuple)
    assert config.to_dict()["schema"]["columns"][0]["name"] == "customer_id"


def test_the_leakage_score_of_a_many_class_target_stays_within_its_memory_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a 10-class target, a feature that copies it, and room for 2,000 one-hot cells
    monkeypatch.setattr(integrity, "OUTCOME_CELLS", 2_000)
    labels = np.arange(2000) % 10
    frame = pd.DataFrame({"label": labels, "copy": labels.astype(str)})
    raw = {
        "data": {"path": "x.csv", "target": "label"},
        "schema": {"columns": {"copy": {"type": "categorical"}}},
    }
    config = parse_config(raw)

    # when
    failures = integrity.leakage_failures(frame, config.schema.columns, config)

    # then: still found, on the 200 rows that fit
    assert [f.column for f in failures] == ["copy"], failures
    assert "on 200 sampled rows" in failures[0].message, failures[0].message


@pytest.mark.parametrize(
    ("edit", "got"),
    [
        (lambda gate: gate.update(above_baseline=0.05), "both"),
        (lambda gate: gate.pop("threshold"), "neither"),
    ],
    ids=["both", "neither"],
)
def test_a_metric_floor_is_a_threshold_or_a_margin_above_the_baseline_never_both(
    edit: Callable[[dict[str, Any]], Any], got: str
) -> None:
    raw = default_config_dict()
    edit(raw["gates"]["metric"][0])

    with pytest.raises(ConfigError) as raised:
        parse_config(raw, origin="cfg")

    assert str(raised.value) == (
        "cfg: gates.metric[0] needs exactly one of threshold (a floor) or above_baseline "
        f"(a margin over the dummy), got {got}"
    )


def test_a_margin_above_the_baseline_is_not_negative() -> None:
    raw = default_config_dict()
    raw["gates"]["metric"][0] = {"metric": "roc_auc", "above_baseline": -0.05}

    with pytest.raises(
        ConfigError, match=r"^cfg: gates.metric\[0\].above_baseline must be a finite number >= 0, got -0.05$"
    ):
        parse_config(raw, origin="cfg")
    raw["gates"]["metric"][0]["above_baseline"] = 0.05
    assert parse_config(raw, origin="cfg").gates.metric[0].above_baseline == 0.05


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"kind": "xgboost", "params": {"n_estimators": 10}, "kinds": {"xgboost": {"n_estimators": 20}}},
            "model.params and model.kinds.xgboost both give parameters for kind 'xgboost': keep one",
        ),
        (
            {"kind": "random_forest", "kinds": {"lightgbm": {"n_estimators": 0}}},
            "model.kinds.lightgbm.n_estimators must be an integer >= 1 and <= 5,000 (it sizes the fit), got 0",
        ),
    ],
)
def test_per_kind_parameters_are_one_source_and_bounded(model: dict[str, Any], message: str) -> None:
    # given the repo config with per-kind parameter tables that break a rule
    raw = default_config_dict()
    raw["model"] = model
    # when it is parsed, then one line names the key
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, origin="cfg")
    assert str(caught.value) == f"cfg: {message}"


def test_the_chosen_kinds_table_gives_its_parameters() -> None:
    raw = default_config_dict()
    raw["model"] = {"kind": "ridge", "kinds": {"ridge": {"alpha": 2.0}, "random_forest": {"n_estimators": 7}}}
    model = parse_config(raw).model
    assert (model.chosen_params, model.params_key) == ({"alpha": 2.0}, "model.kinds.ridge")

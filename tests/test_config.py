"""Config loading: the shipped file parses; bad keys and values name themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config, parse_config
from pipeline.errors import ConfigError
from tests.conftest import DEFAULT_CONFIG, default_config_dict, dump_toml


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

    assert load_config(path) == load_config(DEFAULT_CONFIG)


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
    base = load_config(DEFAULT_CONFIG)
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

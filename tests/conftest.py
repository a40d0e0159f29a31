"""Shared fixtures: a tiny seeded churn project written into ``tmp_path``."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.synth import churn_frame

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "pipeline.toml"


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


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def dump_toml(data: dict[str, Any]) -> str:
    """Serialise nested dicts (and arrays of tables) as TOML; enough for test configs."""
    lines: list[str] = []

    def emit(table: dict[str, Any], prefix: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)}
        if prefix and (scalars or not table):
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f"{_key(key)} = {_toml_value(value)}")
        for key, value in table.items():
            name = f"{prefix}.{_key(key)}" if prefix else _key(key)
            if isinstance(value, dict):
                emit(value, name)
            elif _is_table_array(value):
                for item in value:
                    lines.append(f"[[{name}]]")
                    for k, v in item.items():
                        lines.append(f"{_key(k)} = {_toml_value(v)}")

    emit(data, "")
    return "\n".join(lines) + "\n"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def default_config_dict() -> dict[str, Any]:
    """Return the repo's default config as a dict (a fresh copy each call)."""
    return tomllib.loads(DEFAULT_CONFIG.read_text())


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    """Return a factory: write a seeded churn table and a config into ``tmp_path``.

    ``rows``/``seed`` size the table; ``frame`` replaces it; ``config`` is a function
    that edits the config dict in place before it is written.
    """

    def factory(
        rows: int = 800,
        seed: int = 3,
        frame: Any = None,
        config: Callable[[dict[str, Any]], None] | None = None,
        name: str = "project",
    ) -> Project:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        data = root / "data.csv"
        reference = root / "reference.csv"
        (churn_frame(rows, seed) if frame is None else frame).to_csv(data, index=False)
        churn_frame(rows, seed + 100).to_csv(reference, index=False)
        raw = default_config_dict()
        raw["data"]["path"] = str(data)
        raw["drift"]["reference"] = str(reference)
        raw["registry"]["path"] = str(root / "registry")
        raw["schema"]["min_rows"] = 50
        raw["training"]["sample_rows"] = 0
        if config is not None:
            config(raw)
        path = root / "pipeline.toml"
        path.write_text(dump_toml(raw))
        return Project(root=root, config=path, data=data, reference=reference, out=root / "out")

    return factory

"""TOML text for config sections: values, keys, the inferred [data] + [schema] block, a whole commented config."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def schema_toml(data: dict[str, Any], schema: dict[str, Any], header: list[str]) -> str:
    """Return a ``[data]`` and a ``[schema]`` section (with one table per column) after ``header`` comments."""
    lines = [*(f"# {line}" for line in header), "", "[data]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in data.items()]
    lines += ["", "[schema]"]
    columns: dict[str, dict[str, Any]] = schema["columns"]
    lines += [f"{key} = {toml_value(value)}" for key, value in schema.items() if key != "columns"]
    for name, spec in columns.items():
        lines += ["", f"[schema.columns.{toml_key(name)}]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in spec.items()]
    return "\n".join(lines) + "\n"


def config_toml(sections: Sequence[Any]) -> str:
    """Return a commented config from sections with ``keys``, ``comment``, ``values`` and ``array``.

    A section with no keys holds top-level keys; an ``array`` one is an entry of an array of tables.
    """
    lines: list[str] = []
    for section in sections:
        lines += ["", *(f"# {line}" for line in section.comment.splitlines())] if section.comment else [""]
        if section.keys:
            name = ".".join(toml_key(key) for key in section.keys)
            lines.append(f"[[{name}]]" if section.array else f"[{name}]")
        lines += [f"{toml_key(key)} = {toml_value(value)}" for key, value in section.values.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def toml_value(value: Any) -> str:
    """Return ``value`` as a TOML literal (strings JSON-escaped, which TOML accepts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write non-finite number {value!r} to TOML")
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def toml_key(name: str) -> str:
    """Return ``name`` as a TOML key, quoted unless it is a bare key."""
    return name if _BARE_KEY.match(name) else json.dumps(name, ensure_ascii=False)

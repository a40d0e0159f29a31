"""TOML text for config sections: values, keys, and the inferred [data] + [schema] block."""

from __future__ import annotations

import json
import math
import re
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

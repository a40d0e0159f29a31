"""The one strict codec of ml-cicd's JSON records, and the one dialect of errors for them and the config.

Reading is strict: a missing or unknown key, a value of the wrong type or another schema
version is an error naming the file and the key (:class:`ArtifactError`). Lists become tuples,
tables become dataclasses, ints are accepted where floats are expected, booleans are never
taken for numbers. Written records carry their ``schema_version``. The TOML config is decoded by
pydantic (``pipeline/config.py``); :func:`validation_line` writes its errors in the same dialect.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from annotated_types import Ge, Gt, Le, Lt, MinLen

from model.errors import ArtifactError
from model.files import write_json_atomic

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

T = TypeVar("T")


def plain(value: Any) -> Any:
    """Return numpy scalars as Python scalars (for JSON); anything else unchanged."""
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value


def read_json(path: Path, what: str = "file", error: type[Exception] = ArtifactError) -> dict[str, Any]:
    """Return the JSON object at ``path``; ``error`` names the file when it is missing or malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, ValueError) as exc:
        raise error(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: {what} must be a JSON object")
    return data


def read_record(path: Path, cls: type[T], what: str = "") -> T:
    """Read the record ``cls`` from ``path``; raise :class:`ArtifactError` naming the file and key."""
    raw = read_json(path, what or cls.__name__.lower() + " file")
    expected = getattr(cls, "SCHEMA_VERSION", 1)
    found = raw.pop("schema_version", None)
    if found is None:
        raise ArtifactError(f"{path}: missing required key 'schema_version' (written by an older ml-cicd?)")
    older: dict[int, tuple[str, ...]] = getattr(cls, "OLDER_VERSIONS", {})
    if found != expected and found not in older:
        readable = ", ".join(str(v) for v in sorted({*older, expected}))
        raise ArtifactError(f"{path}: schema_version {found!r}, this ml-cicd reads {readable}")
    for key in older.get(found, ()):  # keys added since: absent from an older file, None in its record
        raw.setdefault(key, None)
    return decode(cls, raw, str(path), every_key=True)


def read_optional(path: Path, cls: type[T]) -> T | None:
    """Return the record at ``path``, or None when the file does not exist (a bad file still raises)."""
    return read_record(path, cls) if Path(path).is_file() else None


def write_record(path: Path, record: Any) -> None:
    """Write ``record`` as indented, key-sorted JSON with its ``schema_version``, atomically."""
    payload = {"schema_version": type(record).SCHEMA_VERSION, **encode(record)}
    write_json_atomic(Path(path), payload)


def encode(record: Any) -> dict[str, Any]:
    """Return a record as plain JSON data (non-finite floats become null)."""
    return typing.cast(dict[str, Any], _finite(dataclasses.asdict(record)))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class _Context:
    origin: str
    error: type[Exception]
    every_key: bool
    table: str = field(default="an object")


def decode(
    cls: type[T], raw: Any, origin: str, *, error: type[Exception] = ArtifactError, every_key: bool = False
) -> T:
    """Build dataclass ``cls`` from ``raw``, rejecting unknown keys and wrong types.

    ``every_key`` (records) makes every field required; otherwise fields with a default may be
    left out. Lists become tuples, tables become dataclasses, ints are accepted where floats are
    expected, and booleans are never taken for numbers.
    """
    table = "an object" if every_key else "a table"
    return typing.cast(T, _build(cls, raw, _Context(origin, error, every_key, table), ""))


def _build(cls: type, raw: Any, ctx: _Context, where: str) -> Any:
    label = where or "top level"
    if not isinstance(raw, dict):
        raise ctx.error(f"{ctx.origin}: {label} must be {ctx.table}, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            raise ctx.error(f"{ctx.origin}: unknown key '{_join(where, key)}' (expected one of: {allowed})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name not in raw:
            optional = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            if ctx.every_key or not optional:
                raise ctx.error(f"{ctx.origin}: missing required key '{key}'")
            continue
        values[name] = _coerce(hints[name], raw[name], ctx, key)
    return cls(**values)


def _coerce(hint: Any, value: Any, ctx: _Context, key: str) -> Any:
    """Check ``value`` against type ``hint``; convert lists to tuples and tables to dataclasses."""
    origin_type = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, ctx, key)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in hint)
            raise ctx.error(f"{ctx.origin}: {key} must be one of {choices}, got {value!r}") from None
    if origin_type in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(option, value, ctx, key)
            except ctx.error:
                continue
        raise ctx.error(f"{ctx.origin}: {key} must be {_describe(hint)}, got {value!r}")
    if origin_type is Literal:
        if value in args and type(value) is type(args[0]):
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ctx.error(f"{ctx.origin}: {key} must be one of {choices}, got {value!r}")
    if origin_type is tuple:
        if not isinstance(value, list | tuple):
            raise ctx.error(f"{ctx.origin}: {key} must be a list, got {value!r}")
        item = args[0]
        return tuple(_coerce(item, v, ctx, _item_key(key, i, v)) for i, v in enumerate(value))
    if origin_type is dict:
        if not isinstance(value, dict):
            raise ctx.error(f"{ctx.origin}: {key} must be {ctx.table}, got {value!r}")
        if args and args[1] is not Any:
            return {k: _coerce(args[1], v, ctx, f"{key}.{k}") for k, v in value.items()}
        return dict(value)
    if _simple(hint, value):
        return float(value) if hint is float else value
    raise ctx.error(f"{ctx.origin}: {key} must be {_describe(hint)}, got {value!r}")


def _simple(hint: Any, value: Any) -> bool:
    """Return True when ``value`` is of the plain type ``hint`` (None, bool, int, float, str)."""
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return hint is str and isinstance(value, str)


def _describe(hint: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) is tuple:
        return "a list"
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return " or ".join(_describe(a) for a in args) if args else str(hint)


def _item_key(key: str, index: int, item: Any) -> str:
    """Name a list item: ``schema.columns.region`` for named tables, else ``key[index]``."""
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return f"{key}.{item['name']}"
    return f"{key}[{index}]"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# ---------------------------------------------------------------------------------------------
# pydantic's errors (the config's) in this dialect: one line naming the dotted key.


def validation_line(error: ErrorDetails, root: type, raw: Any, origin: str) -> str:
    """Return one of pydantic's errors, from validating ``raw`` as ``root``, as one line naming the key.

    ``origin: unknown key 'a.b' (expected one of: ...)``, ``origin: missing required key 'a.b'``,
    ``origin: a.b must be <what the key takes, bounds included>, got <value>`` or, for a rule across
    one table's keys, ``origin: a.b <what the rule says>``.
    """
    key, owner, info, hint = _locate(error["loc"], root, raw)
    kind = error["type"]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"{origin}: unknown key '{key}' (expected one of: {', '.join(sorted(_fields(owner)))})"
    if kind.startswith("missing"):
        return f"{origin}: missing required key '{key}'"
    if kind == "value_error":  # a rule across one table's keys (its class's __post_init__)
        return f"{origin}: {key or 'top level'} {error['ctx']['error']}"
    note = f" ({info.description})" if info is not None and info.description else ""
    expected = _expected(hint, info.metadata if info is not None else ()) + note
    return f"{origin}: {key or 'top level'} must be {expected}, got {shown(error['input'])}"


def shown(value: Any, limit: int = 80) -> str:
    """Return ``repr(value)``, shortened to ``limit`` characters (an error stays one readable line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _locate(loc: tuple[int | str, ...], root: type, raw: Any) -> tuple[str, Any, Any, Any]:
    """Follow pydantic's ``loc`` from ``root`` through the classes and ``raw``.

    Return the dotted key (``schema.columns.region.type``, ``gates.metric[0].threshold``), the
    class holding the last key, that key's field info (None for a list item or a table's value)
    and its type. The names pydantic gives a union's members are not keys: they are passed over.
    """
    key, owner, info, hint = "", root, None, typing.cast(Any, root)
    for part in loc:
        base = _bare(hint)
        if isinstance(part, str) and _fields(base):
            owner, info = base, _fields(base).get(part)
            hint = info.annotation if info is not None else Any
            key, raw = _join(key, part), raw.get(part) if isinstance(raw, dict) else None
        elif isinstance(part, int) and typing.get_origin(base) is tuple:
            item = raw[part] if isinstance(raw, list) and part < len(raw) else None
            key, hint, info, raw = _item_key(key, part, item), typing.get_args(base)[0], None, item
        elif isinstance(part, str) and typing.get_origin(base) is dict:
            key, hint, info = _join(key, part), typing.get_args(base)[1], None
            raw = raw.get(part) if isinstance(raw, dict) else None
    return key, owner, info, hint


def _fields(cls: Any) -> dict[str, Any]:
    """Return the fields of a pydantic dataclass (none for anything else)."""
    return dict(getattr(cls, "__pydantic_fields__", {})) if isinstance(cls, type) else {}


def _bare(hint: Any) -> Any:
    """Return ``hint`` without ``Annotated`` and without ``| None`` (a union of more types stays one)."""
    while True:
        if typing.get_origin(hint) is Annotated:
            hint = typing.get_args(hint)[0]
        elif len(_options(hint)) == 1 and _options(hint)[0] is not hint:
            hint = _options(hint)[0]
        else:
            return hint


def _options(hint: Any) -> list[Any]:
    """Return the members of a union other than None (``[hint]`` for anything else)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(hint) if a is not type(None)]
    return [hint]


def _expected(hint: Any, constraints: Sequence[Any] = ()) -> str:
    """Return what a value of ``hint`` under ``constraints`` (pydantic's metadata) must be, in words."""
    if typing.get_origin(hint) is Annotated:
        base, *extra = typing.get_args(hint)
        return _expected(base, [*constraints, *extra])
    options = _options(hint)
    if len(options) > 1:
        words = [_expected(option) for option in options]
        return ", ".join(words[:-1]) + " or " + words[-1]
    if options[0] is not hint:
        return _expected(options[0], constraints)
    non_empty = any(isinstance(c, MinLen) and c.min_length > 0 for c in constraints)
    if typing.get_origin(hint) is dict or _fields(hint):
        return "a table"
    if hint is str or typing.get_origin(hint) is tuple:
        return ("a non-empty " if non_empty else "a ") + ("string" if hint is str else "list")
    if hint is int:
        return "an integer" + _range(constraints, integer=True)
    if hint is float:  # finite goes without saying when bounded on both sides
        limits = _range(constraints, integer=False)
        return ("a number" if " and " in limits or " between " in limits else "a finite number") + limits
    return _describe(hint) if hint is bool or typing.get_origin(hint) is Literal else "a value"


def _range(constraints: Sequence[Any], integer: bool) -> str:
    """Return the bounds in ``constraints`` in words: `` >= 0 and <= 10``, `` between 0 and 1``."""
    low = [(">=", c.ge) for c in constraints if isinstance(c, Ge)] + [
        (">", c.gt) for c in constraints if isinstance(c, Gt)
    ]
    high = [("<=", c.le) for c in constraints if isinstance(c, Le)] + [
        ("<", c.lt) for c in constraints if isinstance(c, Lt)
    ]
    if low and high and not integer:
        (low_op, low_value), (high_op, high_value) = low[0], high[0]
        if (low_op, high_op) in ((">=", "<="), (">", "<")):
            exclusive = " (exclusive)" if low_op == ">" else ""
            return f" between {_number(low_value)} and {_number(high_value)}{exclusive}"
    return "".join(f"{' and' if i else ''} {op} {_number(v)}" for i, (op, v) in enumerate([*low, *high]))


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"

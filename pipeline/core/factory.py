"""The team's own estimator: ``[model] factory``, a function in their repository that returns it.

``factory = "path/to/file.py:build"`` names a file under the project's root (the config's directory),
imported as the module its path spells (``path.to.file``), so that a pickled model refers to its
classes by a name the serving image can import again (the image copies the file to the same place);
``factory = "package.module:build"`` names a module importable from the project's root or installed.
The module's top-level name must not be ml-cicd's (``model``, ``pipeline``, ``ml_cicd``) nor the
standard library's: the pickle would name a module that resolves to another one.

The function is called with keyword arguments: ``numeric``, ``categorical`` and ``boolean`` (the
feature columns by type, in table order), ``task`` and ``params`` (``[model.params]``), and returns
an unfitted scikit-learn estimator (or ``Pipeline``) that takes the feature columns as a DataFrame.
Every failure is a :class:`ConfigError` naming ``model.factory``.
"""

from __future__ import annotations

import importlib
import re
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, first_line

OWN_PACKAGES = frozenset({"model", "pipeline", "ml_cicd"})
KIND = "factory"  # the model kind an artefact made by a factory records
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KEY = "model.factory"


def module_name(spec: str, root: Path) -> tuple[str, str, Path | None]:
    """Return the module and function ``spec`` names, and the file it names (None: a dotted module name).

    A file path becomes its dotted module name.

    Raise :class:`ConfigError` for a spec of another shape, a file outside ``root`` or missing, or a
    name that would clash with ml-cicd's packages or the standard library.
    """
    where, sep, function = spec.rpartition(":")
    if not sep or not where or not IDENTIFIER.fullmatch(function):
        raise ConfigError(f"{KEY}: {spec!r} is not 'path/to/file.py:function' or 'package.module:function'")
    file = Path(where) if where.endswith(".py") or "/" in where else None
    if file is not None:
        if file.is_absolute() or ".." in file.parts or file.suffix != ".py":
            raise ConfigError(
                f"{KEY}: {where!r} must be a .py file inside the project (relative to the config)"
            )
        parts = (*file.parent.parts, file.stem) if file.parent != Path(".") else (file.stem,)
    else:
        parts = tuple(where.split("."))
    if not all(IDENTIFIER.fullmatch(part) for part in parts):
        raise ConfigError(f"{KEY}: {where!r} does not spell a Python module name (letters, digits, _)")
    top = parts[0]
    if top in OWN_PACKAGES:
        raise ConfigError(
            f"{KEY}: the module name {'.'.join(parts)!r} starts with {top!r}, ml-cicd's own package; "
            "move the team's code to a directory of another name"
        )
    if top in sys.stdlib_module_names:
        raise ConfigError(
            f"{KEY}: the module name {'.'.join(parts)!r} starts with {top!r}, a standard library module; "
            "move the team's code to a directory of another name"
        )
    if file is not None and not (root / file).is_file():
        raise ConfigError(f"{KEY}: {root / file}: no such file")
    return ".".join(parts), function, file


def importable(root: Path) -> None:
    """Make the team's modules importable: the project's root last on ``sys.path`` (installed ones win)."""
    entry = str(Path(root).resolve())
    if entry not in sys.path:
        sys.path.append(entry)


def load_factory(spec: str, root: Path) -> Callable[..., Any]:
    """Import the factory's module (from ``root`` for a file) and return its function."""
    name, function, file = module_name(spec, root)
    importable(root)
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # the team's module runs at import: anything may go wrong there
        raise ConfigError(
            f"{KEY}: importing {name} failed ({type(exc).__name__}: {first_line(exc)})"
        ) from None
    if file is not None:
        expected = (Path(root) / file).resolve()
        found = Path(getattr(module, "__file__", "") or "").resolve()
        if found != expected:
            raise ConfigError(
                f"{KEY}: the module name {name!r} is taken by {found} (installed or earlier on the path), "
                f"not {expected}; rename the team's directory"
            )
    built = getattr(module, function, None)
    if not callable(built):
        raise ConfigError(f"{KEY}: {name} has no function {function!r}")
    return typing.cast(Callable[..., Any], built)


def build_estimator(
    spec: str,
    root: Path,
    features: Sequence[tuple[str, str]],
    task: str,
    params: dict[str, Any],
) -> Any:
    """Call the factory with the feature columns by type, the task and the params; return its estimator."""
    built = load_factory(spec, root)
    by_type = {
        kind: [name for name, type_ in features if type_ == kind]
        for kind in ("numeric", "categorical", "boolean")
    }
    try:
        estimator = built(**by_type, task=task, params=dict(params))
    except Exception as exc:  # the team's function: report it in one line, whatever it raised
        raise ConfigError(f"{KEY}: {spec} raised {type(exc).__name__}: {first_line(exc)}") from None
    lacking = [
        name for name in ("fit", "predict", "get_params") if not callable(getattr(estimator, name, None))
    ]
    if lacking:
        raise ConfigError(
            f"{KEY}: {spec} returned {type(estimator).__name__}, which lacks {', '.join(lacking)}; "
            "expected an unfitted scikit-learn estimator or Pipeline"
        )
    return estimator


def has_proba(estimator: Any) -> bool:
    """Return True when ``estimator`` offers ``predict_proba`` (a Pipeline asks its last step)."""
    return callable(getattr(estimator, "predict_proba", None))

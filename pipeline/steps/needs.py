"""What a fitted model needs to load again: the team's modules and files, and the libraries, with versions.

Loading a pickle imports every module that defines one of its objects' classes (and what those
modules import). Training records them (``model.records.Needs``) by pickling the model once more
into nothing, noting each object's module (``pickle.Pickler.reducer_override`` sees every object
but a few builtin ones), and by reading the ``import`` lines of the team's files. A module is the
team's when its file is under the project's root and not in an installed environment; a library is
an installed distribution (``importlib.metadata``), the standard library and ml-cicd excepted. The
serving image copies the team's files and installs the libraries it lacks
(``pipeline/steps/image.py``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import pickle
import site
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from model.records import CodeFile, Needs
from pipeline.core.factory import OWN_PACKAGES


class _Sink:
    """A file that keeps nothing: the pickle's bytes are not needed, only the modules it names."""

    def write(self, data: bytes | pickle.PickleBuffer) -> int:
        return memoryview(data).nbytes  # protocol 5 hands large buffers over as they are


class _Modules(pickle.Pickler):
    """A pickler that notes the module of every object (and class, function) it pickles."""

    def __init__(self) -> None:
        super().__init__(_Sink(), protocol=pickle.HIGHEST_PROTOCOL)
        self.modules: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        named = (
            obj if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__")) else type(obj)
        )
        module = getattr(named, "__module__", None)
        if isinstance(module, str):
            self.modules.add(module)
        return NotImplemented  # pickle it as pickle would


def pickled_modules(obj: Any) -> set[str]:
    """Return the modules that unpickling ``obj`` imports (the modules of its objects' classes)."""
    pickler = _Modules()
    pickler.dump(obj)
    return pickler.modules


def model_needs(fitted: Any, root: Path, factory: str | None) -> Needs:
    """Return what loading ``fitted`` needs: the team's modules under ``root``, their files, the libraries.

    The team's packages are those the pickle names, and those their files import, in turn; every
    loaded module of such a package counts (what importing one runs may import the others).
    """
    root = Path(root).resolve()
    loaded = team_modules(root)
    loaded_tops = {name.partition(".")[0] for name in loaded}
    referenced = {name.partition(".")[0] for name in pickled_modules(fitted)}
    wanted, files = referenced & loaded_tops, set()
    while True:
        team = {name for name in loaded if name.partition(".")[0] in wanted}
        files = {path for name in team for path in _module_files(name, root)}
        imported = {top for path in files for top in imported_names(root / path)}
        if imported & loaded_tops <= wanted:
            break
        wanted |= imported & loaded_tops
    outside = (referenced | imported) - loaded_tops - OWN_PACKAGES - set(sys.stdlib_module_names)
    return Needs(
        factory=factory,
        modules=tuple(sorted(team)),
        files=tuple(CodeFile(path, _sha256(root / path)) for path in sorted(files)),
        libraries=distributions(outside - {"builtins"}),
    )


def team_modules(root: Path) -> set[str]:
    """Return the loaded modules whose file is under ``root`` and in no installed environment (ml-cicd's excepted)."""
    installed = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, *site.getsitepackages())}
    found = set()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or name.partition(".")[0] in OWN_PACKAGES:
            continue
        resolved = Path(path).resolve()
        if resolved.is_relative_to(root) and not any(resolved.is_relative_to(p) for p in installed):
            found.add(name)
    return found


def _module_files(name: str, root: Path) -> list[str]:
    """Return the files importing module ``name`` reads under ``root``: its own and its packages' ``__init__.py``."""
    module = sys.modules[name]
    paths = [Path(str(module.__file__)).resolve()]
    parts = name.split(".")
    for i in range(1, len(parts)):
        parent = sys.modules.get(".".join(parts[:i]))
        path = getattr(parent, "__file__", None)  # None: a namespace package, no file
        if path:
            paths.append(Path(path).resolve())
    return [p.relative_to(root).as_posix() for p in paths if p.is_relative_to(root)]


def imported_names(path: Path) -> set[str]:
    """Return the top-level names a Python file imports absolutely (``import a.b``, ``from a import b``)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def distributions(tops: Iterable[str]) -> dict[str, str]:
    """Return the installed distributions providing the top-level modules ``tops``, with their versions."""
    providers = importlib.metadata.packages_distributions()
    found: dict[str, str] = {}
    for top in tops:
        for dist in providers.get(top, ()):
            found[dist] = importlib.metadata.version(dist)
    return dict(sorted(found.items()))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

"""The host runner's content-addressed step cache: a key from what a step reads, its outputs stored and restored.

A key covers the step's argv, the code every step depends on (``dag.CODE``), the config
sections the step names (or the whole file) and every file the step reads; a directory counts
by its file names and contents, a missing file by its name. An entry is complete only once
its ``complete`` marker is written, inside a staged directory renamed into place.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path

from model.files import staged_directory
from pipeline.config import Config
from pipeline.dag import CODE, Step

SKIP_PARTS = frozenset({"__pycache__", ".venv", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
CONFIG_READ = "config:"


class StepCache:
    """Keys, stores and restores step outputs under ``root`` for one config and out directory."""

    def __init__(self, root: Path, config: Config, config_path: Path, out: Path) -> None:
        """Cache under ``root``; ``config`` resolves ``config:KEY`` reads; outputs live in ``out``."""
        self.root = root
        self.config = config
        self.config_path = config_path
        self.out = out
        self._code: str | None = None

    def key(self, step: Step) -> str:
        """Return the cache key of ``step`` (see the module docstring)."""
        digest = hashlib.sha256()
        digest.update(repr((step.name, step.commands)).encode())
        digest.update(self.code_hash().encode())
        if step.sections:
            digest.update(self.config.section_hash(*step.sections).encode())
        else:
            digest.update(self.config_path.read_bytes())
        for path in self.inputs(step):
            hash_path(digest, path)
        return digest.hexdigest()

    def inputs(self, step: Step) -> list[Path]:
        """Return the files and directories ``step`` reads (``config:KEY`` resolved; unset keys left out)."""
        found: list[Path] = []
        for read in step.reads:
            if read.startswith(CONFIG_READ):
                value: object = self.config
                for part in read.removeprefix(CONFIG_READ).split("."):
                    value = getattr(value, part)
                if value is not None:
                    found.append(Path(str(value)))
            else:
                found.append(Path(read))
        return found

    def code_hash(self) -> str:
        """Return a hash of the code and pinned requirements that every step depends on."""
        if self._code is None:
            digest = hashlib.sha256()
            for path in tree(Path.cwd(), CODE):
                hash_path(digest, path)
            self._code = digest.hexdigest()
        return self._code

    def has(self, key: str) -> bool:
        """Return True when a complete entry for ``key`` exists."""
        return (self.root / key[:2] / key / "complete").exists()

    def restore(self, key: str, step: Step) -> bool:
        """Copy a complete entry's outputs into the out directory; return False when there is none."""
        entry = self.root / key[:2] / key
        if not self.has(key):
            return False
        for name in step.writes:
            target, cached = self.out / name, entry / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            if cached.is_dir():
                shutil.copytree(cached, target)
            elif cached.exists():
                shutil.copy2(cached, target)
        return True

    def store(self, key: str, step: Step) -> None:
        """Save ``step``'s outputs from the out directory under ``key`` (once)."""
        entry = self.root / key[:2] / key
        if (entry / "complete").exists():
            return
        with staged_directory(entry) as stage:
            for name in step.writes:
                source = self.out / name
                if source.is_dir():
                    shutil.copytree(source, stage / name)
                elif source.exists():
                    shutil.copy2(source, stage / name)
            (stage / "complete").write_text("ok\n")


def tree(root: Path, names: Iterable[str]) -> list[Path]:
    """Return every file under the named files/dirs, sorted, skipping caches and venvs."""
    found: list[Path] = []
    for name in names:
        path = root / name
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(
                p for p in path.rglob("*") if p.is_file() and not SKIP_PARTS & set(p.relative_to(root).parts)
            )
    return sorted(found)


def hash_path(digest: hashlib._Hash, path: Path) -> None:
    """Feed a file, a directory (names and contents, caches skipped) or its absence into ``digest``."""
    if path.is_dir():
        for child in tree(path, ["."]):
            digest.update(str(child.relative_to(path)).encode())
            digest.update(hashlib.sha256(child.read_bytes()).digest())
    elif path.is_file():
        digest.update(str(path).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    else:
        digest.update(f"missing:{path}".encode())

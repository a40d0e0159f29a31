"""The host runner's content-addressed step cache: a key from what a step reads, its outputs stored and restored.

A key covers the step's argv, ml-cicd's own code and requirement lists (``io/shipped.py``), the config
sections the step names (or the whole file) and every file the step reads; a directory counts
by its file names and contents, a missing file by its name.

An entry, ``ROOT/<key[:2]>/<key>/``, holds the step's outputs as they were in ``--out``
(``outputs/``) and ``manifest.json``: the key, the step's name and, for each name the step
writes, the sha256 of every file stored under it (or that the step left it absent). It is
assembled in a temp directory beside its place and renamed into it whole; an existing entry is
never replaced, so a reader never sees one entry turn into another.

A restore trusts nothing it reads: the manifest must name this very key and step, the entry
must hold exactly the files it lists, and every copy made into ``--out`` must hash as listed.
The copies are made in a temp directory inside ``--out`` and moved into place only when all of
them match, so a restore is whole or nothing. Anything else (an entry of an older layout, one
truncated, edited or moved under another key) is a miss: the runner reports it, the entry is
removed and the step runs, storing a good entry. Never a wrong restore.

Why a wrong entry cannot be stored: a step writes into ``--out`` (its argv is the Dagger
module's too), and its outputs are taken from there once it ends. Two things could put what
the step did not compute there, and both are shut out. Another run on the same ``--out``: the
runner holds an exclusive lock on ``--out`` for the whole run (``processes.py``), so a second
run waits for the first to end. The step's inputs changing while it runs (a config or data
file edited, the code changed under a long run): the key is computed again when the step
ends, and its outputs are stored only when it is still the key the step started with.
Separate ``--out`` directories may share one cache: entries appear whole and never change.

The cache only saves time: a failure to store or read it (a full disk, no permission) is
reported by the runner and the step's own result stands.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.config import Config, load_config
from pipeline.dag import PROJECT, TEAM_CODE, Step
from pipeline.errors import PipelineError
from pipeline.io.shipped import code_paths

# what tools write while a step runs (a test run's .hypothesis too): never an input
SKIP_PARTS = frozenset(
    {"__pycache__", ".venv", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}
)
CONFIG_READ = "config:"
MANIFEST = "manifest.json"
OUTPUTS = "outputs"
LAYOUT = 2  # the entry layout of this module; entries of another layout are misses
_CHUNK = 1 << 20


class StaleEntry(Exception):
    """An entry that is not what its key says, or could not be read: a miss, reported; the step runs."""


class StepCache:
    """Keys, stores and restores step outputs under ``root`` for one config and out directory."""

    def __init__(self, root: Path, config: Config, config_path: Path, out: Path) -> None:
        """Cache under ``root``; ``config`` resolves ``config:KEY`` reads; outputs live in ``out``.

        A read of the whole project (``dag.PROJECT``, and ``dag.TEAM_CODE`` when the config names a
        ``[model] factory``) is the config's directory without ``out``,
        the cache itself and the registry.
        """
        self.root = root
        self.config = config
        self.config_path = config_path
        self.out = out
        self._code: str | None = None
        self._project: str | None = None

    def key(self, step: Step) -> str:
        """Return the cache key of ``step`` (see the module docstring), with the code and project hashed once per run."""
        if self._code is None:
            self._code = code_hash()
        project = None
        if reads_project(step, self.config):
            if self._project is None:
                self._project = self._project_hash(self.config)
            project = self._project
        return self._key(step, self.config, self._code, project)

    def unchanged(self, step: Step, key: str) -> bool:
        """Return True when everything ``step`` depends on still gives ``key`` (config and code read afresh)."""
        try:
            config = load_config(self.config_path)
            project = self._project_hash(config) if reads_project(step, config) else None
            return self._key(step, config, code_hash(), project) == key
        except (PipelineError, OSError):
            return False

    def _project_hash(self, config: Config) -> str:
        """Return the hash of the whole project: the config's directory without out/, the cache and the registry."""
        return project_hash(self.config_path.parent, (self.out, self.root, Path(config.registry.path)))

    def _key(self, step: Step, config: Config, code: str, project: str | None) -> str:
        digest = hashlib.sha256()
        digest.update(repr((step.name, step.commands)).encode())
        digest.update(code.encode())
        if step.sections:
            digest.update(config.section_hash(*step.sections).encode())
        else:
            digest.update(self.config_path.read_bytes())
        if project is not None:
            digest.update(project.encode())
        for path in inputs(step, config):
            hash_path(digest, path)
        return digest.hexdigest()

    def inputs(self, step: Step) -> list[Path]:
        """Return the files and directories ``step`` reads (``config:KEY`` resolved; unset keys left out)."""
        return inputs(step, self.config)

    def entry(self, key: str) -> Path:
        """Return the directory of ``key``'s entry (which may not exist)."""
        return self.root / key[:2] / key

    def has(self, key: str) -> bool:
        """Return True when an entry whose manifest names ``key`` exists (its files are checked on restore)."""
        try:
            manifest = json.loads((self.entry(key) / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(manifest, dict) and manifest.get("key") == key

    def restore(self, key: str, step: Step) -> bool:
        """Put the outputs stored under ``key`` into the out directory; return False when there is no entry.

        Raise :class:`StaleEntry` when the entry does not match its manifest (it is removed) or cannot
        be read or copied; the out directory is then as it was.
        """
        entry = self.entry(key)
        if not (entry / MANIFEST).exists():
            return False
        try:
            expected = _checked_manifest(entry, key, step)
            self._restore(entry, expected)
        except _Mismatch as exc:
            _discard(entry)
            raise StaleEntry(f"entry {key[:12]} does not match its manifest ({exc}); removed") from None
        except OSError as exc:
            raise StaleEntry(f"entry {key[:12]} could not be restored ({_os_reason(exc)})") from None
        return True

    def _restore(self, entry: Path, expected: dict[str, dict[str, str] | str | None]) -> None:
        """Copy every output into a temp directory in ``out``, check each copy's hash, then move them in."""
        self.out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".restore.", suffix=".tmp", dir=self.out))
        try:
            for name, want in expected.items():
                source, copy = entry / OUTPUTS / name, stage / name
                if isinstance(want, str):
                    if copy_hashed(source, copy) != want:
                        raise _Mismatch(f"{name} differs from its sha256")
                elif want is not None:
                    copy.mkdir()
                    for relative, sha in want.items():
                        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
                        if copy_hashed(source / relative, copy / relative) != sha:
                            raise _Mismatch(f"{name}/{relative} differs from its sha256")
            for name, want in expected.items():
                _remove(self.out / name)
                if want is not None:
                    os.replace(stage / name, self.out / name)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def store(self, key: str, step: Step) -> bool:
        """Save ``step``'s outputs from the out directory under ``key``; return False when an entry exists.

        The entry is assembled beside its place and renamed into it; when another process stored
        the key first, its entry stays and this copy is dropped. An OS error (a full disk) is raised
        and leaves no entry behind.
        """
        entry = self.entry(key)
        if (entry / MANIFEST).exists():
            return False
        entry.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=entry.parent))
        try:
            outputs: dict[str, dict[str, Any]] = {}
            for name in step.writes:
                source, target = self.out / name, stage / OUTPUTS / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    files = {}
                    for relative in files_under(source):
                        (target / relative).parent.mkdir(parents=True, exist_ok=True)
                        files[relative] = copy_hashed(source / relative, target / relative)
                    outputs[name] = {"dir": files}
                elif source.is_file():
                    outputs[name] = {"file": copy_hashed(source, target)}
                else:
                    outputs[name] = {"absent": True}
            manifest = {"layout": LAYOUT, "key": key, "step": step.name, "outputs": outputs}
            (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            try:
                os.rename(stage, entry)
            except OSError:
                if (entry / MANIFEST).exists():  # another run stored this key first
                    return False
                raise
            return True
        finally:
            shutil.rmtree(stage, ignore_errors=True)


class _Mismatch(Exception):
    """An entry differs from its manifest, or its manifest from what it must say."""


def _checked_manifest(entry: Path, key: str, step: Step) -> dict[str, dict[str, str] | str | None]:
    """Return what each output of ``step`` must be (a file's sha256, a directory's files, None: absent).

    Raise :class:`_Mismatch` unless the manifest names ``key`` and ``step``, lists exactly the
    step's outputs, and the entry holds exactly the files it lists (plain files, no links).
    """
    try:
        manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
    except ValueError:
        raise _Mismatch("unreadable manifest") from None
    if not isinstance(manifest, dict) or manifest.get("layout") != LAYOUT:
        raise _Mismatch(f"not a layout-{LAYOUT} manifest")
    if manifest.get("key") != key or manifest.get("step") != step.name:
        raise _Mismatch(f"stored for {manifest.get('step')!r} under {str(manifest.get('key'))[:12]}")
    outputs = manifest.get("outputs")
    if not isinstance(outputs, dict) or set(outputs) != set(step.writes):
        raise _Mismatch(f"lists outputs {sorted(outputs or {})}, the step writes {sorted(step.writes)}")
    expected: dict[str, dict[str, str] | str | None] = {}
    for name in step.writes:
        stored, path = outputs[name], entry / OUTPUTS / name
        if stored == {"absent": True}:
            if os.path.lexists(path):
                raise _Mismatch(f"{name} should be absent")
            expected[name] = None
        elif isinstance(stored, dict) and isinstance(stored.get("file"), str) and len(stored) == 1:
            if not _plain_file(path):
                raise _Mismatch(f"{name} is not a stored file")
            expected[name] = stored["file"]
        elif isinstance(stored, dict) and isinstance(stored.get("dir"), dict) and len(stored) == 1:
            files = stored["dir"]
            if not all(isinstance(sha, str) for sha in files.values()):
                raise _Mismatch(f"{name}: malformed file list")
            found = files_under(path) if path.is_dir() and not path.is_symlink() else None
            if found is None or set(found) != set(files):
                raise _Mismatch(f"{name} holds other files than listed")
            if not all(_plain_file(path / relative) for relative in files):
                raise _Mismatch(f"{name} holds a link or a special file")
            expected[name] = dict(files)
        else:
            raise _Mismatch(f"{name}: malformed entry")
    return expected


def _plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def _discard(entry: Path) -> None:
    """Remove an entry: renamed out of its place first, so no reader finds it half removed."""
    with contextlib.suppress(OSError):
        gone = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".stale", dir=entry.parent))
        os.replace(entry, gone / entry.name)
        shutil.rmtree(gone, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _os_reason(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename is not None else ""
    return f"{where}{exc.strerror or exc}"


def copy_hashed(source: Path, target: Path) -> str:
    """Copy a plain file (never following a link) with its mode and times; return the sha256 of what was written."""
    digest = hashlib.sha256()
    fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as reader, target.open("xb") as writer:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a plain file", str(source))
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
    shutil.copystat(source, target)
    return digest.hexdigest()


def files_under(directory: Path) -> list[str]:
    """Return the files under ``directory`` as sorted POSIX paths relative to it (links count as files)."""
    found: list[str] = []
    for parent, dirs, files in os.walk(directory):
        base = Path(parent).relative_to(directory)
        found.extend((base / name).as_posix() for name in files)
        found.extend((base / name).as_posix() for name in dirs if (Path(parent) / name).is_symlink())
    return sorted(found)


def reads_project(step: Step, config: Config) -> bool:
    """Return True when ``step``'s result depends on every file of the project under ``config``."""
    return PROJECT in step.reads or (TEAM_CODE in step.reads and config.model.factory is not None)


def inputs(step: Step, config: Config) -> list[Path]:
    """Return the files and directories ``step`` reads under ``config`` (unset ``config:KEY`` reads left out)."""
    found: list[Path] = []
    for read in step.reads:
        if read in (PROJECT, TEAM_CODE):
            continue  # hashed by the cache, which knows what of the project is its own output
        if read.startswith(CONFIG_READ):
            value: object = config
            for part in read.removeprefix(CONFIG_READ).split("."):
                value = getattr(value, part)
            if value is not None:
                found.append(Path(str(value)))
        else:
            found.append(Path(read))
    return found


def code_hash() -> str:
    """Return a hash of ml-cicd's code and pinned requirements, which every step depends on."""
    digest = hashlib.sha256()
    for path in code_paths():
        hash_path(digest, path)
    return digest.hexdigest()


def project_hash(root: Path, leave_out: Iterable[Path]) -> str:
    """Return a hash of every file under ``root`` (names and contents), but those under ``leave_out``.

    Directories of caches and venvs (``SKIP_PARTS``) and those of ``leave_out`` are not entered.
    """
    digest = hashlib.sha256()
    skipped = {path.resolve() for path in leave_out}
    for parent, dirs, files in os.walk(root):
        here = Path(parent)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_PARTS and (here / d).resolve() not in skipped)
        for name in sorted(files):
            path = here / name
            if path.resolve() in skipped or not path.is_file():
                continue
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


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

"""The directory registry: immutable versions, aliases and their history, safe under concurrent writers.

The registry is a directory (config ``registry.path``, or ``--registry PATH``):
``versions/<n>/`` holds immutable versions (the model file, metadata.json and signature.json
exactly as ``train`` wrote them, plus lineage.json, MODEL_CARD.md and metrics.json when known);
``history.jsonl`` logs every alias move and is the one source of truth for aliases: readers
replay it, and ``aliases.json`` is only a view of it for people. A version is assembled under
``.staging/`` and renamed into ``versions/`` while holding an exclusive lock, so concurrent
writers never share a number and a killed writer leaves no partial version. Reading a version
checks the model file's sha256 (``model.artifact.verify_artifact``) and refuses a tampered file.

An alias move lands whole or not at all, and never later: it is committed by appending one
complete line to the history (a torn, unterminated line is cut off before anything else is
written, so it never lands afterwards). Before that line, ``pending.json`` records the move;
the next writer finishes a committed move (the view) or discards one that never landed, and a
retried rollback that finds its own interrupted move already landed does not move again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.artifact import check_signature, read_metadata, signed_files, verify_artifact
from model.codec import read_json, read_optional, read_record, write_record
from model.errors import ArtifactError
from model.files import staged_directory, write_json_atomic, write_text_atomic
from model.records import GateRecord, Lineage, Metrics, ModelMetadata
from pipeline.core.promotion import PRODUCTION, PROMOTE, ROLLBACK, VERSION_REF, alias_stack, check_alias_name
from pipeline.errors import ModelError, RegistryError
from pipeline.io.stage import Stage, clean_stale_stages, copy_synced, fsync_dir

CARD_FILE = "MODEL_CARD.md"
VERSIONS = "versions"
ALIASES = "aliases.json"
HISTORY = "history.jsonl"
PENDING = "pending.json"
LOCK = ".lock"
STAGING = ".staging"


@dataclass(frozen=True)
class Registered:
    """The outcome of ``register``: the version and whether this call created it."""

    version: int
    created: bool
    alias_moved: str | None = None


class Registry:
    """A directory registry rooted at ``root``; nothing is created until the first write."""

    def __init__(self, root: Path) -> None:
        """Point at ``root`` (it may not exist yet)."""
        self.root = Path(root)
        self.versions_dir = self.root / VERSIONS
        self.aliases_path = self.root / ALIASES
        self.history_path = self.root / HISTORY
        self.pending_path = self.root / PENDING
        self.landed: dict[str, Any] | None = None  # an interrupted move the last writer found committed

    # -- reading --------------------------------------------------------------------------------

    def numbers(self) -> list[int]:
        """Return the published version numbers, ascending."""
        return sorted(self._all_numbers())

    def path(self, version: int) -> Path:
        """Return the directory of ``version``, or raise RegistryError when it does not exist."""
        directory = self.versions_dir / str(version)
        if not (directory / Lineage.FILE).is_file():
            known = ", ".join(str(n) for n in self.numbers()) or "none"
            raise RegistryError(
                f"unknown model version {version} in registry {self.root} (versions: {known})"
            )
        return directory

    def aliases(self) -> dict[str, int]:
        """Return the current ``alias -> version`` map, replayed from the history (the source of truth)."""
        derived: dict[str, int] = {}
        for number, entry in enumerate(self.history(), 1):
            try:
                derived[str(entry["alias"])] = int(entry["to"])
            except (KeyError, TypeError, ValueError):
                raise RegistryError(f"{self.history_path}:{number}: malformed history entry") from None
        return derived

    def history(self, alias: str | None = None) -> list[dict[str, Any]]:
        """Return the alias moves, oldest first (only ``alias``'s when given)."""
        try:
            text = self.history_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RegistryError(f"{self.history_path}: unreadable history ({exc})") from None
        complete = text[: text.rfind("\n") + 1]  # an unterminated tail is a torn, never-applied move
        entries = []
        for number, line in enumerate(complete.splitlines(), 1):
            try:
                entry = json.loads(line)
            except ValueError:
                raise RegistryError(f"{self.history_path}:{number}: malformed history line") from None
            if not isinstance(entry, dict):
                raise RegistryError(f"{self.history_path}:{number}: malformed history line")
            if alias is None or entry.get("alias") == alias:
                entries.append(entry)
        return entries

    def lineage(self, version: int) -> Lineage:
        """Return ``version``'s lineage record."""
        return read_record(self.path(version) / Lineage.FILE, Lineage)

    def metadata(self, version: int) -> ModelMetadata:
        """Return ``version``'s model metadata (as train wrote it)."""
        return read_metadata(self.path(version))

    def metrics(self, version: int) -> Metrics | None:
        """Return ``version``'s metrics.json, or None when it was registered without one."""
        return read_optional(self.path(version) / Metrics.FILE, Metrics)

    def resolve(self, ref: str) -> int:
        """Return the version that ``ref`` (``3``, ``v3`` or an alias) names; exit 2 when unknown."""
        match = VERSION_REF.fullmatch(ref)
        if match:
            version = int(match.group(1))
            self.path(version)
            return version
        aliases = self.aliases()
        if ref not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise RegistryError(f"unknown alias {ref!r} in registry {self.root} (aliases: {known})")
        return aliases[ref]

    def verify(self, version: int) -> Path:
        """Return ``version``'s directory after checking the model file against its recorded sha256."""
        directory = self.path(version)
        verify_artifact(directory, f"registry version {version}")
        return directory

    def aliases_of(self, version: int, aliases: dict[str, int] | None = None) -> list[str]:
        """Return the aliases pointing at ``version``, sorted."""
        current = self.aliases() if aliases is None else aliases
        return sorted(name for name, target in current.items() if target == version)

    def find_model(self, model_sha256: str) -> int | None:
        """Return the version holding a model with this sha256, or None."""
        for version in self.numbers():
            path = self.versions_dir / str(version) / Lineage.FILE
            if path.is_file() and read_record(path, Lineage).model_sha256 == model_sha256:
                return version
        return None

    # -- writing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's exclusive lock (released by the kernel if the process dies)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK).open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def register(
        self,
        model_dir: Path,
        *,
        gates: GateRecord | None,
        metrics_path: Path | None,
        by: str,
        card: Callable[[ModelMetadata, Lineage], str],
        alias: str | None = None,
    ) -> Registered:
        """Publish the artefact in ``model_dir`` as the next version (or return the one holding it).

        ``card`` writes the version's MODEL_CARD.md from its metadata and lineage.
        """
        model_dir = Path(model_dir)
        metadata = verify_artifact(model_dir, "candidate")
        check_signature(model_dir, metadata, "candidate")  # only what this key signed gets in
        digest = metadata.model_sha256
        if alias is not None:
            check_alias_name(alias)
        existing = self.find_model(digest)
        if existing is not None:
            return Registered(existing, False, self._point_after_register(alias, existing, by))
        self.root.mkdir(parents=True, exist_ok=True)
        with Stage(self.root / STAGING) as stage:
            for name in signed_files(metadata):
                copy_synced(model_dir / name, stage / name)
            try:
                verify_artifact(stage, "copy for the registry")
            except ArtifactError:
                raise ModelError(f"{model_dir}: changed while being copied; register again") from None
            if metrics_path is not None:
                read_record(metrics_path, Metrics)  # refuse a malformed metrics file before publishing
                copy_synced(metrics_path, stage / Metrics.FILE)
            with self.locked():
                clean_stale_stages(self.root / STAGING)
                existing = self.find_model(digest)
                if existing is not None:
                    return Registered(existing, False, self._point_locked(alias, existing, by))
                version = max(self._all_numbers(), default=0) + 1
                lineage = Lineage(
                    version=version,
                    model_sha256=digest,
                    git_commit=metadata.git_commit,
                    data_sha256=metadata.data_sha256,
                    config_sha256=metadata.config_sha256,
                    parent=self._aliases_locked().get(PRODUCTION),
                    gates=gates,
                    source=str(model_dir.resolve()),
                    registered_by=by,
                    registered_at=_now(),
                )
                write_record(stage / Lineage.FILE, lineage)
                write_text_atomic(stage / CARD_FILE, card(metadata, lineage))
                for item in stage.iterdir():
                    item.chmod(0o444)  # immutable by intent: promotion moves aliases, never files
                self.versions_dir.mkdir(exist_ok=True)
                os.rename(stage, self.versions_dir / str(version))  # fails rather than overwrite
                fsync_dir(self.versions_dir)
                moved = self._point_locked(alias, version, by)
        return Registered(version, True, moved)

    def move(
        self,
        alias: str,
        version: int,
        *,
        action: str,
        by: str,
        approver: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any] | None:
        """Point ``alias`` at ``version`` and log it; return the history entry (None: already there)."""
        check_alias_name(alias)
        self.path(version)
        with self.locked():
            return self._move_locked(alias, version, action, by, approver, reason)

    def rollback(self, alias: str, *, by: str, reason: str | None = None) -> dict[str, Any]:
        """Move ``alias`` back to its previous target in the history; exit 2 when there is none."""
        if alias not in self.aliases():
            self.resolve(alias)  # raises: unknown alias
        with self.locked():
            current = self._aliases_locked().get(alias)
            landed = self.landed
            if landed is not None and landed.get("alias") == alias and landed.get("action") == ROLLBACK:
                return landed | {"landed_earlier": True}  # this rollback's interrupted try had landed
            stack = alias_stack(self.history(alias))
            while stack and stack[-1] == current:
                stack.pop()
            if current is None or not stack:
                raise RegistryError(
                    f"nothing to roll back to: alias {alias!r} has no earlier target in {self.history_path}"
                )
            target = stack[-1]
            self.verify(target)
            entry = self._move_locked(alias, target, ROLLBACK, by, None, reason)
        assert entry is not None  # target differs from current by construction
        return entry

    def _all_numbers(self) -> list[int]:
        """Return every version number under versions/ (published or not; ASCII digits only), so none is reused."""
        if not self.versions_dir.is_dir():
            return []
        return [int(p.name) for p in self.versions_dir.iterdir() if p.name.isascii() and p.name.isdigit()]

    def _aliases_locked(self) -> dict[str, int]:
        """Return the aliases, after settling a move an earlier writer left (a torn line, ``pending.json``).

        A pending move whose history line is there landed: the view is rewritten and the move is
        remembered in ``landed`` (for a retry). One whose line is not there never landed: dropped.
        """
        self._drop_torn_history_tail()
        self.landed = None
        if self.pending_path.is_file():
            try:
                pending = json.loads(self.pending_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pending = {}  # torn before its rename could not happen (atomic); unreadable: never landed
            ids = {entry.get("id") for entry in self.history()}
            if isinstance(pending, dict) and pending.get("id") in ids:
                self.landed = pending
        derived = self.aliases()
        view = (
            read_json(self.aliases_path, "alias file", RegistryError) if self.aliases_path.is_file() else {}
        )
        if view != derived:
            write_json_atomic(self.aliases_path, derived)
        self.pending_path.unlink(missing_ok=True)
        return derived

    def _drop_torn_history_tail(self) -> None:
        if not self.history_path.is_file():
            return
        data = self.history_path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.history_path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def _move_locked(
        self, alias: str, version: int, action: str, by: str, approver: str | None, reason: str | None
    ) -> dict[str, Any] | None:
        current = self._aliases_locked()
        if current.get(alias) == version:
            return None
        entry = {
            "id": uuid.uuid4().hex,
            "alias": alias,
            "from": current.get(alias),
            "to": version,
            "action": action,
            "by": by,
            "approver": approver,
            "reason": reason,
            "at": _now(),
        }
        write_json_atomic(self.pending_path, entry)  # 1. the intent
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.history_path.open("a", encoding="utf-8") as handle:
            handle.write(line)  # 2. the commit: one complete line
            handle.flush()
            os.fsync(handle.fileno())
        fsync_dir(self.root)
        current[alias] = version
        write_json_atomic(self.aliases_path, current)  # 3. the view
        self.pending_path.unlink()  # 4. done
        return entry

    def _point_locked(self, alias: str | None, version: int, by: str) -> str | None:
        if alias is None:
            return None
        entry = self._move_locked(alias, version, PROMOTE, by, None, "registered")
        return alias if entry is not None else None

    def _point_after_register(self, alias: str | None, version: int, by: str) -> str | None:
        if alias is None:
            return None
        with self.locked():
            return self._point_locked(alias, version, by)


def production_model_dir(registry_path: Path) -> Path | None:
    """Return the verified directory of the version ``production`` points at, or None when unset."""
    registry = Registry(registry_path)
    version = registry.aliases().get(PRODUCTION)
    return None if version is None else registry.verify(version)


def version_of(model_dir: Path) -> int | None:
    """Return the registry version of an artefact directory (a version or an export), or None."""
    lineage = read_optional(Path(model_dir) / Lineage.FILE, Lineage)
    return None if lineage is None else lineage.version


def export(registry: Registry, version: int, target: Path) -> Path:
    """Copy ``version``'s artefact (model, metadata, lineage) to ``target`` atomically, verified."""
    source = registry.verify(version)
    metadata = read_metadata(source)
    names = [name for name in (*signed_files(metadata), Lineage.FILE) if (source / name).is_file()]
    with staged_directory(Path(target)) as stage:
        for name in names:
            copy_synced(source / name, stage / name)
            (stage / name).chmod(0o644)
        verify_artifact(stage, f"export of version {version}")
    return Path(target)


def is_export(path: Path) -> bool:
    """Return True when ``path`` is a real directory holding exactly an exported artefact (and nothing else)."""
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        metadata = read_metadata(path)
        expected = {*signed_files(metadata), Lineage.FILE}
    except ArtifactError:
        return False
    return {p.name for p in path.iterdir()} <= expected


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

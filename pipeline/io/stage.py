"""Staging directories owned by live processes, and copies that reach the disk before a rename.

A writer assembles what it publishes in a :class:`Stage` (a temp directory whose lock file it
holds); a stage whose lock can be taken belongs to a dead writer and is removed by the next
writer (:func:`clean_stale_stages`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from pipeline.errors import ModelError


class Stage:
    """A temp directory under ``.staging/`` owned by this process through a held lock file.

    A stage whose lock file can be locked by someone else belongs to a dead writer and
    is removed by the next registration (see ``clean_stale_stages``).
    """

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        self.handle: int | None = None
        self.lock_path: Path | None = None
        self.path: Path | None = None

    def __enter__(self) -> Path:
        self.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="stage-", suffix=".lock", dir=self.parent)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.handle, self.lock_path = fd, Path(name)
        self.path = self.lock_path.with_suffix("")
        self.path.mkdir()
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self.path is not None and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
        if self.lock_path is not None:
            self.lock_path.unlink(missing_ok=True)
        if self.handle is not None:
            os.close(self.handle)


def clean_stale_stages(parent: Path) -> None:
    """Remove stages left by killed writers (their lock files are no longer held)."""
    if not parent.is_dir():
        return
    for lock in parent.glob("stage-*.lock"):
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
        lock.unlink(missing_ok=True)
        os.close(fd)


def copy_synced(source: Path, target: Path) -> None:
    """Copy a file and fsync the copy; a missing source is a :class:`ModelError` naming it."""
    if not source.is_file():
        raise ModelError(f"{source}: file missing")
    shutil.copyfile(source, target)
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Atomic file and directory writes: a crash never leaves a half-written artefact.

An OS error that names no file (a full disk fails ``write``, which knows no path) is raised
again naming the file or directory being written, so a caller can say where.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
FILE_MODE = 0o644  # temp files are created 0600; artefacts must be readable by e.g. a non-root server
DIR_MODE = 0o755


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        named = _named(exc, path)
        if named is not None:
            raise named from exc
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write indented, key-sorted JSON atomically (stable bytes for stable input)."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    write_text_atomic(path, text)


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield a temp directory beside ``target``; on success it replaces ``target``.

    On any exception the temp directory is removed and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    stage.chmod(DIR_MODE)
    try:
        yield stage
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(stage, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, target)
    except BaseException as exc:
        shutil.rmtree(stage, ignore_errors=True)
        named = _named(exc, target)
        if named is not None:
            raise named from exc
        raise


def _named(exc: BaseException, path: Path) -> OSError | None:
    """Return ``exc`` again, naming ``path``, when it is an OS error that names no file; else None."""
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        return OSError(exc.errno, exc.strerror, str(path))
    return None

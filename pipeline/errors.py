"""Domain exceptions: every failure the CLI reports as one clear line.

``exit_code`` follows the CLI contract: 2 for bad input (data, config, unknown
model version), 1 for a check that ran and failed (quality gate, drift limit), 4 for
the environment (the disk is full, over quota or read-only, a path is not writable,
the machine is out of memory or file handles): nothing about the input or the model,
so retrying elsewhere or after freeing space may pass. 3 is left to other tools.
"""

from __future__ import annotations

import errno
import os

# The OS errors that say "this machine refused", never "this input is wrong" (a missing file is
# the input's: commands report it as bad input, naming the file).
ENVIRONMENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,  # no space left on device
        errno.EDQUOT,  # disk quota exceeded
        errno.EFBIG,  # file too large for this file system
        errno.EROFS,  # read-only file system
        errno.EACCES,  # permission denied
        errno.EPERM,  # operation not permitted
        errno.EIO,  # input/output error
        errno.EMFILE,  # too many open files in this process
        errno.ENFILE,  # too many open files on this machine
        errno.ENOMEM,  # out of memory
    }
)


class PipelineError(Exception):
    """Base class: bad input the user must fix; the CLI exits 2."""

    exit_code = 2


class ConfigError(PipelineError):
    """The config file is unreadable, malformed or names unknown keys."""


class DataError(PipelineError):
    """A table is missing, unreadable or cannot be used as asked."""


class ModelError(PipelineError):
    """A model artefact is missing, tampered with or incompatible."""


class RegistryError(PipelineError):
    """An unknown version or alias, or an operation the registry refuses."""


class CheckFailed(PipelineError):
    """A check ran to the end and did not pass; the CLI exits 1."""

    exit_code = 1


class EnvironmentFailure(PipelineError):
    """The machine refused (disk full, read-only, no permission ...), not the input; the CLI exits 4."""

    exit_code = 4


def environment_failure(exc: BaseException) -> EnvironmentFailure | None:
    """Return ``exc`` as an :class:`EnvironmentFailure` when it is one or was raised because of one.

    An OS error whose errno is in ``ENVIRONMENT_ERRNOS`` counts, also as the cause or context
    of another error (a ``DataError`` raised while reading a table the process may not read).
    The message names the path and the OS error: ``out/model: No space left on device (ENOSPC)``.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, EnvironmentFailure):
            return current
        if isinstance(current, OSError) and current.errno in ENVIRONMENT_ERRNOS:
            return EnvironmentFailure(os_error_line(current))
        current = current.__cause__ or current.__context__
    return None


def os_error_line(exc: OSError) -> str:
    """Return ``path: reason (ERRNO)`` for an OS error (both paths of a rename; no path when it has none)."""
    reason = exc.strerror or first_line(exc)
    name = errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno is not None else ""
    paths = (exc.filename, exc.filename2)
    where = " -> ".join(os.fsdecode(p) if isinstance(p, bytes) else str(p) for p in paths if p is not None)
    return f"{where + ': ' if where else ''}{reason}{f' ({name})' if name else ''}"


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

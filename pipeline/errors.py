"""Domain exceptions: every failure the CLI reports as one clear line.

``exit_code`` follows the CLI contract: 2 for bad input (data, config, unknown
model version), 1 for a check that ran and failed (quality gate, drift limit).
"""

from __future__ import annotations


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


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

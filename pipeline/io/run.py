"""The run a step belongs to: every record a step writes names it.

The host runner gives all its steps one id through ``$ML_CICD_RUN``; a command run by hand
makes its own.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime

RUN_ENV = "ML_CICD_RUN"


def run_id() -> str:
    """Return this run's id: ``$ML_CICD_RUN`` (set by the host runner for all its steps), else a new one."""
    return os.environ.get(RUN_ENV) or new_run_id()


def new_run_id() -> str:
    """Return a fresh run id: UTC time to the second and six random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)

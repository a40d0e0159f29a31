"""The server's settings: their environment variables, defaults and checks (no heavy imports).

Command-line options override the environment; the worker processes of ``--workers N`` get
their settings through the environment, from the parent.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Literal

Runtime = Literal["auto", "onnx", "sklearn"]
RUNTIMES: tuple[Runtime, ...] = ("auto", "onnx", "sklearn")

MODEL_DIR_ENV = "MODEL_DIR"
RUNTIME_ENV = "MODEL_RUNTIME"
WORKERS_ENV = "MODEL_WORKERS"
MAX_BATCH_ENV = "MODEL_MAX_BATCH"
MAX_BODY_ENV = "MODEL_MAX_BODY_BYTES"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # where the workers' metrics meet (model/telemetry.py)
STARTUP_ERROR_ENV = "MODEL_STARTUP_ERROR_FILE"  # a worker that cannot load the model says why here
DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


def limit(given: int | None, env: str, default: int) -> int:
    """Return a positive limit from the argument, else the environment variable, else the default."""
    if given is None:
        raw = os.environ.get(env)
        if raw is None or not raw.strip():
            return default
        try:
            given = int(raw)
        except ValueError:
            raise ValueError(f"{env}={raw!r} is not a whole number") from None
    if given < 1:
        raise ValueError(f"{env.lower().removeprefix('model_')} must be >= 1, got {given}")
    return given


def runtime(given: str | None) -> Runtime:
    """Return the runtime from the argument, else ``$MODEL_RUNTIME``, else auto; raise ``ValueError`` when unknown."""
    chosen = given or os.environ.get(RUNTIME_ENV) or "auto"
    for known in RUNTIMES:
        if chosen == known:
            return known
    raise ValueError(f"{RUNTIME_ENV}={chosen!r}: expected one of {', '.join(RUNTIMES)}")


def workers_from_env() -> int:
    """Return ``$MODEL_WORKERS``, else :func:`default_workers`; raise ``ValueError`` when it is not a number."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return default_workers()
    if not raw.isdigit():
        raise ValueError(f"{WORKERS_ENV}={raw!r} is not a whole number")
    return int(raw)


def default_workers() -> int:
    """Return the CPUs this process may run on, capped by a cgroup v2 CPU quota when there is one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    return max(1, cpus)

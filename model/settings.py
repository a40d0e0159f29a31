"""The server's settings: their environment variables, defaults and checks (no heavy imports).

Command-line options override the environment; the worker processes of ``--workers N`` get
their settings through the environment, from the parent (the connection settings travel in
the server's config instead, which uvicorn hands to each worker).

Connections (per worker process; ``model/app.py`` enforces the last two, uvicorn the first):

- ``MODEL_KEEP_ALIVE_SECONDS`` (5, uvicorn's default): an idle keep-alive connection is closed
  this long after its last answer. Behind a load balancer that reuses connections, make it
  longer than the balancer's own idle timeout.
- ``MODEL_HEADER_TIMEOUT_SECONDS`` (10): a connection must deliver a complete request line and
  headers within this long of opening (or of its first byte after an answer), else it is closed.
  Trickling bytes does not extend it.
- ``MODEL_MAX_CONNECTIONS`` (1000): open connections beyond this are answered 503 and closed.

``MODEL_DOCS`` (off): ``1``/``true``/``yes``/``on`` serves ``/docs``, ``/redoc`` and
``/openapi.json``; production images leave them off.

``MODEL_THREADS`` (1, per worker process): the threads a model's native runtime may use for one
prediction: ONNX Runtime's session threads (``model/compiled.py``) and, for the scikit-learn
runtime, the OpenMP and BLAS thread pools (``model/sklearn_runtime.py``, by threadpoolctl). The
server's parallelism is its worker processes, one per CPU: a thread pool per prediction in each
of them competes for the same cores, and under load a single row waits for all of them
(``bench/bench_threads.py``). Raise it for few workers answering large batches. The pipeline's
gate times and scores a model with the config's ``[serving] threads``, whose default is this one
(``DEFAULT_THREADS``).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Runtime = Literal["auto", "onnx", "sklearn"]
RUNTIMES: tuple[Runtime, ...] = ("auto", "onnx", "sklearn")

MODEL_DIR_ENV = "MODEL_DIR"
RUNTIME_ENV = "MODEL_RUNTIME"
WORKERS_ENV = "MODEL_WORKERS"
MAX_BATCH_ENV = "MODEL_MAX_BATCH"
MAX_BODY_ENV = "MODEL_MAX_BODY_BYTES"
DOCS_ENV = "MODEL_DOCS"
KEEP_ALIVE_ENV = "MODEL_KEEP_ALIVE_SECONDS"
HEADER_TIMEOUT_ENV = "MODEL_HEADER_TIMEOUT_SECONDS"
MAX_CONNECTIONS_ENV = "MODEL_MAX_CONNECTIONS"
THREADS_ENV = "MODEL_THREADS"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # where the workers' metrics meet (model/telemetry.py)
STARTUP_ERROR_ENV = "MODEL_STARTUP_ERROR_FILE"  # a worker that cannot load the model says why here
DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_KEEP_ALIVE_SECONDS = 5
DEFAULT_HEADER_TIMEOUT_SECONDS = 10
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_THREADS = 1  # a model's native runtime per worker process; the config's [serving] threads too
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # the server's log lines, in every process
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Connections:
    """How long a connection may idle or take over its headers, and how many may be open (per process)."""

    keep_alive_seconds: int
    header_timeout_seconds: int
    max_connections: int


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


def connections(
    keep_alive: int | None = None, header_timeout: int | None = None, max_connections: int | None = None
) -> Connections:
    """Return the connection settings from the arguments, else the environment, else the defaults."""
    return Connections(
        keep_alive_seconds=limit(keep_alive, KEEP_ALIVE_ENV, DEFAULT_KEEP_ALIVE_SECONDS),
        header_timeout_seconds=limit(header_timeout, HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT_SECONDS),
        max_connections=limit(max_connections, MAX_CONNECTIONS_ENV, DEFAULT_MAX_CONNECTIONS),
    )


def docs(given: bool | None) -> bool:
    """Return whether to serve the API docs: the argument, else ``$MODEL_DOCS``, else off."""
    if given is not None:
        return given
    raw = os.environ.get(DOCS_ENV, "")
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE or not word:
        return False
    raise ValueError(f"{DOCS_ENV}={raw!r}: expected one of {', '.join(_TRUE + _FALSE)}")


def threads(given: int | None = None) -> int:
    """Return the threads a model's runtime may use: the argument, else ``$MODEL_THREADS``, else 1."""
    return limit(given, THREADS_ENV, DEFAULT_THREADS)


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

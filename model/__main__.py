"""Serve a model artefact over HTTP: the serving image's entry point.

    python -m model --model-dir /app/model --port 8080

Defaults come from the environment: ``MODEL_DIR``, ``HOST`` (0.0.0.0), ``PORT`` (8080),
``MODEL_WORKERS`` (the CPUs this process may use, within a container's CPU quota),
``MODEL_RUNTIME`` (auto: ONNX Runtime when the artefact ships an ONNX form, else
scikit-learn), ``MODEL_THREADS`` (1: the threads the model's runtime may use for a prediction, in
each worker), ``MODEL_MAX_BATCH`` (1000), ``MODEL_MAX_BODY_BYTES`` (4 MiB) and ``MODEL_DOCS``
(off: no ``/docs``, ``/redoc`` or ``/openapi.json``). Connections, per worker process:
``MODEL_KEEP_ALIVE_SECONDS`` (5: an idle keep-alive connection is closed that long after its
last answer), ``MODEL_HEADER_TIMEOUT_SECONDS`` (10: a connection that has not delivered complete
request headers that long after opening, or after its first byte following an answer, is
closed) and ``MODEL_MAX_CONNECTIONS`` (1000: further connections get 503 and are closed); see
``model/settings.py`` and ``model/app.py``. Port 0 picks a free port; the one startup line
names the URL actually bound, once every worker is ready.
SIGTERM or Ctrl-C stops the server gracefully (open requests finish, idle connections close).
A client that closes its connection before the answer is logged in one line and counted as
status 499 (``model/telemetry.py``). A model that cannot be served (missing, tampered,
incompatible, or no runtime for it in this image) stops startup with one ``error:`` line and
exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from model import settings
from model.artifact import check_servable, model_version
from model.errors import ArtifactError

if TYPE_CHECKING:
    from fastapi import FastAPI

GRACEFUL_SECONDS = 5  # open requests get this long to finish after SIGTERM
FD_HEADROOM = 128  # open files besides client connections: sockets, model files, logs, libraries
WORKER_READY_SECONDS = 60  # a worker that is not serving by then fails the start


class _Server(uvicorn.Server):
    """A uvicorn server that prints one line, with the model version and URL, once it listens."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then announce the model and the bound address."""
        await super().startup(sockets)
        if not self.started:
            return
        loaded = self.app.state.model
        port = self.config.port
        for server in getattr(self, "servers", []):
            for sock in server.sockets or ():
                port = sock.getsockname()[1]
                break
        announce(
            f"model {loaded.version} ({loaded.metadata.kind}, {loaded.runtime}, sha256 "
            f"{loaded.metadata.model_sha256[:12]})",
            self.config.host,
            port,
            1,
        )


class _Workers(Multiprocess):
    """uvicorn's worker supervisor, announcing the model once every worker serves (or failing the start)."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, model: str) -> None:
        super().__init__(config, sockets=[sock])
        self.model = model
        self.failed = False

    def init_processes(self) -> None:
        """Start the workers and wait until each serves."""
        super().init_processes()
        for process in self.processes:
            if not process.wait_until_ready(WORKER_READY_SECONDS, self.should_exit):
                self.failed = not self.should_exit.is_set()
                self.should_exit.set()
                return
        port = self.sockets[0].getsockname()[1]
        announce(self.model, self.config.host, port, len(self.processes))


def announce(model: str, host: str, port: int, workers: int) -> None:
    """Print the one startup line: the model, the URL and the number of worker processes."""
    processes = "1 process" if workers == 1 else f"{workers} worker processes"
    print(f"{model} serving on http://{host}:{port} ({processes})", file=sys.stderr, flush=True)


def serve(
    model_dir: Path,
    host: str = "0.0.0.0",
    port: int = 8080,
    max_batch: int | None = None,
    max_body_bytes: int | None = None,
    runtime: str | None = None,
    workers: int = 1,
    *,
    docs: bool | None = None,
    keep_alive: int | None = None,
    header_timeout: int | None = None,
    max_connections: int | None = None,
    threads: int | None = None,
) -> int:
    """Run the server until SIGTERM/SIGINT; return 0, or 2 when the model or the options are unusable.

    With ``workers`` > 1 this process only checks the artefact and supervises: each worker
    imports the app and loads the model itself (started fresh, as uvicorn starts them). The
    keyword-only settings default to their environment variables (``model/settings.py``).
    """
    try:
        chosen = settings.runtime(runtime)
        settings.limit(max_batch, settings.MAX_BATCH_ENV, settings.DEFAULT_MAX_BATCH)
        settings.limit(max_body_bytes, settings.MAX_BODY_ENV, settings.DEFAULT_MAX_BODY_BYTES)
        with_docs = settings.docs(docs)
        connections = settings.connections(keep_alive, header_timeout, max_connections)
        cap = settings.threads(threads)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format=settings.LOG_FORMAT)
    make_room(connections.max_connections)
    if workers > 1:
        return _serve_workers(
            Path(model_dir),
            host,
            port,
            max_batch,
            max_body_bytes,
            chosen,
            workers,
            with_docs,
            connections,
            cap,
        )
    from model.app import ServerConfig, create_app, hide_load_traceback

    app = create_app(
        Path(model_dir),
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        runtime=chosen,
        docs=with_docs,
        threads=cap,
    )
    config = ServerConfig(app, connections, **_options(host, port))
    server = _Server(config, app)
    hide_load_traceback(app)
    with contextlib.suppress(SystemExit):  # uvicorn exits when startup fails; reported below
        server.run()
    if not server.started:
        reason = app.state.load_error or "see the log above"
        print(f"error: model server did not start: {reason}", file=sys.stderr)
        return 2
    return 0


def _serve_workers(
    model_dir: Path,
    host: str,
    port: int,
    max_batch: int | None,
    max_body_bytes: int | None,
    runtime: settings.Runtime,
    workers: int,
    docs: bool,
    connections: settings.Connections,
    threads: int,
) -> int:
    """Serve with ``workers`` processes on one socket; each loads the model (``model.app:app_from_env``).

    The app's settings reach the workers through the environment, the connection settings in
    the (pickled) uvicorn config.
    """
    try:
        metadata, onnx = check_servable(model_dir, runtime)
    except ArtifactError as exc:
        print(f"error: model server did not start: {exc}", file=sys.stderr)
        return 2
    env: dict[str, object] = {settings.MODEL_DIR_ENV: model_dir.resolve(), settings.RUNTIME_ENV: runtime}
    env |= {settings.MAX_BATCH_ENV: max_batch, settings.MAX_BODY_ENV: max_body_bytes}
    env |= {settings.DOCS_ENV: "1" if docs else "0", settings.THREADS_ENV: threads}
    for name, value in env.items():
        if value is not None:
            os.environ[name] = str(value)  # the worker processes read their settings from here
    metrics = tempfile.mkdtemp(prefix="model-metrics-")
    os.environ[settings.MULTIPROCESS_ENV] = metrics
    failure = Path(metrics) / "startup-error.txt"
    os.environ[settings.STARTUP_ERROR_ENV] = str(failure)
    from model.app import ServerConfig

    config = ServerConfig(
        "model.app:app_from_env", connections, factory=True, workers=workers, **_options(host, port)
    )
    used = "onnx" if onnx is not None else "sklearn"
    model = f"model {model_version(model_dir, metadata)} ({metadata.kind}, {used}, sha256 {metadata.model_sha256[:12]})"
    try:
        supervisor = _Workers(config, listen(host, port), model)
        supervisor.run()
        reason = failure.read_text() if failure.is_file() else "a worker process failed (see the log above)"
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port} ({exc.strerror})", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(metrics, ignore_errors=True)
    if supervisor.failed:
        print(f"error: model server did not start: {reason}", file=sys.stderr)
        return 2
    return 0


def make_room(connections: int) -> None:
    """Raise the open-file soft limit (the workers inherit it) to fit ``connections`` clients, or say it cannot.

    Past the limit, accepting a connection fails before the cap is reached (asyncio logs an
    error and stops accepting for a second); the hard limit is the most a process may ask.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + FD_HEADROOM
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        print(
            f"warning: the open-file limit ({hard}) leaves room for about {target - FD_HEADROOM} "
            f"connections per process, fewer than the cap of {connections}",
            file=sys.stderr,
        )


def listen(host: str, port: int) -> socket.socket:
    """Return a TCP socket bound to ``host:port`` for the workers to share.

    Created with ``IPPROTO_TCP`` on purpose: asyncio sets TCP_NODELAY only on connections
    accepted from a socket whose protocol says TCP, and uvicorn's own ``bind_socket`` leaves it
    0, which puts Nagle's algorithm against delayed ACKs on every keep-alive answer (about 40 ms).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _options(host: str, port: int) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "server_header": False,
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m model",
        description=(__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=os.environ.get("MODEL_DIR") or None,
        help="model artefact directory (default $MODEL_DIR)",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("HOST") or "0.0.0.0",
        help="address to bind (default $HOST or 0.0.0.0)",
    )
    parser.add_argument("--port", type=int, help="port, 0 for any free one (default $PORT or 8080)")
    parser.add_argument(
        "--workers", type=int, help="worker processes (default $MODEL_WORKERS, else the CPUs available)"
    )
    parser.add_argument(
        "--runtime",
        choices=settings.RUNTIMES,
        help="auto (ONNX when the artefact ships it), onnx or sklearn (default $MODEL_RUNTIME or auto)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="threads the model's runtime may use for one prediction, per worker (default $MODEL_THREADS or 1)",
    )
    parser.add_argument(
        "--max-batch", type=int, help="records per request (default $MODEL_MAX_BATCH or 1000)"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, help="request body size limit (default $MODEL_MAX_BODY_BYTES or 4 MiB)"
    )
    parser.add_argument(
        "--docs",
        action=argparse.BooleanOptionalAction,
        help="serve /docs, /redoc and /openapi.json (default $MODEL_DOCS, else off)",
    )
    parser.add_argument(
        "--keep-alive",
        type=int,
        metavar="SECONDS",
        help="close an idle keep-alive connection after this long (default $MODEL_KEEP_ALIVE_SECONDS or 5)",
    )
    parser.add_argument(
        "--header-timeout",
        type=int,
        metavar="SECONDS",
        help="close a connection without complete request headers after this long "
        "(default $MODEL_HEADER_TIMEOUT_SECONDS or 10)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        help="open connections per worker process; more get 503 (default $MODEL_MAX_CONNECTIONS or 1000)",
    )
    args = parser.parse_args(argv)
    if args.model_dir is None:
        parser.error("--model-dir is required (or set MODEL_DIR)")
    port = args.port
    if port is None:
        raw = os.environ.get("PORT") or "8080"
        if not raw.strip().isdigit():
            parser.error(f"PORT={raw!r} is not a port number")
        port = int(raw)
    workers = args.workers
    if workers is None:
        try:
            workers = settings.workers_from_env()
        except ValueError as exc:
            parser.error(str(exc))
    if workers < 1:
        parser.error(f"--workers must be >= 1, got {workers}")
    return serve(
        args.model_dir,
        args.host,
        port,
        args.max_batch,
        args.max_body_bytes,
        args.runtime,
        workers,
        docs=args.docs,
        keep_alive=args.keep_alive,
        header_timeout=args.header_timeout,
        max_connections=args.max_connections,
        threads=args.threads,
    )


if __name__ == "__main__":
    raise SystemExit(main())

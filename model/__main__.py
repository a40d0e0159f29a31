"""Serve a model artefact over HTTP: the serving image's entry point.

    python -m model --model-dir /app/model --port 8080

Defaults come from the environment: ``MODEL_DIR``, ``HOST`` (0.0.0.0), ``PORT`` (8080),
``MODEL_MAX_BATCH`` (1000) and ``MODEL_MAX_BODY_BYTES`` (4 MiB). Port 0 picks a free
port; the one startup line names the URL actually bound. SIGTERM or Ctrl-C stops the
server gracefully (open requests finish, idle connections close). A model that cannot
be loaded (missing, tampered, incompatible) stops startup with one ``error:`` line and
exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from model.app import create_app

GRACEFUL_SECONDS = 5  # open requests get this long to finish after SIGTERM


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
        host, port = self.config.host, self.config.port
        for server in getattr(self, "servers", []):
            for sock in server.sockets or ():
                port = sock.getsockname()[1]
                break
        print(
            f"model {loaded.version} ({loaded.metadata.kind}, sha256 "
            f"{loaded.metadata.model_sha256[:12]}) serving on http://{host}:{port}",
            file=sys.stderr,
            flush=True,
        )


class _HideLoadTraceback(logging.Filter):
    """Drop uvicorn's traceback for a model that cannot be loaded: its one-line reason is printed."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__()
        self.app = app

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for the lifespan traceback of a load error."""
        return not (self.app.state.load_error and record.getMessage().startswith("Traceback"))


def serve(
    model_dir: Path,
    host: str = "0.0.0.0",
    port: int = 8080,
    max_batch: int | None = None,
    max_body_bytes: int | None = None,
) -> int:
    """Run the server until SIGTERM/SIGINT; return 0, or 2 when the model or limits are unusable."""
    try:
        app = create_app(Path(model_dir), max_batch=max_batch, max_body_bytes=max_body_bytes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    server = _Server(config, app)
    logging.getLogger("uvicorn.error").addFilter(_HideLoadTraceback(app))
    with contextlib.suppress(SystemExit):  # uvicorn exits when startup fails; reported below
        server.run()
    if not server.started:
        reason = app.state.load_error or "see the log above"
        print(f"error: model server did not start: {reason}", file=sys.stderr)
        return 2
    return 0


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
        "--max-batch", type=int, help="records per request (default $MODEL_MAX_BATCH or 1000)"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, help="request body size limit (default $MODEL_MAX_BODY_BYTES or 4 MiB)"
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
    return serve(args.model_dir, args.host, port, args.max_batch, args.max_body_bytes)


if __name__ == "__main__":
    raise SystemExit(main())

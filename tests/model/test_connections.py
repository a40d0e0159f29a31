"""The real server process (``python -m model``) against slow, idle, aborting and surplus clients on loopback.

Each test starts the server on a free port with its own settings and talks raw HTTP/1.1 to it.
Timing assertions use only the configured timeouts: a connection may not close before its
timeout (the server's clock starts after the client's reference point), and must close within
that timeout plus a generous slack (the machine is shared).
"""

from __future__ import annotations

import http.client
import json
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from model.__main__ import main as model_main
from tests.conftest import CHURN_RECORD as RECORD
from tests.conftest import REPO, Project

START_SECONDS = 60.0  # generous: imports on a busy CI machine
SLACK = 15.0  # how much later than its timeout a connection may close (a busy machine, not a figure)
EARLY = 0.1  # how much earlier: the clocks agree (both monotonic), this is rounding


@dataclass(frozen=True)
class Server:
    """A running server process, where it listens and its log."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path

    def lines(self) -> list[str]:
        """Return the log's lines so far."""
        return self.log.read_text(errors="replace").splitlines()


@contextmanager
def serving(model_dir: Path, log: Path, *options: str) -> Iterator[Server]:
    """Start ``python -m model`` on a free loopback port with ``options``; stop it at the end."""
    argv = [
        sys.executable,
        "-m",
        "model",
        "--model-dir",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen([*argv, *options], cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        found = None
        while found is None:
            found = re.search(r"serving on http://([\d.]+):(\d+)", log.read_text(errors="replace"))
            if found is None and (process.poll() is not None or time.monotonic() > deadline):
                pytest.fail(
                    f"server did not start (exit {process.poll()}):\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.05)
        yield Server(process, found.group(1), int(found.group(2)), log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def model_dir(trained: dict[str, Project]) -> Path:
    """The session's trained churn model (served read-only)."""
    return trained["good"].out / "model"


def connect(server: Server) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=30)


def exchange(server: Server, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    """Send one request on a new connection; return the status and body."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, data, {"Content-Type": "application/json"} if data else {})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def metric(server: Server, name: str, **labels: str) -> float:
    """Return the sum of the samples ``name`` whose labels include ``labels`` (0 if none)."""
    status, text = exchange(server, "GET", "/metrics")
    assert status == 200, f"/metrics answered {status}"
    return sum(
        sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def closed_after(sock: socket.socket, since: float, limit: float) -> float | None:
    """Read until the server closes ``sock``; return the seconds since ``since``, or None if still open at ``limit``."""
    deadline = since + limit
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(65536):
                return time.monotonic() - since
    except ConnectionResetError:
        return time.monotonic() - since
    except TimeoutError:
        pass
    return None


def still_open(sock: socket.socket) -> bool:
    """Return True when the server has neither closed ``sock`` nor sent anything on it."""
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


# ---------------------------------------------------------------------------------------------
# Idle and unfinished connections are closed after their timeouts.

KEEP_ALIVE, HEADER = 2, 3  # different, so each closing shows which clock closed it


def silent(server: Server) -> float | None:
    """Connect and send nothing."""
    since = time.monotonic()
    with connect(server) as sock:
        return closed_after(sock, since, HEADER + SLACK)


def partial_header(server: Server) -> float | None:
    """Send a request line and one header, never the blank line that ends them."""
    since = time.monotonic()
    with connect(server) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: model\r\n")
        return closed_after(sock, since, HEADER + SLACK)


def trickled_header(server: Server) -> float | None:
    """Send a header a few bytes at a time, well within any per-read timeout, and never finish it."""
    since = time.monotonic()
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
        while time.monotonic() - since < HEADER + SLACK:
            try:
                sock.sendall(b"ab")
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - since
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                return closed_after(sock, since, HEADER + SLACK)
        return None


def idle_after_an_answer(server: Server) -> float | None:
    """Get one answer on a keep-alive connection, then stay idle."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    since = time.monotonic()
    connection.request("GET", "/health")
    answer = connection.getresponse()
    assert answer.status == 200 and answer.read()
    assert connection.sock is not None, "the connection was not kept alive"
    try:
        return closed_after(connection.sock, since, KEEP_ALIVE + SLACK)
    finally:
        connection.close()


def partial_header_after_an_answer(server: Server) -> float | None:
    """Get one answer, then start a second request and never finish its headers."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request("GET", "/health")
    answer = connection.getresponse()
    assert answer.status == 200 and answer.read()
    sock = connection.sock
    assert sock is not None, "the connection was not kept alive"
    try:
        since = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHo")
        return closed_after(sock, since, HEADER + SLACK)
    finally:
        connection.close()


SCENARIOS: dict[str, tuple[Callable[[Server], float | None], int]] = {
    "silent connection": (silent, HEADER),
    "partial header": (partial_header, HEADER),
    "trickled header": (trickled_header, HEADER),
    "idle after an answer": (idle_after_an_answer, KEEP_ALIVE),
    "partial header after an answer": (partial_header_after_an_answer, HEADER),
}


def test_idle_and_unfinished_connections_are_closed_after_their_timeouts(
    model_dir: Path, tmp_path: Path
) -> None:
    # given a server with a short keep-alive and a slightly longer header deadline
    options = ("--workers", "1", "--keep-alive", str(KEEP_ALIVE), "--header-timeout", str(HEADER))
    with serving(model_dir, tmp_path / "server.log", *options) as server:
        # when each kind of client connects (all at once) and waits for the server to close on it
        with ThreadPoolExecutor(len(SCENARIOS)) as pool:
            futures = {name: pool.submit(scenario, server) for name, (scenario, _) in SCENARIOS.items()}
            closed = {name: future.result() for name, future in futures.items()}
        timed_out = metric(server, "model_http_connections_closed_total", reason="header_timeout")

    # then each was closed by its own clock: not before its timeout, and not long after
    for name, seconds in closed.items():
        timeout = SCENARIOS[name][1]
        assert seconds is not None, f"{name}: still open {timeout + SLACK} s later (timeout {timeout} s)"
        assert timeout - EARLY <= seconds <= timeout + SLACK, (
            f"{name}: closed after {seconds:.2f} s, expected its {timeout} s timeout"
        )
    assert timed_out == 4, f"expected 4 connections closed for slow headers, counted {timed_out}"


def test_predict_keeps_answering_while_200_slow_clients_hold_connections(
    model_dir: Path, tmp_path: Path
) -> None:
    # given a server whose header deadline outlasts the test, and 200 slow clients on it:
    # half connected and silent, half in the middle of their headers
    with serving(model_dir, tmp_path / "server.log", "--workers", "1", "--header-timeout", "120") as server:
        slow = [connect(server) for _ in range(200)]
        try:
            for sock in slow[100:]:
                sock.sendall(b"POST /predict HTTP/1.1\r\nHost: model\r\nContent-Ty")

            # when real clients ask for predictions meanwhile
            answers = [exchange(server, "POST", "/predict", {"records": [RECORD] * 3}) for _ in range(10)]
            for sock in slow[100:]:
                sock.sendall(b"pe: appl")  # still trickling
            refused = metric(server, "model_http_connections_closed_total", reason="over_limit")

            # then every prediction was answered, and the slow clients were all still connected
            for status, body in answers:
                assert status == 200, f"/predict answered {status} beside slow clients: {body[:200]!r}"
                assert len(json.loads(body)["predictions"]) == 3
            held = sum(still_open(sock) for sock in slow)
            assert held == 200, f"only {held} of the 200 slow clients were still connected"
            assert refused == 0, f"{refused} connections refused under the default cap"
        finally:
            for sock in slow:
                sock.close()


def test_connections_over_the_cap_get_503_and_established_ones_are_still_served(
    model_dir: Path, tmp_path: Path
) -> None:
    # given a server capped at 10 connections, and 10 established keep-alive clients on it
    cap = 10
    options = (
        "--workers",
        "1",
        "--max-connections",
        str(cap),
        "--keep-alive",
        "120",
        "--header-timeout",
        "120",
    )
    with serving(model_dir, tmp_path / "server.log", *options) as server:
        held = [http.client.HTTPConnection(server.host, server.port, timeout=30) for _ in range(cap)]
        try:
            for connection in held:
                connection.request("GET", "/health")
                answer = connection.getresponse()
                assert answer.status == 200 and answer.read()

            # when one more client connects and asks
            with connect(server) as extra:
                extra.sendall(b"GET /health HTTP/1.1\r\nHost: model\r\n\r\n")
                refusal = b""
                while chunk := extra.recv(65536):
                    refusal += chunk
            held[0].request("GET", "/health")
            established = held[0].getresponse()
            established_status = (established.status, established.read())[0]
            held.pop().close()
            served_again = _first_status_within(server, 200, 30.0)
            held[0].request("GET", "/metrics")
            metrics = held[0].getresponse().read().decode()
        finally:
            for connection in held:
                connection.close()

    # then it got a 503 and was closed, the established clients were still answered, and a slot
    # freed by a client leaving was given to the next one
    assert refusal.startswith(b"HTTP/1.1 503 "), f"the surplus connection got {refusal[:100]!r}"
    assert b"connection: close" in refusal.lower(), refusal
    assert established_status == 200, f"an established client got {established_status} at the cap"
    assert served_again, "no new connection was served after a client left"
    refused = [
        s.value
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "model_http_connections_closed_total" and s.labels == {"reason": "over_limit"}
    ]
    assert refused and refused[0] >= 1, f"the refusal was not counted: {refused}"


def _first_status_within(server: Server, status: int, limit: float) -> bool:
    """Return True once a new connection's GET /health answers ``status`` (retrying for ``limit`` s)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if exchange(server, "GET", "/health")[0] == status:
                return True
        except (ConnectionError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------------------------------------
# A client that leaves mid-request: counted as 499, one log line, no 500.


def abort(server: Server, body: bytes) -> None:
    """Declare a 1,000-byte body, send ``body`` of it, and close the connection."""
    with connect(server) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: model\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + body
        )
        time.sleep(0.2)  # let the server start reading it


def wait_for(condition: Callable[[], bool], limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.parametrize("body", [b'{"records": [{"tenure', b""], ids=["part of the body", "no body"])
def test_a_client_that_leaves_mid_request_is_counted_as_499_and_logged_in_one_line(
    model_dir: Path, tmp_path: Path, body: bytes
) -> None:
    # given a server with default settings, ready
    with serving(model_dir, tmp_path / "server.log", "--workers", "1") as server:
        before = server.lines()

        # when a client declares a 1,000-byte body, sends `body` of it, and goes away
        abort(server, body)
        counted = wait_for(
            lambda: metric(server, "model_http_requests_total", endpoint="/predict", status="499") == 1
        )
        assert exchange(server, "GET", "/health")[0] == 200  # anything logged for the abort is written by now
        crashes = metric(server, "model_http_requests_total", status="500")
        errors = metric(server, "model_http_errors_total")
        added = server.lines()[len(before) :]

    # then it is counted once as 499, never as a 500 or an error answer, and logged in one line
    assert counted, "the abort was not counted with status 499"
    assert crashes == 0 and errors == 0, f"counted as {crashes} crashes and {errors} error answers"
    assert len(added) == 1, "expected one log line for the abort, got:\n" + "\n".join(added)
    assert "closed the connection before the answer: POST /predict" in added[0], added[0]
    assert f"{len(body)} of 1000 body bytes received" in added[0], added[0]
    assert "Traceback" not in server.log.read_text(), server.log.read_text()


# ---------------------------------------------------------------------------------------------
# Settings: docs off by default, checked options, and all of it in worker processes.


def test_the_server_serves_no_api_docs_by_default(model_dir: Path, tmp_path: Path) -> None:
    with serving(model_dir, tmp_path / "server.log", "--workers", "1") as server:
        answers = {path: exchange(server, "GET", path)[0] for path in ("/docs", "/redoc", "/openapi.json")}
        predict = exchange(server, "POST", "/predict", {"records": [RECORD]})[0]

    assert answers == {"/docs": 404, "/redoc": 404, "/openapi.json": 404}, answers
    assert predict == 200


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--header-timeout", "0"], "header_timeout_seconds must be >= 1, got 0"),
        (["--keep-alive", "0"], "keep_alive_seconds must be >= 1, got 0"),
        (["--max-connections", "0"], "max_connections must be >= 1, got 0"),
    ],
)
def test_a_bad_connection_setting_exits_2_naming_it(
    model_dir: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    # when
    code = model_main(["--model-dir", str(model_dir), "--port", "0", "--workers", "1", *option])

    # then
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: {message}"], (code, err)


@pytest.mark.slow  # two worker processes: a slow start on a busy machine
def test_worker_processes_get_the_timeouts_the_docs_and_the_one_line_abort_log(
    model_dir: Path, tmp_path: Path
) -> None:
    # given two worker processes with a 2 s header deadline and the docs on
    options = ("--workers", "2", "--header-timeout", "2", "--docs")
    with serving(model_dir, tmp_path / "server.log", *options) as server:
        before = server.lines()

        # when silent clients connect (spread over the workers), and one client aborts its body
        since = time.monotonic()
        silent_clients = [connect(server) for _ in range(6)]
        with ThreadPoolExecutor(len(silent_clients)) as pool:
            closed = list(pool.map(lambda sock: closed_after(sock, since, 2 + SLACK), silent_clients))
        for sock in silent_clients:
            sock.close()
        docs = exchange(server, "GET", "/openapi.json")[0]
        abort(server, b'{"records": [')
        counted = wait_for(
            lambda: metric(server, "model_http_requests_total", endpoint="/predict", status="499") == 1
        )
        assert exchange(server, "GET", "/health")[0] == 200
        added = server.lines()[len(before) :]

    # then every worker closed its silent clients on time, served the docs, and logged the abort once
    assert all(seconds is not None and 2 - EARLY <= seconds <= 2 + SLACK for seconds in closed), closed
    assert docs == 200, f"--docs did not reach the workers: /openapi.json answered {docs}"
    assert counted, "the abort was not counted with status 499"
    assert len(added) == 1 and "closed the connection before the answer" in added[0], "\n".join(added)


ROOM_PROBE = """
import resource, sys
from model.__main__ import make_room
make_room(int(sys.argv[1]))
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


@pytest.mark.parametrize(("hard", "soft_after", "warned"), [(4096, 1000 + 128, False), (600, 600, True)])
def test_the_open_file_limit_is_raised_to_fit_the_connection_cap(
    hard: int, soft_after: int, warned: bool
) -> None:
    # given a process whose open-file soft limit (256) is below the cap of 1,000 connections
    def low_limits() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    # when
    done = subprocess.run(
        [sys.executable, "-c", ROOM_PROBE, "1000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=low_limits,
        check=False,
    )

    # then: raised as far as the hard limit allows, with a warning when that is not enough
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == soft_after, done.stdout
    assert ("fewer than the cap of 1000" in done.stderr) == warned, done.stderr

"""A small JSON-over-HTTP client for the model server (the smoke test's only transport), and a load driver."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status code and body (parsed JSON when it is JSON, else text)."""

    status: int
    body: Any


class Client:
    """A small JSON-over-HTTP client that ignores proxy settings (the server is local)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, path: str) -> Reply:
        """GET ``path``."""
        return self._send(urllib.request.Request(self.url + path, method="GET"))

    def post(self, path: str, body: bytes) -> Reply:
        """POST a JSON ``body`` to ``path``."""
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> Reply:
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return Reply(response.status, _decode(response.read()))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, _decode(exc.read()))


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Batch:
    """One batch of requests to one server: each answered request's time, the batch's wall time, failures."""

    latencies_ms: tuple[float, ...]  # request sent to answer read, in the order they ended
    seconds: float  # from the first request of the batch to the last answer
    errors: int  # requests that got no answer or a status other than 200
    first_error: str


def drive(
    urls: Sequence[str],
    path: str,
    bodies: Sequence[bytes],
    concurrency: int,
    batches: int,
    per_batch: int,
    timeout: float,
    bodies_per_url: Sequence[Sequence[bytes]] | None = None,
) -> list[list[Batch]]:
    """POST batches of ``per_batch`` bodies to each of ``urls`` in turn, ``concurrency`` requests in flight.

    One client, the servers alternated batch by batch (A, B, A, B, ...), so every server meets the
    same machine load and the same bodies in the same order (cycled from ``bodies``). Each of the
    ``concurrency`` connections of a batch is opened before the batch's clock starts and is kept
    alive through it; a request that fails is counted and its connection reopened. One untimed
    batch per server comes first (connections, caches and lazy initialisation warm up). Returns,
    per url, its ``batches`` timed batches in order. ``bodies_per_url`` replaces ``bodies`` with one
    list per url (servers of models with other inputs), body ``k`` of each the same row.
    """
    lists = list(bodies_per_url) if bodies_per_url is not None else [bodies] * len(urls)
    if len(lists) != len(urls) or not all(lists):
        raise ValueError("no request bodies to send")
    timed: list[list[Batch]] = [[] for _ in urls]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load") as pool:
        for number in range(batches + 1):
            for i, url in enumerate(urls):
                own = lists[i]
                chunk = [own[(number * per_batch + k) % len(own)] for k in range(per_batch)]
                batch = _batch(pool, url, path, chunk, concurrency, timeout)
                if number > 0:
                    timed[i].append(batch)
    return timed


def _batch(
    pool: ThreadPoolExecutor, url: str, path: str, bodies: list[bytes], concurrency: int, timeout: float
) -> Batch:
    """Send ``bodies`` to ``url`` over ``concurrency`` connections opened before the clock starts."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    start = threading.Barrier(concurrency + 1)
    pending = iter(range(len(bodies)))
    lock = threading.Lock()

    def work() -> tuple[list[float], int, str]:
        connection = factory(host, port, timeout=timeout)
        times: list[float] = []
        errors, first = 0, ""
        try:
            with contextlib.suppress(OSError):
                connection.connect()
            start.wait()
            while True:
                with lock:
                    index = next(pending, None)
                if index is None:
                    break
                began = time.perf_counter()
                try:
                    connection.request("POST", path, bodies[index], {"Content-Type": "application/json"})
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as exc:
                    connection.close()  # reopened by the next request
                    errors, first = errors + 1, first or f"{type(exc).__name__}: {exc}"
                    continue
                if status != 200:
                    errors, first = errors + 1, first or f"status {status}"
                    continue
                times.append((time.perf_counter() - began) * 1000.0)
        finally:
            connection.close()
        return times, errors, first

    futures = [pool.submit(work) for _ in range(concurrency)]
    start.wait()
    began = time.perf_counter()
    done = [future.result() for future in futures]
    seconds = time.perf_counter() - began
    return Batch(
        tuple(t for times, _, _ in done for t in times),
        seconds,
        sum(errors for _, errors, _ in done),
        next((first for _, _, first in done if first), ""),
    )

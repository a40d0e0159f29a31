"""A small JSON-over-HTTP client for the model server (the smoke test's only transport)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


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

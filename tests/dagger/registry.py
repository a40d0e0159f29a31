"""A private registry on loopback for the tests: Debian's docker-registry with htpasswd auth.

``serve(root)`` starts one on 127.0.0.1 and yields how to reach it: the host, credentials, and an
environment in which ``skopeo`` treats it as the plain-HTTP registry it is. Callers skip (or fail,
under ``ML_CICD_REQUIRE_DOCKER=1``) through ``require_tools()`` when the tools are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TOOLS = ("skopeo", "docker-registry", "htpasswd")  # Debian: skopeo, docker-registry, apache2-utils
USER, PASSWORD = "ci-bot", "loopback-only-password"


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:<port>
    bin: str  # holds a skopeo wrapper that marks the registry insecure (plain HTTP)
    env: dict[str, str]  # that wrapper first on PATH; an auth file of the test's own

    @property
    def creds(self) -> str:
        return f"{USER}:{PASSWORD}"

    def skopeo(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([f"{self.bin}/skopeo", *args], env=self.env, capture_output=True, timeout=300)


def require_tools() -> None:
    """Skip the calling test without the registry tools (fail instead under ML_CICD_REQUIRE_DOCKER=1)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    if os.environ.get("ML_CICD_REQUIRE_DOCKER") == "1":
        pytest.fail(f"ML_CICD_REQUIRE_DOCKER=1 but {missing} are missing (run scripts/docker-engine.sh)")
    pytest.skip(f"needs {', '.join(missing)} (apt-get install skopeo docker-registry apache2-utils)")


@contextmanager
def serve(root: Path) -> Iterator[Registry]:
    """Run a registry on a free 127.0.0.1 port with one user, its storage and logs under ``root``."""
    require_tools()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{probe.getsockname()[1]}"
    subprocess.run(
        ["htpasswd", "-Bbc", str(root / "htpasswd"), USER, PASSWORD], check=True, capture_output=True
    )
    (root / "config.yml").write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {host}\n"
        f"auth:\n  htpasswd:\n    realm: loopback\n    path: {root / 'htpasswd'}\n"
    )
    # skopeo 1.9 reads a registries file from its flag only: a wrapper first on PATH passes it
    (root / "registries.conf").write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    wrapper = root / "bin" / "skopeo"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\nexec {shutil.which("skopeo")} --registries-conf {root / "registries.conf"} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env |= {
        "PATH": f"{wrapper.parent}{os.pathsep}{env['PATH']}",
        "REGISTRY_AUTH_FILE": str(root / "auth.json"),
    }
    with (root / "registry.log").open("w") as log:
        server = subprocess.Popen(
            ["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log
        )
        try:
            _wait_for(f"http://{host}/v2/", server, root / "registry.log")
            yield Registry(host, str(wrapper.parent), env)
        finally:
            server.terminate()
            server.wait(timeout=10)


def _wait_for(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(100):
        if server.poll() is not None:
            raise AssertionError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=1)
        except urllib.error.HTTPError as answer:  # 401: up, and asking for credentials
            if answer.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"docker-registry did not answer on {url}")

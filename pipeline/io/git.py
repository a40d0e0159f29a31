"""What git knows about the checkout: the commit a model is trained from, the repository URL."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@github.com:acme/churn.git


def git_commit() -> str | None:
    """Return ``$GIT_COMMIT``, else ``git rev-parse HEAD`` inside a work tree, else None."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def source_url(repo: Path) -> str:
    """Return the repository URL for the source label: GitHub Actions' variables, else git's origin.

    Empty when there is none, and when the origin is a local path (a clone of a clone): a label
    must not carry a path of the machine that built the image.
    """
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return f"{server}/{repository}"
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    url = done.stdout.strip() if done.returncode == 0 else ""
    parts = urlsplit(url)
    if not parts.netloc and not SCP_LIKE.match(url):  # /path/to/clone, file:///..., ../repo
        return ""
    if parts.username or parts.password:  # never put https://user:token@host/... into a label
        url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url

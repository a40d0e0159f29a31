"""Where this installation of ml-cicd came from, as the remote Dagger module a team's workflow calls.

pip records a VCS install in the distribution's ``direct_url.json`` (its repository URL and the exact
commit), and a published release names its repository in its metadata (``Project-URL: Source``);
either gives ``github.com/OWNER/REPO@REF``. A wheel built from a local checkout gives neither.
"""

from __future__ import annotations

import importlib.metadata
import json
import re

DISTRIBUTION = "ml-cicd"
_GITHUB = re.compile(r"^(?:git\+)?(?:https://|ssh://git@)github\.com[/:](?P<path>[^/]+/[^/@]+?)(?:\.git)?/?$")


def module_address(version: str) -> str | None:
    """Return ``github.com/OWNER/REPO@REF`` of this installation (REF: the commit, else ``v<version>``), or None."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        direct = {}
    commit = (direct.get("vcs_info") or {}).get("commit_id")
    found = _GITHUB.match(str(direct.get("url", "")))
    if found and commit:
        return f"github.com/{found['path']}@{commit}"
    for entry in dist.metadata.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        found = _GITHUB.match(url.strip())
        if label.strip().lower() == "source" and found:
            return f"github.com/{found['path']}@v{version}"
    return None

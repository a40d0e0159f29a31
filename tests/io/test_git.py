"""pipeline/io/git.py on real repositories: the source label never carries a local path or a token.

The step image has no git (python slim): there the helpers answer "nothing known", and the tests
that need real repositories skip, so the default suite passes in it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.io.git import git_commit, source_url

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git on PATH to make repositories")


def _repo_with_origin(root: Path, origin: str | None) -> Path:
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    if origin is not None:
        subprocess.run(["git", "-C", str(root), "remote", "add", "origin", origin], check=True)
    return root


@pytest.fixture(autouse=True)
def outside_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_SERVER_URL", raising=False)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)


@needs_git
@pytest.mark.parametrize(
    ("origin", "label"),
    [
        ("https://github.com/acme/churn.git", "https://github.com/acme/churn.git"),
        ("git@github.com:acme/churn.git", "git@github.com:acme/churn.git"),
        ("https://bot:ghp_secret@github.com/acme/churn", "https://github.com/acme/churn"),
        ("/home/dev/src/churn", ""),  # a clone of a local clone
        ("../churn", ""),
        ("file:///srv/git/churn.git", ""),
        (None, ""),
    ],
)
def test_source_label_is_a_url_or_empty(tmp_path: Path, origin: str | None, label: str) -> None:
    assert source_url(_repo_with_origin(tmp_path / "clone", origin)) == label


def test_outside_a_repository_the_label_is_empty(tmp_path: Path) -> None:
    assert source_url(tmp_path) == ""


@needs_git
def test_github_actions_variables_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn")
    assert source_url(_repo_with_origin(tmp_path / "clone", "/local/path")) == "https://github.com/acme/churn"


def test_without_git_on_path_nothing_is_known_and_nothing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a PATH without git, as in the step image, and no GIT_COMMIT
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("GIT_COMMIT", raising=False)
    # then there is no commit and no label, rather than an error
    assert git_commit() is None
    assert source_url(Path.cwd()) == ""

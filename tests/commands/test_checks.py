"""``checks lint`` / ``checks test``: the team's own commands, in the project's root, not ml-cicd's.

Each test writes a small project (a config, and the files a Python repository has) and runs the real
command, whose commands run as real processes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.conftest import dump_toml


def _project(root: Path, checks: dict[str, object] | None = None, **files: str) -> Path:
    """Write a config (``[checks]`` when given) and ``files`` (relative path -> text) under ``root``."""
    raw: dict[str, object] = {"data": {"path": "data.csv", "target": "y"}}
    if checks is not None:
        raw["checks"] = checks
    root.mkdir(parents=True, exist_ok=True)
    (root / "ml-cicd.toml").write_text(dump_toml(raw))
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "ml-cicd.toml"


def test_nothing_configured_and_nothing_found_is_skipped_not_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a project with no [checks], no ruff configuration and no tests/
    config = _project(tmp_path / "team")
    # when both checks run
    lint, test = (
        main(["checks", "lint", "--config", str(config)]),
        main(["checks", "test", "--config", str(config)]),
    )
    # then each passes saying it had nothing to run, and why
    err = capsys.readouterr().err
    assert (lint, test) == (0, 0)
    assert "lint: skipped: nothing to run (no checks.lint in the config and no ruff configuration" in err
    assert "test: skipped: nothing to run (no checks.test in the config and no tests/ directory" in err


def test_a_tests_directory_runs_pytest_in_the_project_with_its_own_packages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a project with a top-level model/ package of its own and a test importing it
    config = _project(
        tmp_path / "team",
        **{
            "model/__init__.py": "OWNER = 'team'\n",
            "tests/test_owner.py": "from model import OWNER\n\n\ndef test_owner():\n    assert OWNER == 'team'\n",
        },
    )
    monkeypatch.chdir(tmp_path)  # started elsewhere: the tests still run in the project
    # when the test check runs
    code = main(["checks", "test", "--config", str(config)])
    # then pytest ran the team's test against the team's package, and passed
    err = capsys.readouterr().err
    assert code == 0, err
    assert "test: python -m pytest -q" in err and "1 command(s) passed (the project has tests/)" in err


def test_a_failing_test_fails_the_step_with_one_line_naming_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a project whose only test fails
    config = _project(tmp_path / "team", **{"tests/test_no.py": "def test_no():\n    assert False\n"})
    # when the test check runs
    code = main(["checks", "test", "--config", str(config)])
    # then it exits 1 and its error line names the command and its exit code
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines()[-1] == "error: test: `python -m pytest -q` exited 1"


def test_configured_commands_run_in_order_and_stop_at_the_first_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given [checks] lint naming three commands, the second failing
    python = sys.executable
    config = _project(
        tmp_path / "team",
        {
            "lint": [
                [python, "-c", "open('first', 'w').write('ran')"],
                [python, "-c", "raise SystemExit(3)"],
                [python, "-c", "open('third', 'w').write('ran')"],
            ]
        },
    )
    # when lint runs
    code = main(["checks", "lint", "--config", str(config)])
    # then the first ran in the project's root, the run stopped at the second, the third never ran
    err = capsys.readouterr().err
    assert code == 1
    assert (tmp_path / "team" / "first").read_text() == "ran"
    assert not (tmp_path / "team" / "third").exists()
    assert err.strip().splitlines()[-1].endswith("raise SystemExit(3)'` exited 3")


def test_an_empty_list_runs_nothing_even_with_tests_present(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a project that has tests/ but configures test = []
    config = _project(
        tmp_path / "team", {"test": []}, **{"tests/test_no.py": "def test_no():\n    assert False\n"}
    )
    # when the test check runs
    code = main(["checks", "test", "--config", str(config)])
    # then nothing ran: the config says so
    assert code == 0
    assert "test: skipped: nothing to run" in capsys.readouterr().err


def test_ruff_configured_in_pyproject_is_the_default_lint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a project configuring ruff in pyproject.toml, with one file ruff rejects (an unused import)
    config = _project(
        tmp_path / "team",
        **{"pyproject.toml": "[tool.ruff]\nline-length = 100\n", "app.py": "import os\n"},
    )
    # when lint runs
    code = main(["checks", "lint", "--config", str(config)])
    # then ruff check ran on the project and failed it
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines()[-1] == "error: lint: `ruff check .` exited 1"


def test_a_program_that_is_not_installed_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a lint command whose program does not exist
    config = _project(tmp_path / "team", {"lint": [["no-such-linter-here", "."]]})
    # when lint runs
    code = main(["checks", "lint", "--config", str(config)])
    # then exit 2 with one line naming the program and the key
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: checks.lint: `no-such-linter-here` is not installed here"), err


def test_an_empty_command_is_refused_by_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given [checks] test holding an empty argv
    config = _project(tmp_path / "team", {"test": [[]]})
    # when it runs
    code = main(["checks", "test", "--config", str(config)])
    # then the config is refused with the dotted key
    assert code == 2
    assert "checks.test" in capsys.readouterr().err

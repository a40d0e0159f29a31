"""The host runner: ordering, failure semantics, caching, and a real run of the whole DAG."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.dag import Step, steps
from pipeline.runner.scheduler import Runner
from tests.conftest import DEFAULT_CONFIG, Project


def _py(code: str) -> tuple[str, ...]:
    return ("python", "-c", code)


def _runner(tmp_path: Path) -> Runner:
    return Runner(
        load_config(DEFAULT_CONFIG),
        DEFAULT_CONFIG,
        tmp_path / "out",
        tmp_path / "cache",
        use_cache=True,
        skip=set(),
        engine=False,
    )


def test_steps_run_after_their_needs_and_commands_run_in_order(tmp_path: Path) -> None:
    # given: b needs a; b's two commands append to one file
    log = tmp_path / "order.txt"
    append = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + chr(10))"
    table = (
        Step("a", (("python", "-c", append, str(log), "a"),)),
        Step(
            "b", (("python", "-c", append, str(log), "b1"), ("python", "-c", append, str(log), "b2")), ("a",)
        ),
    )

    # when
    code = _runner(tmp_path).execute(table)

    # then
    assert code == 0
    assert log.read_text().split() == ["a", "b1", "b2"], "needs or command order not respected"


def test_first_failure_sets_exit_code_skips_dependants_and_still_runs_always_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "report-ran"
    table = (
        Step("ok", (_py("pass"),)),
        Step("gate", (_py("import sys; print('gate says no'); sys.exit(1)"),), ("ok",)),
        Step("after", (_py("open('never', 'w')"),), ("gate",)),
        Step("report", (_py(f"open({str(marker)!r}, 'w')"),), ("gate",), always=True),
    )

    code = _runner(tmp_path).execute(table)

    err = capsys.readouterr().err
    assert code == 1, "the run must exit with the failing step's code"
    assert marker.exists(), "an always-step (the report) must run after a failure"
    assert not Path("never").exists()
    assert "FAILED gate" in err and "gate says no" in err, f"failure output missing:\n{err}"
    assert "pipeline failed at gate (exit 1)" in err


def test_bad_input_exit_code_two_is_passed_through(tmp_path: Path) -> None:
    table = (Step("validate", (_py("import sys; sys.exit(2)"),)),)

    assert _runner(tmp_path).execute(table) == 2


def test_an_environment_failure_exit_code_four_is_passed_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a step that fails as the pipeline's commands do on a full disk
    say = "import sys; print('error: out/model: No space left on device (ENOSPC)', file=sys.stderr); sys.exit(4)"
    table = (Step("train", (_py(say),)),)

    # then the run exits 4 too, never 1 ("a check failed")
    assert _runner(tmp_path).execute(table) == 4
    assert "pipeline failed at train (exit 4)" in capsys.readouterr().err


def test_a_step_killed_by_a_signal_exits_128_plus_the_signal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = (Step("train", (_py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"),)),)

    assert _runner(tmp_path).execute(table) == 137
    assert "FAILED train" in " ".join(capsys.readouterr().err.split())


def test_missing_tool_fails_the_step_with_127(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = (Step("lint", (("no-such-tool-anywhere",),)),)

    assert _runner(tmp_path).execute(table) == 127
    assert "command not found: no-such-tool-anywhere" in capsys.readouterr().err


def test_unknown_skip_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--config", str(DEFAULT_CONFIG), "--skip", "lint,typo", "--image", "never"])

    assert code == 2
    assert "unknown step(s) typo" in capsys.readouterr().err


def test_dag_needs_point_at_earlier_steps() -> None:
    seen: set[str] = set()
    for step in steps():
        assert set(step.needs) <= seen, f"{step.name} needs a step that comes later: {step.needs}"
        seen.add(step.name)


@pytest.mark.slow
def test_run_passes_on_bundled_like_data_then_reuses_the_cache(
    make_project: Callable[..., Project], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    # given: a project with its own registry and cache
    project = make_project(rows=1500)
    argv = [
        "run",
        "--config",
        str(project.config),
        "--out",
        str(project.out),
        "--skip",
        "lint,test",
        "--image",
        "never",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]

    # when: the first run
    first = main(argv)
    err_first = capsys.readouterr().err

    # then: every gate passes and the artefacts are in --out
    assert first == 0, err_first
    gates = json.loads((project.out / "gates.json").read_text())
    assert gates["passed"], gates
    for name in (
        "validation.json",
        "drift.json",
        "metrics.json",
        "gates.json",
        "report.md",
        "model/metadata.json",
    ):
        assert (project.out / name).exists(), f"{name} missing after a passing run"
    model_sha = json.loads((project.out / "model" / "metadata.json").read_text())["model_sha256"]

    # when: the second run with nothing changed
    second = main(argv)
    err_second = capsys.readouterr().err

    # then: train and evaluate come from the cache, with the same model
    assert second == 0, err_second
    for step in ("validate", "train", "evaluate", "gate"):
        assert f"cached {step}" in " ".join(err_second.split()), f"{step} was not cached:\n{err_second}"
    assert "ok report" in " ".join(err_second.split()), "the report is written for every run, never restored"
    assert json.loads((project.out / "model" / "metadata.json").read_text())["model_sha256"] == model_sha

    # when: the data changes
    frame_text = project.data.read_text().splitlines()
    project.data.write_text("\n".join(frame_text[:-5]) + "\n")
    third = main(argv)
    err_third = capsys.readouterr().err

    # then: train runs again
    assert third == 0, err_third
    assert "cached train" not in " ".join(err_third.split()), "changed data must retrain"


def test_runner_uses_this_interpreter_for_python_steps() -> None:
    from pipeline.io.interpreter import argv_for

    assert argv_for(("python", "-m", "pipeline"))[0] == sys.executable
    assert argv_for(("ruff", "check"))[0] == "ruff"


def test_always_step_runs_even_when_its_need_was_dropped_after_a_failure(tmp_path: Path) -> None:
    # given: validate fails while train (needed by report) has not started yet
    marker = tmp_path / "report-ran"
    table = (
        Step("validate", (_py("import sys; sys.exit(2)"),)),
        Step("train", (_py("pass"),), ("validate",)),
        Step("report", (_py(f"open({str(marker)!r}, 'w')"),), ("train",), always=True),
    )

    # when
    code = _runner(tmp_path).execute(table)

    # then: no hang, the report still ran, the exit code is validate's
    assert code == 2
    assert marker.exists()


def test_the_runner_and_its_config_check_import_no_data_stack() -> None:
    # a fully cached run only hashes files and starts steps: pandas, scikit-learn and SciPy would
    # cost it about a third of a second before anything happens
    code = (
        "import sys, pipeline.commands.run, pipeline.commands.options, pipeline.runner.scheduler; "
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pandas', 'sklearn', 'scipy', 'pyarrow', 'matplotlib'})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"the runner imports {done.stdout.strip()}"


def test_a_step_gets_its_own_environment_not_the_runners_run_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a runner started with a run id in its own environment (as when a run runs the test suite,
    # whose tests start runs of their own), a pipeline step and a repository check
    monkeypatch.setenv("ML_CICD_RUN", "outer-run")
    show = "import os, sys; open(sys.argv[1], 'w').write(os.environ.get('ML_CICD_RUN', '-'))"
    table = (
        Step("validate", ((*_py(show), str(tmp_path / "validate.txt")),)),
        Step("test", ((*_py(show), str(tmp_path / "test.txt")),), in_run=False),
    )
    runner = _runner(tmp_path)

    # when
    assert runner.execute(table) == 0

    # then the pipeline step records this run's id, and the check sees no run id at all
    assert (tmp_path / "validate.txt").read_text() == runner.run != "outer-run"
    assert (tmp_path / "test.txt").read_text() == "-", "the runner's run id leaked into the test step"


def test_lint_and_test_are_repository_checks_outside_the_run() -> None:
    table = {step.name: step for step in steps()}
    assert not table["lint"].in_run and not table["test"].in_run
    assert all(step.in_run for name, step in table.items() if name not in {"lint", "test"})

"""The smoke step as a function: a real model, the real server process (or none listening), smoke.json."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest

from model.codec import read_record
from model.records import Status
from pipeline.records import Smoke
from pipeline.steps.smoke import run_smoke
from tests.commands.test_smoke import running, serve_model
from tests.conftest import Project


def test_run_smoke_passes_against_the_served_model(
    trained: dict[str, Project], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: the real server for the good model
    model_dir, holdout = trained["good"].out / "model", trained["good"].out / "holdout.parquet"
    with running(serve_model(model_dir), tmp_path / "server.log") as server:
        capsys.readouterr()

        # when
        record = run_smoke(tmp_path / "out", server.url, model_dir, holdout, 30.0)

    # then
    assert record.passed, record.checks
    assert [c.name for c in record.checks] == [
        "ready",
        "health",
        "metadata",
        "predict",
        "bad_payload",
        "served_latency",
    ]
    assert all(c.status is Status.PASSED for c in record.checks[:-1]), record.checks
    assert record.checks[-1].status is Status.SKIPPED, "no champion server: served_latency is skipped"
    assert record.rows == len(pd.read_parquet(holdout))
    assert read_record(tmp_path / "out" / Smoke.FILE, Smoke) == record
    assert capsys.readouterr() == ("", ""), "a step prints nothing: its command does"


def test_run_smoke_returns_a_failed_record_when_no_server_answers(
    trained: dict[str, Project], tmp_path: Path
) -> None:
    # given: a loopback port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = trained["good"].out

    # when
    record = run_smoke(tmp_path, f"http://127.0.0.1:{port}", out / "model", out / "holdout.parquet", 0.5)

    # then: only ready was checked, it failed, and the record was written all the same
    assert record.passed is False and [c.name for c in record.checks] == ["ready"]
    assert record.checks[0].status is Status.FAILED and "within 0.5 s" in record.checks[0].message
    assert read_record(tmp_path / Smoke.FILE, Smoke) == record

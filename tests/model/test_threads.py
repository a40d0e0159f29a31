"""The thread cap of a model's native runtime: in force while a real model predicts, in the server and the gate.

A HistGradientBoosting model predicts through OpenMP, whose limit belongs to each thread. The
probe watches the real call: a profile hook (on the test's thread and every thread started while
it watches, such as a server's thread pool) records, each time the model's ``_raw_predict``
starts, the OpenMP limit of the thread making it (``threadpoolctl.threadpool_info``) and the
threads scikit-learn will use for it. Nothing is replaced; the hook only looks.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_info

from model import settings
from model.__main__ import main as model_main
from model.app import create_app
from model.artifact import read_compiled, read_metadata
from model.compiled import load_compiled
from pipeline.config import load_config
from pipeline.core.evaluation import warmup
from pipeline.steps.gate import evaluate_gates
from tests.conftest import CHURN_RECORD as RECORD
from tests.conftest import Project, Trained, build_out, train_artifact, write_project
from tests.model.test_connections import exchange, serving

HGB_MODULE = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting"
BOOSTING = {"kind": "hist_gradient_boosting", "params": {"max_iter": 20}}


@dataclass(frozen=True)
class Seen:
    """One prediction of the model: the OpenMP limits in its thread, and the threads scikit-learn used."""

    limits: frozenset[int]  # one per OpenMP runtime loaded (scikit-learn's; others a library brings)
    used: int


def openmp_limits() -> list[int]:
    """Return the thread limit of every OpenMP runtime loaded, for the calling thread."""
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"]


def default_limit() -> int:
    """Return OpenMP's limit in a fresh thread with no cap set: what an uncapped prediction gets."""
    found: list[int] = []
    thread = threading.Thread(target=lambda: found.extend(openmp_limits()))
    thread.start()
    thread.join()
    return max(found)


def limits_of(seen: list[Seen]) -> set[int]:
    """Return every OpenMP limit the predictions ran with."""
    return {limit for s in seen for limit in s.limits}


@contextmanager
def predictions_seen() -> Iterator[list[Seen]]:
    """Record a :class:`Seen` each time a HistGradientBoosting model predicts, in this thread or one started inside.

    Start a server's event loop inside the block, so its thread pool's threads are watched too.
    """
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    seen: list[Seen] = []

    def probe(frame: FrameType, event: str, arg: Any) -> None:
        code, module = frame.f_code.co_name, frame.f_globals.get("__name__")
        if event == "call" and code == "_raw_predict" and module == HGB_MODULE:
            seen.append(Seen(frozenset(openmp_limits()), _openmp_effective_n_threads()))

    threading.setprofile(probe)  # threads started from now on
    sys.setprofile(probe)  # this one
    try:
        yield seen
    finally:
        sys.setprofile(None)
        threading.setprofile(None)


@pytest.fixture(scope="module")
def boosting(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A HistGradientBoosting classifier trained by the CLI: served by scikit-learn (it has no ONNX form)."""
    return train_artifact(tmp_path_factory.mktemp("boosting"), edit=lambda raw: raw.update(model=BOOSTING))


@pytest.fixture(scope="module")
def boosting_out(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A validated, trained and evaluated HistGradientBoosting project, ready for the gate."""
    project = write_project(
        tmp_path_factory.mktemp("boosting-gate"), rows=600, edit=lambda raw: raw.update(model=BOOSTING)
    )
    build_out(project)
    return project


def test_a_served_prediction_runs_with_the_thread_cap(boosting: Trained) -> None:
    # given the boosting model served in-process (predictions in the server's thread pool), capped
    # at 1 thread and at one more thread than an uncapped prediction gets
    records = [RECORD, {**RECORD, "tenure_months": 40}, {**RECORD, "contract": "two_year"}]
    uncapped = default_limit()
    for threads in (1, uncapped + 1):
        with (
            predictions_seen() as seen,
            TestClient(create_app(boosting.model_dir, threads=threads)) as client,
        ):
            # when it answers a single record and a batch
            single = client.post("/predict", json={"records": records[:1]})
            batch = client.post("/predict", json={"records": records})
            metadata = client.get("/metadata").json()

        # then every prediction ran with exactly the cap, and /metadata says so
        assert single.status_code == batch.status_code == 200, (single.text, batch.text)
        assert metadata["runtime"] == "sklearn" and metadata["threads"] == threads
        assert len(seen) >= 2, "the probe saw no prediction"
        assert limits_of(seen) == {threads}, (threads, seen)
        if threads == 1:
            assert {s.used for s in seen} == {1}, seen
    assert default_limit() == uncapped, "the cap outlived the predictions"


def test_model_threads_sets_the_servers_cap(boosting: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    # given MODEL_THREADS=2 and no argument
    monkeypatch.setenv(settings.THREADS_ENV, "2")

    # when the server predicts
    with predictions_seen() as seen, TestClient(create_app(boosting.model_dir)) as client:
        answer = client.post("/predict", json={"records": [RECORD]})
        threads = client.get("/metadata").json()["threads"]

    # then
    assert answer.status_code == 200 and threads == 2
    assert seen and limits_of(seen) == {2}, seen


def test_the_default_is_one_thread(boosting: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.THREADS_ENV, raising=False)
    with predictions_seen() as seen, TestClient(create_app(boosting.model_dir)) as client:
        client.post("/predict", json={"records": [RECORD]})
        threads = client.get("/metadata").json()["threads"]
    assert threads == settings.DEFAULT_THREADS == 1
    assert seen and limits_of(seen) == {1}, seen


@pytest.mark.parametrize(
    ("option", "env", "message"),
    [
        (["--threads", "0"], None, "threads must be >= 1, got 0"),
        ([], "0", "threads must be >= 1, got 0"),
        ([], "two", "MODEL_THREADS='two' is not a whole number"),
    ],
)
def test_a_bad_thread_count_exits_2_naming_it(
    boosting: Trained,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    option: list[str],
    env: str | None,
    message: str,
) -> None:
    # given
    if env is not None:
        monkeypatch.setenv(settings.THREADS_ENV, env)

    # when
    code = model_main(["--model-dir", str(boosting.model_dir), "--port", "0", "--workers", "1", *option])

    # then: refused before anything is loaded or bound
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: {message}"], (code, err)


def test_an_onnx_session_gets_the_thread_count(trained: dict[str, Project]) -> None:
    # given the session's logistic regression, which ships an ONNX form
    model_dir = trained["good"].out / "model"
    metadata = read_metadata(model_dir)
    onnx = read_compiled(model_dir, metadata)
    assert onnx is not None

    for threads in (1, 3):
        # when
        compiled = load_compiled(onnx, metadata.features, metadata.labels, threads)

        # then
        options = compiled.session.get_session_options()
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (threads, threads)


def test_the_gate_scores_and_times_the_model_with_serving_threads(boosting_out: Project) -> None:
    # given the evaluated boosting candidate, no champion, and serving.threads at 1 and at one more
    # thread than an uncapped prediction gets
    config = load_config(boosting_out.config)
    uncapped = default_limit()
    for threads in (1, uncapped + 1):
        capped = dataclasses.replace(config, serving=dataclasses.replace(config.serving, threads=threads))

        # when the gate runs
        with predictions_seen() as seen:
            record = evaluate_gates(capped, boosting_out.out, str(boosting_out.root / "none"), "run-threads")

        # then every prediction it made (scoring, and each timed single record) ran with the cap
        assert record.latency is not None and record.latency.candidate_runtime == "sklearn"
        samples = config.gates.latency.samples
        assert len(seen) >= samples + warmup(samples), f"the probe saw {len(seen)} predictions"
        assert limits_of(seen) == {threads}, (threads, sorted(limits_of(seen)))
        if threads == 1:
            assert {s.used for s in seen} == {1}
    assert default_limit() == uncapped, "the cap outlived the gate"


@pytest.mark.slow  # two worker processes: a slow start on a busy machine
def test_worker_processes_get_the_thread_count(boosting: Trained, tmp_path: Path) -> None:
    # given two worker processes started with --threads 3
    with serving(boosting.model_dir, tmp_path / "server.log", "--workers", "2", "--threads", "3") as server:
        # when asked, several times (either worker may answer)
        answers = [json.loads(exchange(server, "GET", "/metadata")[1])["threads"] for _ in range(6)]

    # then
    assert answers == [3] * 6, answers

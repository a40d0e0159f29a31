"""Latency that means something: identical models never fail; a candidate 5x slower under load does.

In-process (``gate``): two identical forests, gated 20 times in a row. Served (``smoke
--champion-url``): real model servers on loopback, driven alternately at the configured
concurrency; the slow candidate is a real artefact, signed and loaded by the server as any other,
whose predictions cost five times the champion's work.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.artifact import load_artifact, save_artifact
from pipeline.cli import main
from tests.commands.test_smoke import Server, running, serve_model
from tests.conftest import (
    DEFAULT_CONFIG,
    Project,
    Trained,
    build_out,
    default_config_dict,
    dump_toml,
    train_artifact,
)


class Repeated:
    """A fitted model that computes every answer ``times`` times: the same answers, ``times`` the work.

    Pickled by reference to this module, which the server imports (it runs from the repository).
    """

    def __init__(self, inner: Any, times: int) -> None:
        self.inner, self.times = inner, times

    @property
    def classes_(self) -> Any:
        return self.inner.classes_

    def predict(self, X: Any) -> Any:
        return [self.inner.predict(X) for _ in range(self.times)][-1]

    def predict_proba(self, X: Any) -> Any:
        return [self.inner.predict_proba(X) for _ in range(self.times)][-1]


# ---------------------------------------------------------------------------------------------
# In-process: the gate step.


@pytest.mark.slow
def test_identical_models_never_fail_the_latency_gate_in_20_runs(
    make_project: Callable[..., Project],
) -> None:
    # given two identical 100-tree forests (the candidate and a copy as champion), 200 timed predicts each
    def forest(raw: dict[str, Any]) -> None:
        raw["model"] = {"kind": "random_forest", "params": {"n_estimators": 100}}
        raw["gates"]["latency"]["samples"] = 200

    project = make_project(rows=800, config=forest)
    build_out(project)
    champion = project.root / "champion"
    shutil.copytree(project.out / "model", champion)

    # when gated 20 times
    results, ratios = [], []
    for _ in range(20):
        assert main(project.cli("gate", "--champion", str(champion))) == 0
        gates = json.loads((project.out / "gates.json").read_text())
        results.append(next(g for g in gates["gates"] if g["name"] == "latency_p95"))
        ratios.append(gates["latency"]["ratio"])

    # then: not one latency failure, however the point ratios scattered
    failed = [r["message"] for r in results if r["status"] != "passed"]
    assert not failed, f"{len(failed)} of 20 failed: {failed[:3]}"
    assert all("CI" in r["message"] and "floor 1 ms" in r["message"] for r in results), results[0]
    print(f"point ratios of 20 identical gates: {min(ratios):.2f} .. {max(ratios):.2f}")


# ---------------------------------------------------------------------------------------------
# Served: the smoke step against the champion's server.


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    """``onnx``: a logistic regression served by ONNX Runtime; ``champion`` and ``slow``: the same
    model served by scikit-learn, computing each answer once and five times (signed as training signs)."""
    root = tmp_path_factory.mktemp("latency")
    onnx = train_artifact(root / "onnx")
    estimator, metadata = load_artifact(onnx.model_dir)
    made = {"onnx": onnx}
    for name, times in (("champion", 1), ("slow", 5)):
        model_dir = root / name / "model"
        save_artifact(model_dir, Repeated(estimator, times), dataclasses.replace(metadata, compiled=None))
        made[name] = Trained(model_dir, onnx.holdout)
    return made


def server(model: Trained, where: Path) -> Iterator[Server]:
    """Run the model's server (one worker) on a free loopback port."""
    with running(serve_model(model.model_dir, "--workers", "1"), where / "server.log") as started:
        yield started


@pytest.fixture(scope="module")
def onnx_server(artefacts: dict[str, Trained], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from server(artefacts["onnx"], tmp_path_factory.mktemp("onnx-server"))


def smoke(url: str, model: Trained, out: Path, config: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    """Run ``pipeline smoke`` against ``url``; return the exit code and the served_latency check."""
    argv = ["smoke", "--url", url, "--config", str(config), "--out", str(out)]
    code = main([*argv, "--model", str(model.model_dir), "--data", str(model.holdout), *extra])
    checks = json.loads((out / "smoke.json").read_text())["checks"]
    return code, {"checks": checks, **next(c for c in checks if c["name"] == "served_latency")}


def small_load(where: Path) -> Path:
    """A config driving 6 batches of 20 requests (8 in flight): the scikit-learn runtime answers slowly."""
    raw = default_config_dict()
    raw["data"]["path"] = str(where / "unused.csv")
    raw["gates"]["latency"].update(batches=6, requests=20)
    config = where / "pipeline.toml"
    config.write_text(dump_toml(raw))
    return config


@pytest.mark.slow
def test_identical_servers_pass_the_served_gate_every_time(
    artefacts: dict[str, Trained], onnx_server: Server, tmp_path: Path
) -> None:
    # given a second server of the same artefact, as the champion's
    with running(serve_model(artefacts["onnx"].model_dir, "--workers", "1"), tmp_path / "b.log") as champion:
        for attempt in range(5):
            # when smoke drives both at the default load (10 batches of 50, 8 in flight)
            code, served = smoke(
                onnx_server.url,
                artefacts["onnx"],
                tmp_path / f"out{attempt}",
                DEFAULT_CONFIG,
                "--champion-url",
                champion.url,
            )

            # then
            assert code == 0 and served["status"] == "passed", served["message"]
            assert served["required"] is True and served["threshold"] == 1.5
            for part in ("8 requests in flight", "10 timed batches of 50", "requests/s", champion.url):
                assert part in served["message"], (part, served["message"])


@pytest.mark.slow
def test_a_five_times_slower_candidate_fails_the_served_gate(
    artefacts: dict[str, Trained], tmp_path: Path
) -> None:
    config = small_load(tmp_path)
    with (
        running(serve_model(artefacts["slow"].model_dir, "--workers", "1"), tmp_path / "slow.log") as slow,
        running(
            serve_model(artefacts["champion"].model_dir, "--workers", "1"), tmp_path / "c.log"
        ) as champion,
    ):
        # when the candidate doing five times the work is compared with the champion under load
        code, served = smoke(
            slow.url, artefacts["slow"], tmp_path / "out", config, "--champion-url", champion.url
        )

    # then the served gate fails it, and only that check
    assert code == 1 and served["status"] == "failed", served["message"]
    assert served["observed"] > 3, served["message"]
    assert "slower than the champion" in served["message"] and "p95" in served["message"]
    others = [c for c in served["checks"] if c["name"] != "served_latency"]
    assert all(c["status"] == "passed" for c in others), others


@pytest.mark.slow
def test_identical_slow_servers_pass_where_the_floor_cannot_help(
    artefacts: dict[str, Trained], tmp_path: Path
) -> None:
    # given two scikit-learn servers of one model, tens of milliseconds a request under load
    config = small_load(tmp_path)
    model = artefacts["champion"]
    with (
        running(serve_model(model.model_dir, "--workers", "1"), tmp_path / "a.log") as candidate,
        running(serve_model(model.model_dir, "--workers", "1"), tmp_path / "b.log") as champion,
    ):
        for attempt in range(2):
            code, served = smoke(
                candidate.url, model, tmp_path / f"out{attempt}", config, "--champion-url", champion.url
            )

            assert code == 0 and served["status"] == "passed", served["message"]


def test_without_a_champion_url_the_served_check_is_skipped(
    artefacts: dict[str, Trained], onnx_server: Server, tmp_path: Path
) -> None:
    code, served = smoke(onnx_server.url, artefacts["onnx"], tmp_path, tmp_path / "no-config-is-read.toml")

    assert code == 0 and served["status"] == "skipped" and served["required"] is False, served
    assert "no --champion-url" in served["message"]


def test_a_champion_server_that_does_not_answer_is_an_error(
    artefacts: dict[str, Trained], onnx_server: Server, tmp_path: Path
) -> None:
    # given a loopback port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"

    code, served = smoke(
        onnx_server.url, artefacts["onnx"], tmp_path, DEFAULT_CONFIG, "--champion-url", dead, "--timeout", "1"
    )

    assert code == 1 and served["status"] == "error", served
    assert f"the champion server at {dead}" in served["message"] and "/ready" in served["message"]


def test_a_bad_champion_url_exits_2(
    artefacts: dict[str, Trained], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["smoke", "--url", "http://127.0.0.1:1", "--champion-url", "ftp://x", "--out", str(tmp_path)]

    code = main([*argv, "--model", str(artefacts["onnx"].model_dir)])

    assert code == 2 and "--champion-url 'ftp://x' is not an http(s) base URL" in capsys.readouterr().err
    assert not (tmp_path / "smoke.json").exists()


def test_repeated_gives_the_same_answers(artefacts: dict[str, Trained]) -> None:
    slow, _ = load_artifact(artefacts["slow"].model_dir)
    fast, _ = load_artifact(artefacts["onnx"].model_dir)
    rows = artefacts["onnx"].features()

    assert isinstance(slow, Repeated) and slow.times == 5
    assert np.array_equal(slow.predict_proba(rows), fast.predict_proba(rows))

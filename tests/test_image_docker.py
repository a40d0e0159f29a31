"""The serving image, built and run with a real Docker engine and checked over loopback HTTP.

Marked ``docker``: skipped with a reason when no engine answers, except where
``ML_CICD_REQUIRE_DOCKER=1`` (set by ``.ci/run``), where a missing engine fails the run.
The engine and a local base image come from ``scripts/docker-engine.sh``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline import image
from pipeline.cli import main
from pipeline.synth import churn_frame
from tests.conftest import default_config_dict, dump_toml

pytestmark = pytest.mark.docker

LOCAL_BASE = "local/python:3.11-bookworm"
SIZE_LIMIT_MB = 450
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def _require_engine() -> None:
    if image.engine_available():
        return
    if os.environ.get("ML_CICD_REQUIRE_DOCKER") == "1":
        pytest.fail("ML_CICD_REQUIRE_DOCKER=1 but no Docker engine answers")
    pytest.skip("no Docker engine answers: run scripts/docker-engine.sh")


def _docker(*args: str) -> str:
    return subprocess.run([image.docker_bin(), *args], capture_output=True, text=True, check=True).stdout


def _post(url: str, payload: Any) -> tuple[int, dict[str, Any]]:
    body = json.dumps(payload).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Train a small model, build its image with a marked CA bundle secret, start it."""
    _require_engine()
    root = tmp_path_factory.mktemp("image")
    data = root / "data.csv"
    churn_frame(900, seed=5).to_csv(data, index=False)
    raw = default_config_dict()
    raw["data"]["path"] = str(data)
    raw["drift"].pop("reference")
    raw["schema"]["min_rows"] = 50
    raw["training"]["sample_rows"] = 0
    raw["registry"]["path"] = str(root / "registry")
    config = root / "pipeline.toml"
    config.write_text(dump_toml(raw))
    out = root / "out"
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    assert main(["evaluate", "--config", str(config), "--out", str(out)]) == 0

    marker = f"ml-cicd-ca-marker-{uuid.uuid4().hex}"
    ca_bundle = root / "ca.pem"
    host_ca = HOST_CA.read_text() if HOST_CA.is_file() else ""
    ca_bundle.write_text(f"# {marker}\n{host_ca}")
    base = os.environ.get("ML_CICD_BASE_IMAGE") or LOCAL_BASE
    tag = f"ml-cicd-model-test:{uuid.uuid4().hex[:8]}"
    info = image.build(out, tag=tag, base_image=base, ca_bundle=ca_bundle)
    url, container = image.start_service(tag)
    try:
        yield {
            "out": out,
            "config": config,
            "tag": tag,
            "url": url,
            "container": container,
            "marker": marker,
            **info,
        }
    finally:
        image.stop_service(container, timeout=2)
        subprocess.run([image.docker_bin(), "rmi", "-f", tag], capture_output=True, check=False)


def test_smoke_checks_pass_with_served_predictions_equal_to_offline(built: dict[str, Any]) -> None:
    # when: the smoke command checks /health, /ready, /metadata and /predict on the held-out rows
    code = main(
        ["smoke", "--config", str(built["config"]), "--out", str(built["out"]), "--url", built["url"]]
    )

    # then
    smoke = json.loads((built["out"] / "smoke.json").read_text())
    assert code == 0, smoke
    names = {check["name"] for check in smoke["checks"] if check["passed"]}
    assert {"health", "ready", "predict"} <= names, smoke


def test_served_probabilities_equal_the_offline_model_exactly(built: dict[str, Any]) -> None:
    from model.artifact import load_artifact

    estimator, metadata = load_artifact(built["out"] / "model")
    rows = pd.read_parquet(built["out"] / "holdout.parquet").head(40)
    features = [f["name"] for f in metadata["features"]]
    records = json.loads(rows[features].to_json(orient="records"))

    status, answer = _post(built["url"] + "/predict", {"records": records})

    assert status == 200, answer
    offline = estimator.predict_proba(pd.DataFrame(records, columns=features))
    served = [[p[str(label)] for label in metadata["labels"]] for p in answer["probabilities"]]
    assert served == offline.tolist(), "served probabilities differ from the offline model's"
    assert answer["predictions"] == estimator.predict(pd.DataFrame(records, columns=features)).tolist()


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda r: r.pop("tenure_months"), 422),
        (lambda r: r.update(tenure_months="ten"), 422),
        (lambda r: r.update(colour="red"), 422),
    ],
)
def test_bad_records_are_rejected_without_a_server_error(
    built: dict[str, Any], mutate: Any, status: int
) -> None:
    record = json.loads(pd.read_parquet(built["out"] / "holdout.parquet").head(1).to_json(orient="records"))[
        0
    ]
    record.pop("churned", None)
    record.pop("customer_id", None)
    mutate(record)

    code, body = _post(built["url"] + "/predict", {"records": [record]})

    assert code == status, body


def test_empty_and_oversize_batches_are_rejected(built: dict[str, Any]) -> None:
    record = json.loads(pd.read_parquet(built["out"] / "holdout.parquet").head(1).to_json(orient="records"))[
        0
    ]
    record.pop("churned", None)
    record.pop("customer_id", None)

    assert _post(built["url"] + "/predict", {"records": []})[0] == 422
    assert _post(built["url"] + "/predict", {"records": [record] * 1001})[0] == 413


def test_the_server_runs_as_a_non_root_user(built: dict[str, Any]) -> None:
    uid = _docker("exec", built["container"], "id", "-u").strip()
    user = json.loads(_docker("image", "inspect", built["tag"]))[0]["Config"]["User"]

    assert uid != "0", "the model server must not run as root"
    assert user not in ("", "root", "0")


def test_the_ca_bundle_is_in_no_layer_nor_the_history(built: dict[str, Any], tmp_path: Path) -> None:
    history = _docker("history", "--no-trunc", built["tag"])
    saved = tmp_path / "image.tar"
    _docker("save", "-o", str(saved), built["tag"])

    marker = built["marker"].encode()
    assert marker.decode() not in history
    with tarfile.open(saved) as outer:
        for member in outer.getmembers():
            handle = outer.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            content = handle.read()
            assert marker not in content, f"CA bundle marker found in {member.name} of the saved image"
            if member.name.endswith(("layer.tar", ".tar")) or "blobs" in member.name:
                _assert_not_in_layer(content, marker, member.name)


def _assert_not_in_layer(blob: bytes, marker: bytes, name: str) -> None:
    import io

    try:
        layer = tarfile.open(fileobj=io.BytesIO(blob))  # noqa: SIM115 (closed by the with below)
    except tarfile.TarError:
        return
    with layer:
        for member in layer.getmembers():
            handle = layer.extractfile(member) if member.isfile() else None
            if handle is not None:
                assert marker not in handle.read(), f"CA bundle marker in {member.name} of layer {name}"


def test_the_image_has_labels_and_a_healthcheck_and_stays_small(built: dict[str, Any]) -> None:
    config = json.loads(_docker("image", "inspect", built["tag"]))[0]["Config"]
    metadata = json.loads((built["out"] / "model" / "metadata.json").read_text())

    assert config["Labels"]["io.ml-cicd.model.sha256"] == metadata["model_sha256"]
    assert "roc_auc=" in config["Labels"]["io.ml-cicd.model.metrics"]
    assert config["Labels"]["org.opencontainers.image.revision"]
    assert config["Healthcheck"]["Test"][0] in ("CMD", "CMD-SHELL")
    size_mb = built["size_bytes"] / 1e6
    print(f"image size: {size_mb:.0f} MB")
    assert size_mb < SIZE_LIMIT_MB, f"image is {size_mb:.0f} MB, limit {SIZE_LIMIT_MB} MB"


def test_docker_stop_is_prompt(built: dict[str, Any]) -> None:
    # given: a second container of the same image, ready
    url, container = image.start_service(built["tag"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/ready", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.3)

    # when
    started = time.monotonic()
    _docker("stop", container)
    seconds = time.monotonic() - started

    # then: SIGTERM is handled (no 10 s wait for SIGKILL)
    assert seconds < 2.0, f"docker stop took {seconds:.1f}s; the server must exit on SIGTERM"


def test_host_run_builds_and_smoke_tests_the_image(built: dict[str, Any], tmp_path: Path) -> None:
    # given: the trained project of the fixture, run as a whole DAG with an engine
    argv = ["run", "--config", str(built["config"]), "--out", str(tmp_path / "out"), "--skip", "lint,test"]

    # when
    code = main([*argv, "--image", "always", "--cache-dir", str(tmp_path / "cache")])

    # then: build_image and smoke_test ran and the served model matched the offline one
    assert code == 0
    smoke = json.loads((tmp_path / "out" / "smoke.json").read_text())
    assert smoke["passed"], smoke
    built_image = json.loads((tmp_path / "out" / "image.json").read_text())
    subprocess.run([image.docker_bin(), "rmi", "-f", built_image["tag"]], capture_output=True, check=False)

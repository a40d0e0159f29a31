"""The strict codec: every record round-trips, and a missing key, an unknown key, a wrong type or another
schema version is an error that names the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.codec import read_record, write_record
from model.errors import ArtifactError
from model.records import Result, Status
from pipeline.records import Image, Smoke

IMAGE = Image(
    "run-1", "ml-cicd-model:abc", "sha256:1", 123, "local/python:3.13-trixie", "onnx", "a" * 64, 1.5
)


def _rewrite(path: Path, edit: object) -> None:
    data = json.loads(path.read_text())
    edit(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))


def test_a_record_round_trips_with_its_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "image.json"

    write_record(path, IMAGE)

    assert json.loads(path.read_text())["schema_version"] == 1
    assert read_record(path, Image) == IMAGE


def test_nested_results_keep_their_status_enum(tmp_path: Path) -> None:
    smoke = Smoke(
        "run-1", "http://x", False, "b" * 64, 3, (Result("ready", Status.FAILED, True, None, None, "no"),)
    )
    write_record(tmp_path / "smoke.json", smoke)

    back = read_record(tmp_path / "smoke.json", Smoke)

    assert back == smoke and back.checks[0].status is Status.FAILED


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("tag"), "missing required key 'tag'"),
        (lambda d: d.update(colour="red"), "unknown key 'colour'"),
        (lambda d: d.update(size_bytes="big"), "size_bytes must be an integer, got 'big'"),
        (lambda d: d.update(size_bytes=True), "size_bytes must be an integer, got True"),
        (lambda d: d.pop("schema_version"), "missing required key 'schema_version'"),
        (lambda d: d.update(schema_version=2), "schema_version 2, this ml-cicd reads 1"),
    ],
)
def test_bad_files_are_errors_naming_the_file_and_the_key(tmp_path: Path, edit: object, message: str) -> None:
    # given: a valid image.json, then edited
    path = tmp_path / "image.json"
    write_record(path, IMAGE)
    _rewrite(path, edit)

    # when / then
    with pytest.raises(ArtifactError) as raised:
        read_record(path, Image)
    assert str(path) in str(raised.value) and message in str(raised.value), raised.value


def test_a_missing_or_malformed_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")

    with pytest.raises(ArtifactError, match="not found"):
        read_record(tmp_path / "none.json", Image)
    with pytest.raises(ArtifactError, match="unreadable"):
        read_record(tmp_path / "bad.json", Image)


def test_non_finite_numbers_are_written_as_null(tmp_path: Path) -> None:
    result = Result("latency_p95", Status.SKIPPED, False, float("nan"), float("inf"), "nothing measured")
    smoke = Smoke("run-1", "http://x", True, "c" * 64, 0, (result,))

    write_record(tmp_path / "smoke.json", smoke)

    check = json.loads((tmp_path / "smoke.json").read_text())["checks"][0]
    assert check["observed"] is None and check["threshold"] is None


def test_a_model_saved_before_the_baseline_existed_still_loads_and_a_future_one_is_refused(
    tmp_path: Path,
) -> None:
    # given a trained artefact whose metadata.json is rewritten as the previous version wrote it
    from model.artifact import load_artifact
    from model.records import ModelMetadata
    from tests.conftest import resign, train_artifact

    model_dir = train_artifact(tmp_path / "project").model_dir
    path = model_dir / ModelMetadata.FILE
    raw = json.loads(path.read_text())
    del raw["baseline"], raw["needs"]
    raw["schema_version"] = 2
    path.write_text(json.dumps(raw))
    resign(model_dir)

    # when
    _, metadata = load_artifact(model_dir)

    # then: it reads, with no baseline; a version this code never wrote is refused
    assert metadata.baseline is None and metadata.needs is None
    raw["schema_version"] = 5
    path.write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="schema_version 5, this ml-cicd reads 2, 3, 4"):
        read_record(path, ModelMetadata)

"""The model API in-process (``with TestClient(app)``, so startup runs): endpoints, bad payloads, parity."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from model.app import create_app
from model.artifact import load_artifact, save_artifact
from model.codec import write_record
from model.errors import ArtifactError
from model.records import Feature, Lineage, Metrics
from tests.conftest import CHURN_RECORD as RECORD
from tests.conftest import Trained, as_regression, metadata_json, model_metadata, train_artifact


def through_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return rows as records after a trip through JSON text (missing values become null)."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return json.loads(json.dumps(rows))


def metric(client: TestClient, name: str, **labels: str) -> float:
    """Return the sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
    total = 0.0
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def probability_rows(answer: dict[str, Any]) -> list[list[float]]:
    """Return an answer's probabilities as rows in label order."""
    keys = [str(label) for label in answer["labels"]]
    return [[row[key] for key in keys] for row in answer["probabilities"]]


def assert_answers_like_offline(
    answer: dict[str, Any], model_dir: Path, frame: pd.DataFrame, runtime: str
) -> None:
    """Served by scikit-learn: equal to the offline model. By ONNX Runtime: the same labels, and
    probabilities (regressors: predictions) within the parity limit training recorded."""
    estimator, metadata = load_artifact(model_dir)
    offline = estimator.predict(frame).tolist()
    classifier = metadata.task == "classification"
    if runtime == "sklearn":
        assert answer["predictions"] == offline
        if classifier:
            assert probability_rows(answer) == estimator.predict_proba(frame).tolist(), "probabilities differ"
        return
    assert metadata.compiled is not None and metadata.compiled.parity is not None
    limit = metadata.compiled.parity.limit
    if classifier:
        assert answer["predictions"] == offline, "a label differs from the offline model's"
        served = np.asarray(probability_rows(answer))
        worst = float(np.max(np.abs(served - estimator.predict_proba(frame))))
    else:
        worst = float(np.max(np.abs(np.asarray(answer["predictions"]) - np.asarray(offline))))
    assert worst <= limit, f"served answers differ by {worst:.3g}, more than the parity limit {limit:.3g}"


RUNTIMES = ["onnx", "sklearn"]


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A logistic-regression churn model trained once for the module."""
    return train_artifact(tmp_path_factory.mktemp("churn"))


@pytest.fixture(scope="module")
def client(churn: Trained) -> Iterator[TestClient]:
    """A started app serving the churn model."""
    with TestClient(create_app(churn.model_dir)) as started:
        yield started


def copy_model(trained: Trained, target: Path) -> Path:
    """Return a private copy of the artefact directory."""
    shutil.copytree(trained.model_dir, target)
    return target


# ---------------------------------------------------------------------------------------------
# Endpoints.


def test_before_startup_health_answers_but_ready_metadata_and_predict_are_503(churn: Trained) -> None:
    # given an app whose startup has not run (no `with`)
    unstarted = TestClient(create_app(churn.model_dir))

    # when
    answers = {path: unstarted.get(path) for path in ("/health", "/ready", "/metadata")}
    answers["/predict"] = unstarted.post("/predict", json={"records": [RECORD]})

    # then
    assert answers["/health"].status_code == 200, "/health must answer while the process runs"
    for path in ("/ready", "/metadata", "/predict"):
        assert answers[path].status_code == 503, f"{path} answered {answers[path].status_code} before startup"


def test_after_startup_health_and_ready_answer_200(client: TestClient, churn: Trained) -> None:
    # when
    health, ready = client.get("/health"), client.get("/ready")

    # then
    assert health.status_code == 200 and health.json() == {"status": "alive"}
    sha = metadata_json(churn.model_dir)["model_sha256"]
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": sha[:12], "runtime": "onnx"}


def test_metadata_describes_the_served_model(client: TestClient, churn: Trained) -> None:
    # given
    stored = metadata_json(churn.model_dir)

    # when
    answer = client.get("/metadata").json()

    # then
    assert answer["version"] == stored["model_sha256"][:12], "without lineage the version is the sha prefix"
    assert answer["model_sha256"] == stored["model_sha256"]
    assert answer["features"] == stored["features"]
    assert answer["labels"] == [0, 1] and answer["task"] == "classification"
    assert answer["sklearn_version"] == sklearn.__version__
    assert answer["runtime"] == "onnx" and answer["onnx_sha256"] == stored["compiled"]["sha256"]
    assert answer["out_of_range"] == "count"
    assert answer["metrics"] is None, "no metrics were stored with this artefact"
    assert answer["max_batch"] == 1000 and answer["max_body_bytes"] == 4 * 1024 * 1024


def test_version_and_metrics_come_from_registry_files_beside_the_model(
    churn: Trained, tmp_path: Path
) -> None:
    # given a copy of the artefact with a registry lineage.json and metrics.json
    model_dir = copy_model(churn, tmp_path / "model")
    sha = metadata_json(model_dir)["model_sha256"]
    lineage = Lineage(
        7, sha, None, "d" * 64, "c" * 64, None, None, str(model_dir), "ci", "2026-01-01T00:00:00Z"
    )
    metrics = Metrics(
        "r1", "classification", sha, 150, {"roc_auc": 0.81}, None, None, {}, {"0": 0.7, "1": 0.3}
    )
    write_record(model_dir / "lineage.json", lineage)
    write_record(model_dir / "metrics.json", metrics)

    # when
    with TestClient(create_app(model_dir)) as started:
        metadata = started.get("/metadata").json()
        answer = started.post("/predict", json={"records": [RECORD]}).json()

    # then
    assert metadata["version"] == "7", f"version should come from lineage.json, got {metadata['version']}"
    assert metadata["metrics"] == {"roc_auc": 0.81}
    assert answer["model_version"] == "7"


def test_metrics_endpoint_counts_requests_errors_latency_and_predictions(client: TestClient) -> None:
    # given the counters before
    requests_ok = metric(client, "model_http_requests_total", endpoint="/predict", status="200")
    errors = metric(client, "model_http_errors_total", endpoint="/predict", status="422")
    timed = metric(client, "model_http_request_duration_seconds_count", endpoint="/predict")
    predicted = metric(client, "model_predictions_total")

    # when two good requests (3 rows) and one bad one are answered
    client.post("/predict", json={"records": [RECORD, RECORD]})
    client.post("/predict", json={"records": [RECORD]})
    client.post("/predict", json={"records": [{**RECORD, "tenure_months": "5"}]})

    # then
    text = client.get("/metrics").text
    assert "# TYPE model_http_request_duration_seconds histogram" in text
    assert metric(client, "model_http_requests_total", endpoint="/predict", status="200") == requests_ok + 2
    assert metric(client, "model_http_errors_total", endpoint="/predict", status="422") == errors + 1
    assert metric(client, "model_http_request_duration_seconds_count", endpoint="/predict") == timed + 3
    assert metric(client, "model_predictions_total") == predicted + 3, "every predicted row counts once"
    assert {"0", "1"} <= {
        s.labels["label"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "model_predictions_total"
    }, "each class has its own predictions counter"
    assert metric(client, "model_ready") == 1


def test_two_apps_in_one_process_keep_their_own_metrics(churn: Trained) -> None:
    # given two started apps
    with TestClient(create_app(churn.model_dir)) as first, TestClient(create_app(churn.model_dir)) as second:
        # when only the first answers a prediction
        first.post("/predict", json={"records": [RECORD]})

        # then
        assert metric(first, "model_predictions_total") == 1
        assert metric(second, "model_predictions_total") == 0, "the second app counted the first app's rows"


DOCS = ("/docs", "/redoc", "/openapi.json")


def test_api_docs_are_off_unless_asked(churn: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    # given no MODEL_DOCS
    monkeypatch.delenv("MODEL_DOCS", raising=False)

    # when
    with (
        TestClient(create_app(churn.model_dir)) as default,
        TestClient(create_app(churn.model_dir, docs=True)) as on,
    ):
        off_answers = {path: default.get(path).status_code for path in DOCS}
        on_answers = {path: on.get(path).status_code for path in DOCS}
        paths = set(on.get("/openapi.json").json()["paths"])

    # then
    assert off_answers == dict.fromkeys(DOCS, 404), f"docs served by default: {off_answers}"
    assert on_answers == dict.fromkeys(DOCS, 200), f"docs=True did not serve them: {on_answers}"
    assert "/predict" in paths, paths


@pytest.mark.parametrize(("value", "served"), [("1", True), ("true", True), ("off", False), ("", False)])
def test_model_docs_turns_the_api_docs_on(
    churn: Trained, monkeypatch: pytest.MonkeyPatch, value: str, served: bool
) -> None:
    # given
    monkeypatch.setenv("MODEL_DOCS", value)

    # when
    with TestClient(create_app(churn.model_dir)) as started:
        answers = {path: started.get(path).status_code for path in DOCS}

    # then
    assert answers == dict.fromkeys(DOCS, 200 if served else 404), f"MODEL_DOCS={value!r}: {answers}"


def test_a_bad_model_docs_value_is_refused_when_the_app_is_made(
    churn: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setenv("MODEL_DOCS", "perhaps")

    # when / then
    with pytest.raises(ValueError, match="MODEL_DOCS='perhaps': expected one of 1, true"):
        create_app(churn.model_dir)


# ---------------------------------------------------------------------------------------------
# Served predictions equal the offline model's.


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_served_answers_equal_the_offline_model_by_each_runtime(churn: Trained, runtime: str) -> None:
    # given the held-out rows written through JSON
    features = churn.features()
    records = through_json(features)

    # when the whole batch and then single rows are served
    with TestClient(create_app(churn.model_dir, runtime=runtime)) as started:  # type: ignore[arg-type]
        batch = started.post("/predict", content=json.dumps({"records": records}))
        singles = [
            started.post("/predict", content=json.dumps({"records": [r]})).json() for r in records[:25]
        ]
        version = started.get("/metadata").json()["version"]

    # then
    assert batch.status_code == 200, batch.text
    answer = batch.json()
    assert_answers_like_offline(answer, churn.model_dir, features, runtime)
    assert answer["labels"] == [0, 1] and answer["model_version"] == version
    for i, single in enumerate(singles):
        assert_answers_like_offline(single, churn.model_dir, features.iloc[[i]], runtime)


@pytest.mark.parametrize(
    ("model", "runtime"),
    [
        ({"kind": "random_forest", "params": {"n_estimators": 15, "max_depth": 6}}, "onnx"),
        ({"kind": "hist_gradient_boosting", "params": {"max_iter": 30}}, "sklearn"),
    ],
    ids=lambda m: m["kind"] if isinstance(m, dict) else m,
)
def test_other_estimators_are_served_as_offline(
    tmp_path_factory: pytest.TempPathFactory, model: dict[str, Any], runtime: str
) -> None:
    # given another kind of classifier trained by the CLI (a forest converts; boosting does not)
    trained = train_artifact(tmp_path_factory.mktemp(model["kind"]), edit=lambda raw: raw.update(model=model))
    features = trained.features()

    # when
    with TestClient(create_app(trained.model_dir)) as started:
        answer = started.post("/predict", content=json.dumps({"records": through_json(features)})).json()
        served_by = started.get("/ready").json()["runtime"]

    # then
    assert served_by == runtime
    assert_answers_like_offline(answer, trained.model_dir, features, runtime)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_nulls_in_nullable_features_are_served_as_the_offline_model_reads_them(
    churn: Trained, runtime: str
) -> None:
    # given held-out rows with nulls in the nullable numeric and categorical features
    features = churn.features().iloc[:6].copy()
    features.loc[[0, 2], "total_charges"] = np.nan
    features.loc[[1, 2], "payment_method"] = np.nan
    records = through_json(features)
    assert records[2]["total_charges"] is None and records[2]["payment_method"] is None

    # when
    with TestClient(create_app(churn.model_dir, runtime=runtime)) as started:  # type: ignore[arg-type]
        answer = started.post("/predict", content=json.dumps({"records": records})).json()
        column_of_nulls = started.post(
            "/predict", json={"records": [records[2], {**records[2], "tenure_months": 3}]}
        ).json()

    # then
    assert_answers_like_offline(answer, churn.model_dir, features, runtime)
    both = pd.concat([features.iloc[[2]], features.iloc[[2]].assign(tenure_months=3)])
    assert_answers_like_offline(column_of_nulls, churn.model_dir, both, runtime)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_regressor_predictions_equal_offline_and_carry_no_probabilities(
    tmp_path_factory: pytest.TempPathFactory, runtime: str
) -> None:
    # given a ridge regression of monthly charges ('churned', numeric with allowed values, is a feature)
    trained = train_artifact(tmp_path_factory.mktemp("regression"), edit=as_regression)
    features = trained.features()

    # when
    with TestClient(create_app(trained.model_dir, runtime=runtime)) as started:  # type: ignore[arg-type]
        answer = started.post("/predict", content=json.dumps({"records": through_json(features)})).json()
        counted = metric(started, "model_predictions_total", label="value")

    # then
    assert_answers_like_offline(answer, trained.model_dir, features, runtime)
    assert answer["probabilities"] is None and answer["labels"] is None
    assert counted == len(features)


# ---------------------------------------------------------------------------------------------
# Bad payloads: 422 or 413 naming the field, never a 500.


def _records(*records: dict[str, Any]) -> bytes:
    return json.dumps({"records": list(records)}).encode()


BAD_PAYLOADS: list[tuple[str, bytes, str]] = [
    (
        "missing field",
        _records({k: v for k, v in RECORD.items() if k != "region"}),
        "records[0].region: field required",
    ),
    (
        "string for a number",
        _records(RECORD, RECORD, RECORD, {**RECORD, "tenure_months": "12"}),
        "records[3].tenure_months: input should be a valid number, got string",
    ),
    (
        "boolean for a number",
        _records({**RECORD, "support_calls": True}),
        "records[0].support_calls: input should be a valid number, got boolean",
    ),
    ("NaN for a number (not JSON)", b'{"records": [{"tenure_months": NaN}]}', "body: invalid JSON"),
    (
        "number for a category",
        _records({**RECORD, "contract": 1}),
        "records[0].contract: input should be a string, got number",
    ),
    (
        "number that is no boolean",
        _records({**RECORD, "has_partner": 2}),
        'records[0].has_partner: input should be a boolean (true/false, 1/0, or the text "true"/"false"',
    ),
    (
        "null where not nullable",
        _records({**RECORD, "region": None}),
        "records[0].region: input should not be null",
    ),
    ("unknown field", _records({**RECORD, "shoe_size": 44}), "records[0].shoe_size: unknown field"),
    ("empty batch", _records(), "records: batch is empty"),
    ("no records key", b'{"rows": []}', "records: field required"),
    ("records not a list", b'{"records": {"a": 1}}', "records: input should be a JSON array"),
    ("record not an object", b'{"records": [1]}', "records[0]: input should be a JSON object"),
    ("body not an object", b"[1, 2]", "body: input should be a JSON object"),
    ("invalid JSON", b'{"records": [', "body: invalid JSON"),
    ("empty body", b"", "body: invalid JSON"),
]


@pytest.mark.parametrize(
    ("body", "expected"), [(b, e) for _, b, e in BAD_PAYLOADS], ids=[n for n, _, _ in BAD_PAYLOADS]
)
def test_bad_payloads_get_422_naming_the_field(client: TestClient, body: bytes, expected: str) -> None:
    # given the server errors so far
    crashes = metric(client, "model_http_errors_total", status="500")

    # when
    answer = client.post("/predict", content=body, headers={"Content-Type": "application/json"})

    # then
    assert answer.status_code == 422, f"expected 422, got {answer.status_code}: {answer.text}"
    detail = answer.json()["detail"]
    assert expected in detail, f"the message should contain {expected!r}, got {detail!r}"
    assert metric(client, "model_http_errors_total", status="500") == crashes, (
        "a bad payload reached the 500 handler"
    )


OUT_OF_RANGE = [
    ("below min", "tenure_months", -1, "records[0].tenure_months: input should be >= 0, got -1"),
    ("above max", "support_calls", 51, "records[0].support_calls: input should be <= 50"),
    ("unknown category", "contract", "weekly", "records[0].contract: input should be one of"),
]


@pytest.mark.parametrize(
    ("feature", "value"), [(f, v) for _, f, v, _ in OUT_OF_RANGE], ids=[n for n, *_ in OUT_OF_RANGE]
)
def test_out_of_range_values_are_served_and_counted_per_feature(
    client: TestClient, feature: str, value: Any
) -> None:
    # given the count so far
    before = metric(client, "model_out_of_range_values_total", feature=feature)

    # when two records carry a value outside the schema's limits, one is inside
    answer = client.post(
        "/predict", json={"records": [{**RECORD, feature: value}, RECORD, {**RECORD, feature: value}]}
    )

    # then all three are answered, and the two are counted for that feature
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 3
    assert metric(client, "model_out_of_range_values_total", feature=feature) == before + 2


@pytest.mark.parametrize(
    ("feature", "value", "expected"),
    [(f, v, e) for _, f, v, e in OUT_OF_RANGE],
    ids=[n for n, *_ in OUT_OF_RANGE],
)
def test_out_of_range_values_get_422_when_the_config_says_reject(
    tmp_path_factory: pytest.TempPathFactory, feature: str, value: Any, expected: str
) -> None:
    # given a model trained with serving.out_of_range = "reject"
    root = tmp_path_factory.mktemp("reject")
    trained = train_artifact(root, edit=lambda raw: raw.update(serving={"out_of_range": "reject"}))

    # when
    with TestClient(create_app(trained.model_dir)) as started:
        answer = started.post("/predict", json={"records": [{**RECORD, feature: value}]})
        policy = started.get("/metadata").json()["out_of_range"]

    # then
    assert policy == "reject"
    assert answer.status_code == 422 and expected in answer.json()["detail"], answer.text


def test_every_error_of_a_record_is_listed(client: TestClient) -> None:
    # when a record has three problems
    answer = client.post(
        "/predict", json={"records": [{**RECORD, "tenure_months": "x", "region": None, "y": 1}]}
    )

    # then
    fields = {error["field"] for error in answer.json()["errors"]}
    assert fields == {"records[0].tenure_months", "records[0].region", "records[0].y"}, fields


def test_oversize_batch_and_body_get_413(churn: Trained, caplog: pytest.LogCaptureFixture) -> None:
    # given an app with small limits
    app = create_app(churn.model_dir, max_batch=5, max_body_bytes=2000)
    big_body = json.dumps({"records": [{**RECORD, "region": "x" * 3000}]}).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is counted while reading
        yield b'{"records": ['
        for _ in range(40):
            yield json.dumps(RECORD).encode() + b","
        yield json.dumps(RECORD).encode() + b"]}"

    # when
    with caplog.at_level(logging.ERROR), TestClient(app) as started:
        at_limit = started.post("/predict", json={"records": [RECORD] * 5})
        batch = started.post("/predict", json={"records": [RECORD] * 6})
        declared = started.post("/predict", content=big_body, headers={"Content-Type": "application/json"})
        streamed = started.post("/predict", content=chunks(), headers={"Content-Type": "application/json"})
        crashes = metric(started, "model_http_errors_total", status="500")

    # then
    assert at_limit.status_code == 200, at_limit.text
    assert (
        batch.status_code == 413
        and batch.json()["detail"] == "records: batch of 6 records exceeds the limit of 5"
    )
    assert declared.status_code == 413, declared.text
    assert declared.json()["detail"].startswith(
        f"body: {len(big_body)} bytes exceeds the limit of 2000 bytes"
    )
    assert streamed.status_code == 413, (
        f"a body without Content-Length was not measured: {streamed.status_code}"
    )
    assert streamed.json()["detail"].startswith("body: more than 2000 bytes exceeds the limit")
    assert crashes == 0 and not caplog.records, f"unexpected errors logged: {caplog.records}"


def test_limits_default_to_the_environment(churn: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    # given
    monkeypatch.setenv("MODEL_MAX_BATCH", "2")
    monkeypatch.setenv("MODEL_MAX_BODY_BYTES", "5000")

    # when
    with TestClient(create_app(churn.model_dir)) as started:
        limits = started.get("/metadata").json()
        answer = started.post("/predict", json={"records": [RECORD] * 3})

    # then
    assert (limits["max_batch"], limits["max_body_bytes"]) == (2, 5000)
    assert answer.status_code == 413


@pytest.mark.parametrize(("value", "message"), [("lots", "is not a whole number"), ("0", "must be >= 1")])
def test_a_bad_limit_is_refused_when_the_app_is_made(
    churn: Trained, monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    # given
    monkeypatch.setenv("MODEL_MAX_BATCH", value)

    # when / then
    with pytest.raises(ValueError, match=message):
        create_app(churn.model_dir)


# ---------------------------------------------------------------------------------------------
# Startup refuses bad artefacts; the unexpected becomes a short, logged 500.


def test_a_tampered_model_file_makes_startup_fail(churn: Trained, tmp_path: Path) -> None:
    # given a copy whose model file was changed after saving
    model_dir = copy_model(churn, tmp_path / "model")
    with (model_dir / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")
    app = create_app(model_dir)

    # when / then
    with pytest.raises(ArtifactError, match="does not match metadata"), TestClient(app):
        pass
    assert app.state.model is None and "refusing a tampered" in app.state.load_error


def test_labels_that_differ_from_the_model_classes_make_startup_fail(churn: Trained, tmp_path: Path) -> None:
    # given metadata whose labels were edited (metadata.json is not covered by the model hash)
    model_dir = copy_model(churn, tmp_path / "model")
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["labels"] = ["stay", "leave"]
    (model_dir / "metadata.json").write_text(json.dumps(metadata))

    # when / then
    with (
        pytest.raises(ArtifactError, match="differ from the metadata labels"),
        TestClient(create_app(model_dir)),
    ):
        pass


class ExplodingModel:
    """A stand-in estimator that fails inside predict, as a broken model would."""

    def predict(self, X: Any) -> Any:
        """Fail with an internal message that must not reach the client."""
        raise RuntimeError("secret internal detail")


def test_an_unexpected_error_becomes_a_short_logged_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given an artefact whose estimator fails at predict time
    feature = Feature("x", "numeric", None, None, None, False)
    metadata = model_metadata(
        task="regression", target="y", labels=None, positive_label=None, features=(feature,)
    )
    save_artifact(tmp_path / "model", ExplodingModel(), metadata)

    # when
    with (
        caplog.at_level(logging.ERROR, logger="model.app"),
        TestClient(create_app(tmp_path / "model")) as started,
    ):
        answer = started.post("/predict", json={"records": [{"x": 1.0}]})
        crashes = metric(started, "model_http_errors_total", endpoint="/predict", status="500")

    # then
    assert answer.status_code == 500 and answer.json() == {"detail": "internal server error"}
    assert "secret" not in answer.text, "internal details leaked to the client"
    assert crashes == 1
    assert any("unhandled error" in r.getMessage() and r.exc_info for r in caplog.records), (
        "the crash was not logged"
    )

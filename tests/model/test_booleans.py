"""Boolean features served as the team's table spells them: true/false, 1/0 and the words training reads.

A logistic regression is trained by the real CLI (``init``, then ``train``) on the cancer table
with its 0/1 ``smoker`` flag and a yes/no ``Records`` flag, both typed boolean by ``init``. A
record copied from that table is served as its true/false twin is, by ONNX Runtime and by
scikit-learn, and as the offline model reads the table; any other value for a boolean is a 422
naming the field and the spellings; the OpenAPI document says what is accepted.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from model.app import create_app
from model.artifact import load_artifact, read_metadata
from pipeline.cli import main
from pipeline.core.evaluation import feature_rows
from tests.conftest import dump_toml, realistic_cancer

FLAGS = ("smoker", "Records")  # 0/1 and yes/no in the table
TRUE_SPELLINGS: list[Any] = [True, 1, 1.0, "1", "yes", "YES", " Yes ", "y", "Y", "true", "True", "t", "T"]
FALSE_SPELLINGS: list[Any] = [False, 0, 0.0, "0", "no", "NO", " No ", "n", "N", "false", "FALSE", "f", "F"]


def flagged_table() -> pd.DataFrame:
    """The cancer table as a clinic exports it, with a yes/no ``Records`` flag that leans malignant."""
    frame = realistic_cancer()
    rng = np.random.default_rng(7)
    share = np.where(frame["diagnosis"] == "malignant", 0.6, 0.2)
    frame["Records"] = np.where(rng.random(len(frame)) < share, "yes", "no")
    return frame


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``init`` a config for the flagged table, ``train`` on every row; return the table and the model dir."""
    root = tmp_path_factory.mktemp("flags")
    data, config = root / "table.csv", root / "model.toml"
    flagged_table().to_csv(data, index=False)
    assert main(["init", str(data), "--target", "diagnosis", "--config", str(config)]) == 0
    raw = tomllib.loads(config.read_text())
    raw["model"] = {"kind": "logistic_regression", "params": {"max_iter": 5000}}
    config.write_text(dump_toml(raw))
    assert main(["train", "--config", str(config), "--out", str(root / "out"), "--full"]) == 0
    return data, root / "out" / "model"


@pytest.fixture(scope="module")
def client(project: tuple[Path, Path]) -> Iterator[TestClient]:
    """A started app serving the flagged model, its API docs on."""
    with TestClient(create_app(project[1], docs=True)) as started:
        yield started


def table_records(data: Path, rows: int) -> list[dict[str, Any]]:
    """Return the table's first complete ``rows`` as read from its file: JSON records, no id or target."""
    frame = pd.read_csv(data).dropna().head(rows).drop(columns=["patient_id", "diagnosis"])
    return list(json.loads(frame.to_json(orient="records")))


def spelled(records: list[dict[str, Any]], spellings: dict[bool, list[Any]]) -> list[dict[str, Any]]:
    """Return ``records`` with each flag spelled in turn by the next of ``spellings`` for its meaning."""
    out = []
    for i, record in enumerate(records):
        copy = dict(record)
        for j, name in enumerate(FLAGS):
            meaning = copy[name] in (1, "yes")
            words = spellings[meaning]
            copy[name] = words[(i + j) % len(words)]
        out.append(copy)
    return out


def test_the_model_under_test_has_a_0_1_flag_and_a_yes_no_flag(project: tuple[Path, Path]) -> None:
    data, model_dir = project
    kinds = {f.name: f.type for f in read_metadata(model_dir).features}
    assert kinds["smoker"] == kinds["Records"] == "boolean"
    records = table_records(data, 40)
    assert {r["smoker"] for r in records} == {0, 1} and {r["Records"] for r in records} == {"yes", "no"}


@pytest.mark.parametrize("runtime", ["onnx", "sklearn"])
def test_a_record_copied_from_the_table_is_served_as_its_true_false_twin_and_as_training_read_it(
    project: tuple[Path, Path], runtime: str
) -> None:
    # given rows copied from the training table ('smoker': 0/1, 'Records': "yes"/"no"), the same rows
    # with JSON true/false, and with every spelling training reads, mixed in one batch
    data, model_dir = project
    records = table_records(data, 40)
    as_booleans = spelled(records, {True: [True], False: [False]})
    mixed = spelled(records, {True: TRUE_SPELLINGS, False: FALSE_SPELLINGS})

    # when each batch is served, and the table's rows one by one
    with TestClient(create_app(model_dir, runtime=runtime)) as started:  # type: ignore[arg-type]
        served_by = started.get("/ready").json()["runtime"]
        answers = [
            started.post("/predict", json={"records": batch}) for batch in (records, as_booleans, mixed)
        ]
        singles = [started.post("/predict", json={"records": [r]}).json() for r in records[:5]]
        flipped = started.post(
            "/predict", json={"records": [{**r, "smoker": 1 - r["smoker"]} for r in records]}
        ).json()

    # then every batch is accepted and answered identically
    assert served_by == runtime
    for answer in answers:
        assert answer.status_code == 200, answer.text
    table, twin, spellings = (a.json() for a in answers)
    assert table == twin == spellings
    for i, single in enumerate(singles):
        assert single["probabilities"] == [table["probabilities"][i]]
    # and the flag reaches the model (flipping it changes the answer)
    assert flipped["probabilities"] != table["probabilities"]
    # and the answer is the offline model's on the same rows read as training reads the table
    estimator, metadata = load_artifact(model_dir)
    rows = feature_rows(pd.read_csv(data).dropna().head(40), metadata, data)
    offline = estimator.predict_proba(rows)
    served = np.array([[p[str(label)] for label in table["labels"]] for p in table["probabilities"]])
    assert table["predictions"] == estimator.predict(rows).tolist()
    if runtime == "sklearn":
        assert served.tolist() == offline.tolist()
    else:
        assert metadata.compiled is not None and metadata.compiled.parity is not None
        assert float(np.max(np.abs(served - offline))) <= metadata.compiled.parity.limit


SPELLINGS_NAMED = '"yes"/"no"'  # the 422 lists the accepted words


@pytest.mark.parametrize("value", ["maybe", 2, "", -1, 0.5, "1.0", "yes please", [], {"yes": True}], ids=repr)
@pytest.mark.parametrize("name", FLAGS)
def test_any_other_value_for_a_boolean_gets_422_naming_the_field_and_the_spellings(
    client: TestClient, project: tuple[Path, Path], name: str, value: Any
) -> None:
    # given a record from the table with one flag spelled as training never read it
    record = {**table_records(project[0], 1)[0], name: value}

    # when
    answer = client.post("/predict", json={"records": [record]})

    # then the one error names that field and what a boolean may be
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert [e["field"] for e in errors] == [f"records[0].{name}"], errors
    message = errors[0]["message"]
    for spelling in ("true/false", "1/0", SPELLINGS_NAMED, '"y"/"n"', '"t"/"f"', "any case"):
        assert spelling in message, message
    assert f"got {json.dumps(value)}" in message or "got array" in message or "got object" in message


def test_the_openapi_document_describes_the_accepted_spellings(client: TestClient) -> None:
    # when
    document = client.get("/openapi.json").json()

    # then each flag's schema accepts exactly what the server accepts, and says how values map
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    record = body["properties"]["records"]["items"]
    for name in FLAGS:
        schema = record["properties"][name]
        description = schema["description"]
        assert "true" in description and '"yes"' in description and "1" in description, description
        for value in TRUE_SPELLINGS + FALSE_SPELLINGS:
            jsonschema.validate(value, schema)
        for value in ["maybe", 2, "", -1, 0.5, "1.0", "yes please", []]:
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(value, schema)
        jsonschema.validate(None, schema)  # init lets every column hold nulls: the flags are nullable

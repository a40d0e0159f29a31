"""The model API against its own OpenAPI schema, with schemathesis: generated requests, no server error.

The schema's ``/predict`` body comes from the model's feature schema (``model/app.py``), so the
generated records are shaped like real ones, and the negative cases almost like them. Every
operation gets a bounded number of examples, valid and invalid; each answer is checked by
schemathesis' default checks (no 5xx, documented status codes and content types, valid data
accepted, invalid data refused). The app runs in-process with its model loaded, and with its
API docs on (they are off unless asked, so ``/openapi.json`` exists only here).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from model.app import create_app
from tests.conftest import train_artifact

EXAMPLES = 60  # per operation and generation mode


@pytest.mark.slow  # about 7 s for both modes: in the full suite and CI, not the quick one
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_operation_answers_generated_requests_as_documented(
    tmp_path_factory: pytest.TempPathFactory, mode: GenerationMode
) -> None:
    # given the churn model's API with its docs on, started, as schemathesis loads it
    app = create_app(train_artifact(tmp_path_factory.mktemp("api")).model_dir, docs=True)
    with TestClient(app):
        api = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in api.get_all_operations()]
        assert {op.path for op in operations} >= {"/predict", "/metadata", "/ready", "/health", "/metrics"}

        # when each operation gets generated requests (invalid ones only where there is an input to
        # spoil: the /predict body), then every answer passes the checks
        for operation in operations:
            if mode is GenerationMode.NEGATIVE and operation.path != "/predict":
                continue

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
            )
            def answers_as_documented(case: Any) -> None:
                case.call_and_validate()

            answers_as_documented()

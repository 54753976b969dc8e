"""Schemathesis over every endpoint of the ASGI app: generated requests, valid by the
schema and not, never get a server error, and every response matches the OpenAPI
document (status code, content type, body schema).

The app runs with lowered limits (a server may lower them), so generated runs stay small;
requests beyond them are 422s, which must conform to the schema too. Operations are driven
through Hypothesis directly (schemathesis' pytest plugin does not run on pytest 9).
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gatescope.api import create_app
from gatescope.settings import Settings
from tests.helpers.api import TEST_HOSTS

pytestmark = pytest.mark.slow  # property-based fuzzing of every endpoint

OPERATIONS = ["GET /api/v1/health", "POST /api/v1/run", "POST /api/v1/jacobian",
              "POST /api/v1/models", "GET /api/v1/models", "GET /api/v1/models/{model_id}"]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("fuzz"), compute_processes=1,
                              max_steps=32, max_hidden=16, max_layers=2, max_work=512,
                              allowed_hosts=TEST_HOSTS))
    with TestClient(app):  # runs the lifespan: the worker pool is up
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_the_schema_lists_every_operation(api_schema):
    labels = {r.ok().label for r in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_every_endpoint_conforms(api_schema, label, mode):
    operation = api_schema.find_operation_by_label(label)
    if mode is GenerationMode.NEGATIVE and label.startswith("GET"):
        pytest.skip("nothing to negate: no parameters, or a free-form path segment")

    @given(data=st.data())
    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(data):
        case = data.draw(operation.as_strategy(generation_mode=mode))
        response = case.call()
        assert response.status_code < 500, (response.status_code, response.text[:500])
        case.validate_response(response, checks=(status_code_conformance,
                                                  content_type_conformance,
                                                  response_schema_conformance))

    check()


def _valid_runs():
    from tests.helpers.requests import exploding_relu_request
    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        for encoding in ("json", "typed"):
            req = {"cell": cell, "hidden_size": 3, "num_layers": 2, "input": {"text": "abcab"},
                   "loss": {"type": "mse", "targets": [[0.1, 0.2, 0.3]] * 5}}
            yield "POST /api/v1/run", req, {"encoding": encoding}
            yield "POST /api/v1/jacobian", {**req, "step": 2, "layer": 1}, {"encoding": encoding}
    yield "POST /api/v1/run", exploding_relu_request(T=30), {"encoding": "typed"}
    from tests.helpers.api import readout_model
    tensors = {k: v.tolist() for k, v in readout_model(L=1).items()}
    for encoding in ("json", "typed"):  # a readout: outputs and its gradients
        req = {"cell": "gru", "input": {"text": "abcab", "vocab": "abcd"},
               "weights": {"tensors": tensors},
               "loss": {"type": "cross_entropy", "targets": [0, None, 3, 1, None]}}
        yield "POST /api/v1/run", req, {"encoding": encoding}


def test_successful_responses_conform_to_the_schema(api_schema):
    """Fuzzing mostly meets 422s; every kind of 200 is checked here on purpose."""
    from tests.helpers.api import safetensors_bytes, state_dict
    checks = (status_code_conformance, content_type_conformance, response_schema_conformance)
    seen = 0
    for label, body, query in _valid_runs():
        case = api_schema.find_operation_by_label(label).Case(body=body, query=query)
        response = case.call()
        assert response.status_code == 200, response.text[:300]
        case.validate_response(response, checks=checks)
        seen += 1
    from tests.helpers.api import metadata, readout_model
    for file in (safetensors_bytes(state_dict("gru", D=2, H=2, L=1)),
                 safetensors_bytes(readout_model(L=1), metadata())):  # labels, task, card
        upload = api_schema.find_operation_by_label("POST /api/v1/models").Case(
            body={"file": file} if b"labels" in file else {"file": file, "vocab": "ab"},
            media_type="multipart/form-data")
        response = upload.call()
        assert response.status_code == 201, response.text
        upload.validate_response(response, checks=checks)
        model_id = response.json()["model_id"]
        for label, path in (("GET /api/v1/models", {}),
                            ("GET /api/v1/models/{model_id}", {"model_id": model_id})):
            case = api_schema.find_operation_by_label(label).Case(path_parameters=path)
            response = case.call()
            assert response.status_code == 200
            case.validate_response(response, checks=checks)
    assert seen == 19

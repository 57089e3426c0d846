"""A fuzz of the OpenAPI schema FastAPI writes (schemathesis), against the real server on 127.0.0.1:
no 5xx, and the server still healthy after. Bounded: at most 25 cases per operation, 200 in all.
It found a top_p of 5e-324 (0 in float32) crashing the model loop: the test in test_sample.py."""

import httpx
import pytest
from hypothesis import HealthCheck, settings

from charrnn.serve import create_app
from test_serve import start_server, stop_server

schemathesis = pytest.importorskip("schemathesis")
# The fuzzing phase alone (the coverage phase's hundreds of fixed cases would pass the bound); the
# schema needs no model.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"enabled": False}, "examples": {"enabled": False}, "stateful": {"enabled": False}}}
)
schema = schemathesis.openapi.from_dict(create_app().openapi(), config=CONFIG)
CASES: list[str] = []
PER_OPERATION = 25


@pytest.fixture(scope="module")
def fuzz_server(tiny_run):
    server = start_server(tiny_run, "--max-length", 200, "--max-batch", 4, "--max-queue", 4)
    yield server
    stop_server(server)


@schema.parametrize()
@settings(max_examples=PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_the_schema_allows_is_a_server_error(case, fuzz_server):
    CASES.append(case.operation.label)
    response = case.call(base_url=fuzz_server.url, timeout=30)
    assert response.status_code < 500, (case.operation.label, case.body, response.text[:300])


def test_the_fuzz_ran_and_the_server_is_still_healthy(fuzz_server):
    assert 0 < len(CASES) <= 200, len(CASES)
    print(f"\nschemathesis: {len(CASES)} cases over {len(set(CASES))} operations")
    assert httpx.get(f"{fuzz_server.url}/health", timeout=10).status_code == 200

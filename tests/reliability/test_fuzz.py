"""Bad input: schemathesis generates requests from eventrelay's own OpenAPI document (Tracking API
and admin API) against a running server: no 5xx, no crash, and the server keeps serving.

CI runs a bounded number of cases per operation; ``--soak`` raises it (>= 1,000 cases in all).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import soak
from tests.reliability.api import get
from tests.reliability.conftest import ADMIN_TOKEN, WRITE_KEY, Server, write_config
from tests.support.process import free_port
from tests.support.serve import serve_env

CI_CASES = 10
SOAK_CASES = 300


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz")
    port, aws_port = free_port(), free_port()
    srv = Server(tmp, write_config(tmp, port, aws_port), port, Path(tmp) / "functions" / "sink.txt", serve_env())
    srv.start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.timeout(1200)
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=SOAK_CASES if soak() else CI_CASES)
def test_no_server_error(case: schemathesis.Case, fuzz_server: Server, request: pytest.FixtureRequest) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if case.path.startswith("/v1/"):
        import base64

        headers = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
    response = case.call(base_url=fuzz_server.url, headers=headers)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    assert get(fuzz_server.url, "/healthz", token=None)[0] == 200

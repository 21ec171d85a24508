"""Bad input to the Config API: whatever JSON arrives, the answer is a 4xx or a success, never a 5xx,
and a refused change leaves the configuration as it was."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventrelay.runtime import Runtime

from .conftest import Client, lambda_destination

FUZZ_CASES = 60  # per operation set; bounded for CI on a shared 2-core machine

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
setting_keys = st.sampled_from(
    [
        "lambda",
        "region",
        "role_address",
        "external_id",
        "client_context",
        "log_type",
        "invocation_type",
        "functions",
        "endpoint_url",
        "role_session_name",
        "batch",
        "name",
        "sources",
        "delivery",
    ]
)
settings_like = st.dictionaries(setting_keys, json_values, max_size=5)
bodies = (
    json_values
    | st.builds(lambda s: {"settings": s}, settings_like)
    | st.builds(lambda s: lambda_destination() | {"settings": lambda_destination()["settings"] | s}, settings_like)
)
targets = st.sampled_from(
    [
        ("POST", "/api/v1/config/sources"),
        ("PATCH", "/api/v1/config/sources/ios"),
        ("POST", "/api/v1/config/destinations"),
        ("PUT", "/api/v1/config/destinations/api-dest"),
        ("PATCH", "/api/v1/config/destinations/api-dest"),
        ("PATCH", "/api/v1/config/destinations/file-dest"),
    ]
)


@settings(max_examples=FUZZ_CASES, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=targets, body=bodies)
async def test_no_server_error_and_nothing_half_applied(
    api: tuple[Runtime, Client], target: tuple[str, str], body: Any
) -> None:
    runtime, client = api
    if not runtime.destination_config("api-dest"):
        assert (await client.post("/api/v1/config/destinations", lambda_destination())).status == 201
        await client.post("/api/v1/config/sources", {"name": "ios"})
    before = runtime.config
    method, path = target
    answer = await client.request(method, path, body)
    assert answer.status < 500, (method, path, body, answer.body)
    if answer.status >= 400:
        assert runtime.config is before
        assert "error" in answer.json()

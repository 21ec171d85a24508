"""/metrics, /openapi.json and the page shell, served for real."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from openapi_spec_validator import validate

from eventrelay.core import telemetry
from eventrelay.core.records import Accepted
from tests.admin.server import ADMIN_TOKEN, WRITE_KEY, Served, auth, make_config, serve


async def test_metrics_are_open_prometheus_text_with_queue_depth(served: Served, http: aiohttp.ClientSession) -> None:
    await served.dead_job("dead-one")  # dead jobs are not waiting work
    await served.runtime.queue.append(
        [Accepted(f"w{i}", "web", "track", 0.0, b"{}", ("lambda-prod",)) for i in range(3)]
    )
    telemetry.DestinationMeter("lambda-prod").attempt("execution_error", 0.02)
    async with http.get(served.url + "/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await r.text()
    assert 'eventrelay_queue_depth{destination="lambda-prod"} 3.0' in text
    assert 'eventrelay_queue_depth{destination="lambda-other"} 0.0' in text
    assert 'eventrelay_delivery_attempts_total{category="execution_error",destination="lambda-prod"}' in text
    assert "eventrelay_attempt_duration_seconds_bucket" in text
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert line.startswith("eventrelay_"), line


async def test_metrics_can_require_the_token(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with serve(make_config(tmp_path / "data", metrics_require_token=True)) as served:
        async with http.get(served.url + "/metrics") as r:
            assert r.status == 401
        async with http.get(served.url + "/metrics", headers=auth()) as r:
            assert r.status == 200


async def test_openapi_document_is_valid_and_covers_both_apis(served: Served, http: aiohttp.ClientSession) -> None:
    async with http.get(served.url + "/openapi.json") as r:
        assert r.status == 200
        doc = await r.json()
    validate(doc)
    for path in (
        "/v1/track",
        "/v1/batch",
        "/v1/t",
        "/api/v1/deliveries",
        "/api/v1/destinations/{name}/stats",
        "/api/v1/destinations/{name}/redrive",
    ):
        assert path in doc["paths"], path
    track = doc["paths"]["/v1/track"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert track == {"$ref": "#/components/schemas/Track"}
    assert "event" in doc["components"]["schemas"]["Track"]["required"]
    assert doc["paths"]["/api/v1/deliveries"]["get"]["security"] == [{"adminToken": []}]


async def test_the_page_shell_is_served_without_secrets(served: Served, http: aiohttp.ClientSession) -> None:
    for path in ("/", "/admin"):
        async with http.get(served.url + path) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/html")
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            html = await r.text()
        assert "Event Delivery" in html
        assert ADMIN_TOKEN not in html and WRITE_KEY not in html
    for script in ("app.js", "chart.js", "settings.js", "settings_filters.js"):
        async with http.get(served.url + "/admin/static/" + script) as r:
            assert r.status == 200
            js = await r.text()
        assert "innerHTML" not in js and "insertAdjacentHTML" not in js  # every API value is inserted as text
        assert ADMIN_TOKEN not in js
        assert f'src="/admin/static/{script}"' in html


async def test_the_favicon_is_served(served: Served, http: aiohttp.ClientSession) -> None:
    async with http.get(served.url + "/favicon.ico") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("image/svg+xml")
        assert (await r.text()).startswith("<svg")

"""End to end: events over the Tracking API -> destination filters -> a real handler in the local
Lambda runtime; the filtered ones are recorded as filtered on the deliveries API, the stats API and
/metrics, and the handler sees only what the filters let through, without the dropped properties."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import BasicAuth, ClientSession

from eventrelay.config.model import Config
from eventrelay.runtime import Runtime
from tests.support.inprocess import serving
from tests.support.recording import ROLE, WORKSPACE, received, recording_functions

WRITE_KEY = "wk_filters_e2e_0123456789abcdef"
ADMIN = {"Authorization": "Bearer adm_filters_e2e_0123456789abcdef"}
DEADLINE = 60.0  # seconds for everything to settle on a loaded 2-core machine


async def test_filtered_events_are_recorded_as_filtered_and_the_rest_arrive_trimmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen.jsonl"
    config = Config.model_validate(
        {
            "workspace": {"id": WORKSPACE},
            "storage": {"backend": "sqlite", "path": str(tmp_path / "data")},
            "admin": {"token": ADMIN["Authorization"].removeprefix("Bearer ")},
            "sources": [{"name": "web", "write_key": WRITE_KEY}],
            "destinations": [
                {
                    "name": "shop",
                    "settings": {"lambda": "shop-fn:live", "region": "us-west-2", "role_address": ROLE},
                    "only": 'type = "track" or type = "identify"',
                    "filters": [
                        {"if": 'event = "Debug Ping"', "drop": True},
                        {"drop_properties": ["context.ip", "traits.address.street"]},
                    ],
                }
            ],
        }
    )
    batch = [
        {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "keep-1",
         "context": {"ip": "10.1.2.3"}, "properties": {"total": 5}},
        {"type": "track", "event": "Debug Ping", "userId": "u1", "messageId": "drop-1"},
        {"type": "page", "name": "Home", "userId": "u1", "messageId": "page-1"},
        {"type": "identify", "userId": "u1", "messageId": "keep-2",
         "traits": {"address": {"street": "1 Main St", "city": "Oslo"}}},
    ]  # fmt: skip
    async with recording_functions(tmp_path, monkeypatch, seen, "shop-fn"):
        runtime = Runtime(config)
        await runtime.start()
        try:
            async with serving(runtime) as url, ClientSession() as http:
                async with http.post(f"{url}/v1/batch", json={"batch": batch}, auth=BasicAuth(WRITE_KEY, "")) as r:
                    assert r.status == 200, await r.text()
                rows = await _settled(http, url, 4)
                metrics = await (await http.get(f"{url}/metrics")).text()
                async with http.get(f"{url}/api/v1/destinations/shop/stats", headers=ADMIN) as r:
                    stats = await r.json()
                async with http.get(f"{url}/api/v1/deliveries?status=filtered", headers=ADMIN) as r:
                    filtered = (await r.json())["deliveries"]
        finally:
            await runtime.stop()

    assert {r["message_id"]: r["status"] for r in rows} == {
        "keep-1": "delivered", "drop-1": "filtered", "page-1": "filtered", "keep-2": "delivered",
    }  # fmt: skip
    by_id = {r["message_id"]: r for r in filtered}
    assert by_id["drop-1"]["filter"] == 'filters[0]: drop if event = "Debug Ping"'
    assert by_id["page-1"]["filter"] == 'only: type = "track" or type = "identify"'
    assert all(r["category"] == "filtered" and r["error"] is None for r in filtered)
    assert (stats["counts"]["filtered"], stats["counts"]["delivered"], stats["counts"]["failed"]) == (2, 2, 0)
    assert stats["errors"] == []
    assert 'eventrelay_events_filtered_total{destination="shop"} 2.0' in metrics
    assert 'eventrelay_events_delivered_total{destination="shop"} 2.0' in metrics
    events = {e["messageId"]: e for e in received(seen)}
    assert set(events) == {"keep-1", "keep-2"}
    assert "ip" not in events["keep-1"]["context"] and events["keep-1"]["properties"] == {"total": 5}
    assert events["keep-2"]["traits"] == {"address": {"city": "Oslo"}}


async def _settled(http: ClientSession, url: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        async with http.get(f"{url}/api/v1/deliveries?destination=shop", headers=ADMIN) as r:
            rows = (await r.json())["deliveries"]
        if len(rows) == count and all(row["status"] in ("delivered", "filtered") for row in rows):
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"deliveries did not settle: {rows}")

"""End to end, on SQLite and on JetStream (a real nats-server): events accepted while no destination
wanted them, a destination created afterwards through the Config API, then a replay (HTTP API)
into it: each archived event reaches the real handler exactly once, sent in receipt order, each
attempt marked with the replay id; the dry run counts what a direct count finds, and says why a
window past the retention, or past what ``max_bytes`` kept, is shorter."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import BasicAuth, ClientSession

from eventrelay.config.model import Config
from eventrelay.runtime import Runtime
from tests.jetstream.natsserver import shared_server_url
from tests.support.inprocess import serving
from tests.support.recording import ROLE, WORKSPACE, received, recording_functions

WRITE_KEY = "wk_replay_e2e_0123456789abcdef"
IOS_KEY = "wk_replay_e2e_ios_0123456789abcdef"
TOKEN = "adm_replay_e2e_0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
DEADLINE = 240.0  # seconds for 10,000 events through the local runtime on a loaded 2-core machine
BATCH = 100  # events per /v1/batch request
JETSTREAM_ARCHIVE = "100MB"  # JetStream reserves a stream's max_bytes of its storage: the tests share one server
_streams = itertools.count(1)


@dataclass
class Stack:
    runtime: Runtime
    url: str
    http: ClientSession
    seen: Path

    async def send(self, events: list[dict[str, Any]], key: str = WRITE_KEY) -> None:
        for i in range(0, len(events), BATCH):
            async with self.http.post(
                f"{self.url}/v1/batch", json={"batch": events[i : i + BATCH]}, auth=BasicAuth(key, "")
            ) as r:
                assert r.status == 200, await r.text()

    async def api(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        async with self.http.request(method, f"{self.url}{path}", json=body, headers=ADMIN) as r:
            assert r.status == status, (r.status, await r.text())
            return await r.json()

    async def replayed(self, destination: str, replay_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            replay = await self.api("GET", f"/api/v1/destinations/{destination}/replays/{replay_id}")
            if replay["state"] != "running":
                return dict(replay)
            await asyncio.sleep(0.2)
        raise AssertionError(f"replay not done in {DEADLINE}s: {replay}")


@pytest.fixture(params=["sqlite", "jetstream"])
async def storage(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"backend": "sqlite"}
    url = await shared_server_url(request)
    return {"backend": "jetstream", "servers": [url], "stream": f"REPLAYE2E{next(_streams)}"}


def config(data: Path, storage: dict[str, Any] | None = None, **archive: Any) -> Config:
    storage = storage or {"backend": "sqlite"}
    if storage["backend"] == "jetstream":
        archive = {"max_bytes": JETSTREAM_ARCHIVE, **archive}
    return Config.model_validate(
        {
            "workspace": {"id": WORKSPACE},
            "storage": {**storage, "path": str(data)},
            "admin": {"token": TOKEN},
            "sources": [{"name": "web", "write_key": WRITE_KEY}, {"name": "ios", "write_key": IOS_KEY}],
            "archive": archive,
        }
    )


def destination(name: str, function: str) -> dict[str, Any]:
    return {
        "name": name,
        "settings": {"lambda": f"{function}:live", "region": "us-west-2", "role_address": ROLE},
        "delivery": {"concurrency": 16},
    }


@asynccontextmanager
async def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any], **archive: Any
) -> AsyncIterator[Stack]:
    seen = tmp_path / "seen.jsonl"
    async with recording_functions(tmp_path, monkeypatch, seen, "late-fn", "live-fn"):
        runtime = Runtime(config(tmp_path / "data", storage, **archive))
        await runtime.start()
        try:
            async with serving(runtime) as url, ClientSession() as http:
                yield Stack(runtime, url, http, seen)
        finally:
            await runtime.stop()


def events(count: int) -> list[dict[str, Any]]:
    return [
        {"type": "track", "event": "Order Completed" if i % 3 else "Signed Up", "userId": f"u{i % 50}",
         "messageId": f"evt-{i:05d}", "properties": {"n": i, "plan": "pro" if i % 4 == 0 else "free"}}
        for i in range(count)
    ]  # fmt: skip


@pytest.mark.timeout(600)
async def test_ten_thousand_archived_events_reach_a_destination_created_afterwards_once_each_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any]
) -> None:
    sent = events(10_000)
    async with stack(tmp_path, monkeypatch, storage) as s:
        await s.send(sent)  # no destination yet: accepted and archived, delivered nowhere
        archive = await s.api("GET", "/api/v1/archive")
        assert archive["events"] == 10_000 and archive["bytes"] > 10_000 * 100
        await s.api("POST", "/api/v1/config/destinations", destination("late", "late-fn"), status=201)

        where = 'properties.plan = "pro" and event = "Order Completed"'
        dry = await s.api("POST", "/api/v1/destinations/late/replays", {"since": "1h", "where": where, "dry_run": True})
        direct = sum(1 for e in sent if e["properties"]["plan"] == "pro" and e["event"] == "Order Completed")
        assert dry["dry_run"]["matched"] == direct and dry["dry_run"]["events_in_window"] == 10_000
        assert dry["dry_run"]["note"] is None and received(s.seen) == []  # a dry run sends nothing

        started = await s.api("POST", "/api/v1/destinations/late/replays", {"since": "1h"}, status=202)
        replay_id = started["replay"]["id"]
        assert replay_id.startswith("rp_") and started["replay"]["max_in_flight"] == 8  # half of 16
        done = await s.replayed("late", replay_id)
        listed = await s.api("GET", "/api/v1/destinations/late/replays")
        attempts = [
            a for m in ("evt-00000", "evt-05000") for a in (await s.api("GET", f"/api/v1/deliveries/{m}"))["attempts"]
        ]
        records = [await s.runtime.log.attempts(e["messageId"], "late") for e in sent[::97]]

    assert (done["state"], done["enqueued"], done["skipped"], done["progress"]) == ("done", 10_000, 0, 1.0)
    assert done["counts"]["delivered"] == 10_000 and done["waiting"] == 0
    assert [r["id"] for r in listed["replays"]] == [replay_id]
    got = [e["messageId"] for e in received(s.seen)]
    assert Counter(got) == Counter(e["messageId"] for e in sent)  # each exactly once
    assert {a["replay"] for a in attempts} == {replay_id}
    kept = [a["you_sent"] for a in attempts if a["you_sent"] is not None]  # "You sent" is the original event
    assert all(k["messageId"] in ("evt-00000", "evt-05000") and "properties" in k for k in kept)
    starts = [(r[0].started_at, r[0].message_id) for r in records]
    assert all(len(r) == 1 and r[0].replay == replay_id for r in records)
    assert [m for _, m in sorted(starts)] == [m for _, m in starts]  # sent in receipt order


async def test_a_window_past_the_retention_is_shorter_and_the_dry_run_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any]
) -> None:
    async with stack(tmp_path, monkeypatch, storage, retention="2s") as s:
        await s.send(events(3))
        await asyncio.sleep(3.2)  # past the retention; the next append's commit prunes them
        await s.send([{**events(4)[3], "messageId": "fresh"}])
        await s.api("POST", "/api/v1/config/destinations", destination("late", "late-fn"), status=201)
        dry = (await s.api("POST", "/api/v1/destinations/late/replays", {"since": "1h", "dry_run": True}))["dry_run"]
        started = await s.api("POST", "/api/v1/destinations/late/replays", {"since": "1h"}, status=202)
        done = await s.replayed("late", started["replay"]["id"])
    assert dry["matched"] == 1 and dry["window"]["since"] > dry["since"]
    assert "archive.retention" in dry["note"] and "2s" in dry["note"]
    assert done["enqueued"] == 1 and [e["messageId"] for e in received(s.seen)] == ["fresh"]


async def test_past_max_bytes_the_oldest_leave_the_archive_the_dry_run_says_so_and_no_delivery_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any]
) -> None:
    padded = [{**e, "properties": {**e["properties"], "pad": "x" * 1000}} for e in events(1_200)]  # ~1.2 MB
    async with stack(tmp_path, monkeypatch, storage, max_bytes="1MB") as s:
        await s.api("POST", "/api/v1/config/destinations", destination("live", "live-fn"), status=201)
        await s.send(padded)
        archive = await s.api("GET", "/api/v1/archive")
        async with s.http.get(f"{s.url}/metrics", headers=ADMIN) as r:
            metrics = await r.text()
        await s.api("POST", "/api/v1/config/destinations", destination("late", "late-fn"), status=201)
        dry = (await s.api("POST", "/api/v1/destinations/late/replays", {"since": "1h", "dry_run": True}))["dry_run"]
        deadline = time.monotonic() + DEADLINE
        while True:
            if len(received(s.seen)) >= len(padded) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert archive["max_bytes"] == 10**6 and archive["bytes"] <= 10**6 and archive["pruned_until"] is not None
    assert 0 < archive["events"] < len(padded) and archive["oldest"] >= archive["pruned_until"]
    assert f"eventrelay_archive_events {float(archive['events'])}" in metrics  # its size at /metrics too
    assert f"eventrelay_archive_bytes {float(archive['bytes'])}" in metrics
    assert "archive.max_bytes" in dry["note"] and dry["window"]["since"] == archive["oldest"]
    assert dry["matched"] == dry["events_in_window"] == archive["events"]
    got = Counter(e["messageId"] for e in received(s.seen))  # the live destination: every event, once
    assert got == Counter(e["messageId"] for e in padded)


async def test_a_replay_can_be_cancelled_and_refusals_name_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any]
) -> None:
    async with stack(tmp_path, monkeypatch, storage) as s:
        await s.send(events(300))
        await s.api("POST", "/api/v1/config/destinations", destination("late", "late-fn") | {"enabled": True},
                    status=201)  # fmt: skip
        started = await s.api("POST", "/api/v1/destinations/late/replays", {"since": "1h", "share": 0.0625},
                              status=202)  # fmt: skip
        replay_id = started["replay"]["id"]
        assert started["replay"]["max_in_flight"] == 1
        cancelled = await s.api("POST", f"/api/v1/destinations/late/replays/{replay_id}/cancel")
        again = await s.api("POST", f"/api/v1/destinations/late/replays/{replay_id}/cancel", status=409)
        bad_where = await s.api("POST", "/api/v1/destinations/late/replays", {"since": "1h", "where": "x ="},
                                status=422)  # fmt: skip
        no_since = await s.api("POST", "/api/v1/destinations/late/replays", {}, status=422)
        unknown = await s.api("POST", "/api/v1/destinations/nope/replays", {"since": "1h"}, status=404)
        await asyncio.sleep(0.5)
        after = await s.api("GET", f"/api/v1/destinations/late/replays/{replay_id}")
    assert cancelled["state"] == "cancelled" and cancelled["waiting"] == 0
    assert after["enqueued"] < 300 and len(received(s.seen)) <= after["enqueued"]
    assert "not running" in again["error"]["message"]
    assert bad_where["error"]["errors"][0]["field"] == "where"
    assert "at character 4: expected a field path or a value" in bad_where["error"]["errors"][0]["message"]
    assert no_since["error"]["errors"][0]["field"] == "since"
    assert unknown["error"]["code"] == "not_found"


LIVE_RATE = 100.0  # live events per second offered to another destination during the replay
LIVE_SECONDS = 4.0


async def _live_phase(s: Stack, prefix: str) -> float:
    """Offer ``LIVE_RATE`` events/s to the ``live`` destination for ``LIVE_SECONDS``; the delivered
    rate: events over the time from the first receipt to the last delivery."""
    count = int(LIVE_RATE * LIVE_SECONDS)
    start = time.monotonic()
    for i in range(count):
        await s.send([{"type": "identify", "userId": "live", "messageId": f"{prefix}-{i}"}], key=IOS_KEY)
        await asyncio.sleep(max(0.0, start + (i + 1) / LIVE_RATE - time.monotonic()))
    deadline = time.monotonic() + 60
    while True:
        rows = [r for r in await s.runtime.log.deliveries(destination="live", limit=100_000)
                if r.message_id.startswith(prefix) and r.status == "delivered"]  # fmt: skip
        if len(rows) == count or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert len(rows) == count, f"{len(rows)} of {count} live events delivered"
    first = min(r.received_at for r in rows)
    last = max(r.delivered_at or 0.0 for r in rows)
    return count / (last - first)


@pytest.mark.timeout(600)
async def test_live_traffic_to_another_destination_keeps_its_rate_during_a_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen.jsonl"
    async with recording_functions(tmp_path, monkeypatch, seen, "late-fn", "live-fn"):
        runtime = Runtime(config(tmp_path / "data"))
        await runtime.start()
        try:
            async with serving(runtime) as url, ClientSession() as http:
                s = Stack(runtime, url, http, seen)
                await s.send(events(10_000))
                live = destination("live", "live-fn") | {"sources": ["ios"]}  # the replay's events are web's
                await s.api("POST", "/api/v1/config/destinations", live, status=201)
                await s.api("POST", "/api/v1/config/destinations", destination("late", "late-fn"), status=201)
                baseline = await _live_phase(s, "before")
                started = await s.api("POST", "/api/v1/destinations/late/replays", {"since": "1h"}, status=202)
                during = await _live_phase(s, "during")
                still = await s.api("GET", f"/api/v1/destinations/late/replays/{started['replay']['id']}")
                done = await s.replayed("late", started["replay"]["id"])
        finally:
            await runtime.stop()
    assert still["state"] == "running", "the replay ended before the live traffic did: nothing was measured"
    assert done["counts"]["delivered"] >= 10_000
    print(f"live rate {baseline:.1f}/s before the replay, {during:.1f}/s during it")
    assert during >= 0.8 * baseline, f"live rate {during:.0f}/s during the replay vs {baseline:.0f}/s before"

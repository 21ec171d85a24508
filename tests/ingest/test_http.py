"""The Tracking API over real HTTP (uvicorn + aiohttp), every test with ``ingest.fast_path`` on and
off: bad requests on a kept-alive connection get their 4xx and the next good request on the same
connection still succeeds; deep JSON is a 400; the cacheable settings never carry a forged Host."""

from __future__ import annotations

import gzip
from pathlib import Path

import aiohttp
import orjson

from eventrelay.runtime import Runtime
from tests.ingest.conftest import WRITE_KEY, LiveServer, runtime_config
from tests.support.inprocess import serving

AUTH = aiohttp.BasicAuth(WRITE_KEY, "")
TRACK = {"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}}


async def test_bad_then_good_on_one_connection(live: LiveServer) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        bad = [
            (b'{"userId":', {}, 400),
            (b"", {}, 400),
            (b"garbage", {"Content-Encoding": "gzip"}, 400),
            (orjson.dumps({**TRACK, "properties": "x"}), {}, 400),
        ]
        for body, headers, status in bad:
            async with http.post(f"{live.url}/v1/track", data=body, headers=headers, auth=AUTH) as r:
                assert r.status == status
                assert (await r.json())["success"] is False
        async with http.post(
            f"{live.url}/v1/track",
            data=orjson.dumps(TRACK),
            auth=aiohttp.BasicAuth("wk_not_a_real_key_0000", ""),
        ) as r:
            assert r.status == 401
        async with http.post(
            f"{live.url}/v1/track",
            data=gzip.compress(orjson.dumps(TRACK)),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            auth=AUTH,
        ) as r:
            assert r.status == 200
            assert await r.json() == {"success": True}
    (event,) = await live.host.stored()
    assert event["event"] == "Signed Up"
    assert event["context"]["ip"] == "127.0.0.1"


async def test_oversize_declared_body_is_refused_over_http(live: LiveServer) -> None:
    async with aiohttp.ClientSession() as http:
        body = orjson.dumps({"batch": [{**TRACK, "type": "track", "properties": {"x": "y" * 600_000}}]})
        async with http.post(f"{live.url}/v1/batch", data=body, auth=AUTH) as r:
            assert r.status == 400
            error = (await r.json())["error"]
            assert error["limit"] == "500 KB per batch request"
        async with http.post(f"{live.url}/v1/batch", json={"batch": [{**TRACK, "type": "track"}]}, auth=AUTH) as r:
            assert r.status == 200


async def test_browser_preflight_and_text_plain_over_http(live: LiveServer) -> None:
    origin = {"Origin": "https://shop.example"}
    async with aiohttp.ClientSession() as http:
        async with http.options(
            f"{live.url}/v1/t",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        ) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        body = orjson.dumps({**TRACK, "writeKey": WRITE_KEY, "integrations": {"Segment.io": True}})
        async with http.post(f"{live.url}/v1/t", data=body, headers={**origin, "Content-Type": "text/plain"}) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        async with http.get(f"{live.url}/v1/projects/{WRITE_KEY}/settings", headers=origin) as r:
            assert r.status == 200
            settings = await r.json()
    assert settings["integrations"]["Segment.io"]["apiHost"] == live.url.removeprefix("http://") + "/v1"
    (event,) = await live.host.stored()
    assert event["channel"] == "client"


async def test_deep_json_is_a_400_and_a_batch_keeps_its_valid_item_over_http(live: LiveServer) -> None:
    nested = b"[" * 300 + b"]" * 300
    deep = b'{"type":"track","userId":"u","event":"e","messageId":"deep","properties":{"x":%s}}' % nested
    valid = orjson.dumps({**TRACK, "type": "track", "messageId": "kept"})
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{live.url}/v1/track", data=deep, auth=AUTH) as r:
            assert r.status == 400
            assert (await r.json())["error"]["limit"] == "64 levels of nesting per event"
        async with http.post(f"{live.url}/v1/batch", data=b'{"batch":[%s,%s]}' % (deep, valid), auth=AUTH) as r:
            assert r.status == 200
            answer = await r.json()
    assert answer["accepted"] == 1 and answer["rejected"][0]["messageId"] == "deep"
    assert [e["messageId"] for e in await live.host.stored()] == ["kept"]


async def test_a_forged_host_never_reaches_the_cacheable_settings_over_http(live: LiveServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{live.url}/v1/projects/{WRITE_KEY}/settings", headers={"Host": "evil.example"}) as r:
            assert r.status == 200
            assert r.headers["Cache-Control"] == "max-age=60"
            assert r.headers["Vary"] == "Host"
            settings = await r.json()
    assert settings["integrations"]["Segment.io"]["apiHost"] == live.url.removeprefix("http://") + "/v1"


async def test_the_settings_point_at_ingest_public_url(tmp_path: Path) -> None:
    config = runtime_config(tmp_path, {"public_url": "https://events.example.com"})
    runtime = Runtime(config, role="ingest")
    await runtime.start()
    try:
        async with serving(runtime) as url, aiohttp.ClientSession() as http:
            async with http.get(f"{url}/v1/projects/{WRITE_KEY}/settings", headers={"Host": "evil.example"}) as r:
                segment = (await r.json())["integrations"]["Segment.io"]
    finally:
        await runtime.stop()
    assert (segment["apiHost"], segment["protocol"]) == ("events.example.com/v1", "https")

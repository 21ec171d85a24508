"""The Event Delivery admin API, served for real: auth, filters, stats, samples, redrive."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from eventrelay.core.outcome import Category
from tests.admin.server import ADMIN_TOKEN, WORKSPACE_ID, WRITE_KEY, Served, auth
from tests.deliverylog.records import attempt

ROUTES = [
    ("GET", "/api/v1/deliveries"),
    ("GET", "/api/v1/deliveries/m1"),
    ("GET", "/api/v1/destinations"),
    ("GET", "/api/v1/destinations/lambda-prod/stats"),
    ("GET", "/api/v1/destinations/lambda-prod/samples"),
    ("POST", "/api/v1/destinations/lambda-prod/redrive"),
    ("POST", "/api/v1/destinations/lambda-prod/send"),
]


async def get(http: aiohttp.ClientSession, served: Served, path: str, **params: Any) -> tuple[int, Any]:
    async with http.get(served.url + path, params=params, headers=auth()) as r:
        return r.status, await r.json()


async def post(http: aiohttp.ClientSession, served: Served, path: str, body: Any = None) -> tuple[int, Any]:
    async with http.post(served.url + path, json=body, headers=auth()) as r:
        return r.status, await r.json()


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_answers_401_without_the_right_token(
    served: Served, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    for headers in ({}, auth("wrong-token-0123456789abcdef"), {"Authorization": ADMIN_TOKEN}):
        async with http.request(method, served.url + path, headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "unauthorized"


async def test_deliveries_list_one_object_per_event_and_destination(
    served: Served, http: aiohttp.ClientSession
) -> None:
    now = time.time()
    await served.runtime.log.record(
        [
            attempt("m1", Category.EXECUTION_ERROR, n=1, at=now - 30),
            attempt("m2", Category.ACCESS_DENIED, status="failed", at=now - 20),
            attempt("m3", Category.DELIVERED, at=now - 10, destination="lambda-other"),
        ]
    )
    await served.runtime.log.record([attempt("m1", Category.TIMEOUT, n=2, at=now - 5)])

    status, body = await get(http, served, "/api/v1/deliveries")
    assert status == 200
    assert [d["message_id"] for d in body["deliveries"]] == ["m1", "m3", "m2"]
    m1 = body["deliveries"][0]
    assert {k: m1[k] for k in ("destination", "function", "category", "attempts", "status", "error")} == {
        "destination": "lambda-prod",
        "function": "my-fn",
        "category": "timeout",
        "attempts": 2,
        "status": "retrying",
        "error": "Timeout: no answer within 5 s",
    }
    _, failed = await get(http, served, "/api/v1/deliveries", status="failed", destination="lambda-prod")
    assert [d["message_id"] for d in failed["deliveries"]] == ["m2"]
    _, denied = await get(http, served, "/api/v1/deliveries", category="access_denied")
    assert [d["message_id"] for d in denied["deliveries"]] == ["m2"]
    _, recent = await get(http, served, "/api/v1/deliveries", since="15s", limit="1")
    assert [d["message_id"] for d in recent["deliveries"]] == ["m1"]


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/api/v1/deliveries", {"category": "boom"}, "category"),
        ("/api/v1/deliveries", {"status": "lost"}, "status"),
        ("/api/v1/deliveries", {"limit": "0"}, "limit"),
        ("/api/v1/deliveries", {"limit": "many"}, "limit"),
        ("/api/v1/deliveries", {"since": "yesterday-ish"}, "since"),
        ("/api/v1/destinations/lambda-prod/stats", {"range": "3h"}, "range"),
        ("/api/v1/destinations/lambda-prod/stats", {"since": "1h", "until": "2h"}, "since"),
        ("/api/v1/destinations/lambda-prod/samples", {"category": "nope"}, "category"),
    ],
)
async def test_a_bad_parameter_is_422_naming_it(
    served: Served, http: aiohttp.ClientSession, path: str, params: dict[str, str], param: str
) -> None:
    status, body = await get(http, served, path, **params)
    assert status == 422
    assert body["error"]["param"] == param
    assert param in body["error"]["message"]


async def test_an_unknown_destination_or_event_is_404(served: Served, http: aiohttp.ClientSession) -> None:
    for path in (
        "/api/v1/destinations/nope/stats",
        "/api/v1/destinations/nope/samples",
        "/api/v1/deliveries/nope",
    ):
        status, body = await get(http, served, path)
        assert status == 404, path
        assert body["error"]["code"] == "not_found"
    status, body = await post(http, served, "/api/v1/destinations/nope/redrive", {})
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_one_event_shows_every_attempt(served: Served, http: aiohttp.ClientSession) -> None:
    now = time.time()
    await served.runtime.log.record([attempt("m1", Category.EXECUTION_ERROR, n=1, at=now - 9, log_tail="boom")])
    await served.runtime.log.record([attempt("m1", Category.DELIVERED, n=2, at=now - 3)])
    status, body = await get(http, served, "/api/v1/deliveries/m1", destination="lambda-prod")
    assert status == 200
    assert [(a["attempt"], a["category"]) for a in body["attempts"]] == [
        (1, "execution_error"),
        (2, "delivered"),
    ]
    assert body["attempts"][0]["response"]["log_tail"] == "boom"


async def test_stats_give_counts_latency_and_an_error_table_with_fix_hints(
    served: Served, http: aiohttp.ClientSession
) -> None:
    now = time.time()
    await served.runtime.log.record(
        [
            attempt(f"ok{k}", Category.DELIVERED, at=now - 100, latency_ms=0, received_at=now - 100 - k / 1000)
            for k in range(1, 101)
        ]
        + [
            attempt("x1", Category.EXECUTION_ERROR, status="failed", at=now - 50),
            attempt("x2", Category.ACCESS_DENIED, at=now - 40),
            attempt("x3", Category.TIMEOUT, status="discarded", at=now - 30),
            attempt("old", Category.DELIVERED, at=now - 7200),
        ]
    )
    status, body = await get(http, served, "/api/v1/destinations/lambda-prod/stats", range="1h")
    assert status == 200
    assert body["counts"] == {"delivered": 100, "failed": 1, "retrying": 1, "discarded": 1, "filtered": 0}
    assert body["latency_ms"]["p50"] == pytest.approx(50, abs=0.05)
    assert body["latency_ms"]["p99"] == pytest.approx(99, abs=0.05)
    errors = {e["category"]: e for e in body["errors"]}
    assert {e["name"] for e in errors.values()} == {"Execution Error", "AccessDenied", "Operation timed out"}
    assert f"sts:ExternalId = {WORKSPACE_ID}" in errors["access_denied"]["hint"]
    assert "(5 s)" in errors["timeout"]["hint"]
    assert "raised" in errors["execution_error"]["hint"]
    assert len(body["series"]["buckets"]) == 60
    _, day = await get(http, served, "/api/v1/destinations/lambda-prod/stats", range="24h")
    assert day["counts"]["delivered"] == 101

    _, listing = await get(http, served, "/api/v1/destinations", range="1h")
    by_name = {d["name"]: d for d in listing["destinations"]}
    assert set(by_name) == {"lambda-prod", "lambda-other"}
    assert by_name["lambda-prod"]["counts"]["delivered"] == 100
    assert by_name["lambda-other"]["counts"]["delivered"] == 0


async def test_samples_show_what_was_sent_asked_and_answered_without_secrets(
    served: Served, http: aiohttp.ClientSession
) -> None:
    now = time.time()
    rec = attempt(
        "m1",
        Category.EXECUTION_ERROR,
        at=now - 5,
        log_tail="boom from handler",
        event={"type": "track", "event": "Signed Up", "userId": "u1", "writeKey": WRITE_KEY},
    )
    rec.request["headers"] = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIA...",
        "X-Amz-Security-Token": "tok",
    }
    rec.request["aws_secret_access_key"] = "wJalrXUtnFEMI/K7MDENG"
    await served.runtime.log.record([rec])

    async with http.get(served.url + "/api/v1/destinations/lambda-prod/samples", headers=auth()) as r:
        text = await r.text()
        (sample,) = (await r.json())["samples"]
    assert sample["category_name"] == "Execution Error"
    assert sample["you_sent"]["event"] == "Signed Up"
    assert sample["request"]["function"] == "my-fn"
    assert sample["request"]["qualifier"] == "live"
    assert sample["request"]["client_context"] == {"custom": {"app": "shop"}}
    assert sample["response"]["log_tail"] == "boom from handler"
    assert sample["response"]["error_message"] == "boom from handler"
    for secret in (WRITE_KEY, ADMIN_TOKEN, "wJalrXUtnFEMI", "AWS4-HMAC-SHA256", '"tok"'):
        assert secret not in text
    _, only = await get(http, served, "/api/v1/destinations/lambda-prod/samples", category="timeout")
    assert only["samples"] == []


async def test_redrive_all_moves_every_dead_job_back_to_the_queue(served: Served, http: aiohttp.ClientSession) -> None:
    now = time.time()
    for mid in ("f1", "f2", "f3"):
        await served.dead_job(mid)
        await served.runtime.log.record([attempt(mid, Category.EXECUTION_ERROR, status="failed", at=now - 10)])
    await served.dead_job("other", destination="lambda-other")
    assert await served.runtime.queue.depth("lambda-prod") == 0

    status, body = await post(http, served, "/api/v1/destinations/lambda-prod/redrive")
    assert (status, body["redriven"]) == (200, 3)
    assert await served.runtime.queue.depth("lambda-prod") == 3
    assert await served.runtime.queue.depth("lambda-other") == 0
    _, rows = await get(http, served, "/api/v1/deliveries", destination="lambda-prod")
    assert {d["status"] for d in rows["deliveries"]} == {"retrying"}
    status, again = await post(http, served, "/api/v1/destinations/lambda-prod/redrive", {})
    assert (status, again["redriven"]) == (200, 0)


async def test_redrive_by_category_or_ids_moves_only_those(served: Served, http: aiohttp.ClientSession) -> None:
    now = time.time()
    cases = {
        "e1": Category.EXECUTION_ERROR,
        "e2": Category.EXECUTION_ERROR,
        "a1": Category.ACCESS_DENIED,
        "c1": Category.CONFIGURATION,
    }
    for mid, cat in cases.items():
        await served.dead_job(mid, status="discarded" if cat is Category.CONFIGURATION else "failed")
        status = "discarded" if cat is Category.CONFIGURATION else "failed"
        await served.runtime.log.record([attempt(mid, cat, status=status, at=now - 10)])  # type: ignore[arg-type]

    _, body = await post(http, served, "/api/v1/destinations/lambda-prod/redrive", {"category": "execution_error"})
    assert body["redriven"] == 2
    _, body = await post(http, served, "/api/v1/destinations/lambda-prod/redrive", {"message_ids": ["c1", "zz"]})
    assert body["redriven"] == 1
    _, rows = await get(http, served, "/api/v1/deliveries", status="failed")
    assert [d["message_id"] for d in rows["deliveries"]] == ["a1"]
    assert await served.runtime.queue.depth("lambda-prod") == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"category": "oops"}, "category"),
        ({"message_ids": "e1"}, "message_ids"),
        ({"since": "whenever"}, "since"),
        ({"everything": True}, "everything"),
        ([1, 2], "body"),
        ({"status": "delivered"}, "status"),
        ({"status": []}, "status"),
    ],
)
async def test_a_bad_redrive_body_is_422(served: Served, http: aiohttp.ClientSession, body: Any, param: str) -> None:
    status, answer = await post(http, served, "/api/v1/destinations/lambda-prod/redrive", body)
    assert (status, answer["error"]["param"]) == (422, param)


async def test_redrive_by_state_moves_only_events_in_it_and_says_why_when_none(
    served: Served, http: aiohttp.ClientSession
) -> None:
    now = time.time()
    await served.runtime.log.record(
        [
            attempt("gone", Category.CONFIGURATION, status="discarded", at=now - 5),
            attempt("dead", Category.EXECUTION_ERROR, status="failed", at=now - 4),
        ]
    )
    await served.dead_job("gone", status="discarded")
    await served.dead_job("dead")
    path = "/api/v1/destinations/lambda-prod/redrive"

    status, answer = await post(http, served, path, {"status": "retrying"})
    assert (status, answer["redriven"]) == (200, 0)
    assert answer["message"] == "re-drove 0 events of lambda-prod: no event of lambda-prod is retrying"

    status, answer = await post(http, served, path, {"status": ["discarded"]})
    assert (answer["redriven"], answer["message"]) == (1, "re-drove 1 event of lambda-prod")
    assert [
        r["message_id"] for r in (await get(http, served, "/api/v1/deliveries", status="failed"))[1]["deliveries"]
    ] == ["dead"]


async def test_the_event_tester_refuses_a_bad_test_event_by_field(served: Served, http: aiohttp.ClientSession) -> None:
    path = "/api/v1/destinations/lambda-prod/send"
    for body, field in (({"type": "purchase"}, "type"), ({"properties": [1]}, "properties"), ({"x": 1}, "x")):
        status, answer = await post(http, served, path, body)
        assert status == 422, answer
        assert answer["error"]["errors"][0]["field"] == field
    status, answer = await post(http, served, "/api/v1/destinations/nope/send", {})
    assert (status, answer["error"]["code"]) == (404, "not_found")

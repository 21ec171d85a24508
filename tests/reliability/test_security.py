"""Secrets never leak; keys only do what they are for.

After a full run (deliveries, a failing handler with a log tail), scan the process output, the
admin API answers, /metrics, the OpenAPI document and the web page for the write key, the admin
token and the AWS secret key, and for any session credentials."""

from __future__ import annotations

import base64
import re

import pytest

from tests.reliability.api import deliveries, get
from tests.reliability.client import Sender
from tests.reliability.conftest import ADMIN_TOKEN, WRITE_KEY, Server, wait_until

SESSION_KEY = re.compile(rb"ASIA[A-Z0-9]{16}")


@pytest.mark.slow
def test_no_secret_in_logs_api_metrics_or_page(server: Server) -> None:
    server.start()
    sender = Sender(server.url, WRITE_KEY)
    sender.send_batch(5)
    ok_ids = set(sender.acked)
    assert wait_until(lambda: ok_ids <= set(server.delivered_ids()), timeout=60)
    server.set_mode("raise")
    sender.send_batch(3)
    assert wait_until(
        lambda: any(r["category"] == "execution_error" for r in deliveries(server.url, destination="sink")), timeout=60
    )
    answers = [
        get(server.url, p)[1]
        for p in (
            "/api/v1/deliveries?limit=1000",
            "/api/v1/destinations",
            "/api/v1/destinations/sink/stats?range=1h",
            "/api/v1/destinations/sink/samples?category=execution_error",
            "/api/v1/config/sources",
            "/api/v1/config/destinations",
            "/metrics",
            "/openapi.json",
            "/",
            "/admin",
        )
    ]
    for row in deliveries(server.url, destination="sink")[:5]:
        answers.append(get(server.url, f"/api/v1/deliveries/{row['message_id']}?destination=sink")[1])
    server.kill()
    blob = b"\n".join(answers) + server.all_output().encode()
    assert b"boom from handler" in blob  # the scan covers what a user sees, log tail included
    for secret in (WRITE_KEY, ADMIN_TOKEN, server.env["AWS_SECRET_ACCESS_KEY"]):
        assert secret.encode() not in blob
        assert base64.b64encode(f"{secret}:".encode()) not in blob
    assert not SESSION_KEY.search(blob), "a session access key id appears in output"


@pytest.mark.slow
def test_keys_cannot_be_used_for_what_they_are_not(server: Server) -> None:
    server.start()
    assert get(server.url, "/api/v1/deliveries", token=None)[0] == 401
    assert get(server.url, "/api/v1/deliveries", token="wrong-token-0123456789")[0] == 401
    assert get(server.url, "/api/v1/deliveries", token=WRITE_KEY)[0] == 401  # a write key reads nothing
    assert get(server.url, "/api/v1/config/sources", token=WRITE_KEY)[0] == 401
    sender = Sender(server.url, "not-a-key-0123456789abcdef")
    sender.send_batch(1)
    assert sender.acked == [] and sender.refused == 1
    assert get(server.url, "/api/v1/deliveries", token=ADMIN_TOKEN)[0] == 200

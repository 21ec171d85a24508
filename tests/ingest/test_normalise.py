"""normalise.py: the server-side fields, the skew formula, context.ip, writeKey stripped."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from eventrelay.core.errors import PayloadError
from eventrelay.ingest.normalise import iso, normalise, parse_time

RECEIVED = datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC).timestamp()


def run(
    event: dict[str, Any], call_type: str = "track", ip: str | None = "198.51.100.1", channel: str = "server"
) -> dict[str, Any]:
    return normalise(event, call_type, received_at=RECEIVED, received_iso=iso(RECEIVED), ip=ip, channel=channel)


def test_iso_has_milliseconds_and_z() -> None:
    assert iso(RECEIVED) == "2024-05-01T12:00:00.500Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", iso(time.time()))


def test_iso_cache_matches_strftime() -> None:
    for t in (RECEIVED, RECEIVED + 0.001, RECEIVED + 1.999, RECEIVED + 3600.25, 0.0, 253402300799.9995):
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + f".{min(int((t % 1) * 1000), 999):03d}Z"
        assert iso(t) == expected


def test_skew_correction_formula() -> None:
    # the client clock is 1 hour fast; the event waited 2 s on the device before sending
    event = run(
        {
            "userId": "u",
            "event": "E",
            "timestamp": "2024-05-01T13:00:00.000Z",
            "sentAt": "2024-05-01T13:00:02.000Z",
        }
    )
    assert event["timestamp"] == "2024-05-01T11:59:58.500Z"  # receivedAt - (sentAt - timestamp)
    assert event["originalTimestamp"] == "2024-05-01T13:00:00.000Z"
    assert event["sentAt"] == "2024-05-01T13:00:02.000Z"
    assert event["receivedAt"] == "2024-05-01T12:00:00.500Z"


def test_skew_with_offsets_and_python_isoformat() -> None:
    event = run(
        {
            "userId": "u",
            "event": "E",
            "timestamp": "2024-05-01T14:00:00.000000+02:00",
            "sentAt": "2024-05-01T12:00:01+00:00",
        }
    )
    assert event["timestamp"] == "2024-05-01T11:59:59.500Z"


def test_timestamp_without_sent_at_is_kept() -> None:
    event = run({"userId": "u", "event": "E", "timestamp": "2024-04-30T00:00:00Z"})
    assert event["timestamp"] == "2024-04-30T00:00:00Z"
    assert event["originalTimestamp"] == "2024-04-30T00:00:00Z"


def test_no_timestamp_means_received_at() -> None:
    event = run({"userId": "u", "event": "E"})
    assert event["timestamp"] == event["receivedAt"]
    assert "originalTimestamp" not in event


def test_bad_timestamp_names_the_field() -> None:
    with pytest.raises(PayloadError) as err:
        run({"userId": "u", "event": "E", "timestamp": "yesterday", "sentAt": "2024-05-01T13:00:02Z"})
    assert err.value.field == "timestamp"
    with pytest.raises(PayloadError) as err:
        run({"userId": "u", "event": "E", "timestamp": "2024-05-01T13:00:02Z", "sentAt": "soon"})
    assert err.value.field == "sentAt"


def test_absurd_skew_is_a_400_not_a_crash() -> None:
    with pytest.raises(PayloadError):
        run(
            {
                "userId": "u",
                "event": "E",
                "timestamp": "0001-01-01T00:00:00Z",
                "sentAt": "9999-12-31T00:00:00Z",
            }
        )


def test_server_fields() -> None:
    event = run({"userId": "u", "event": "E", "type": "identify", "writeKey": "secret-key-1234567"}, "track")
    assert event["type"] == "track"  # the endpoint decides
    assert "writeKey" not in event
    assert uuid.UUID(event["messageId"]).version == 4
    assert uuid.UUID(event["messageId"]).variant == uuid.RFC_4122
    assert event["version"] == 2
    assert event["channel"] == "server"
    assert event["context"] == {"ip": "198.51.100.1"}


def test_client_values_are_kept() -> None:
    library = {"name": "analytics-node", "version": "3.1.0"}
    event = run(
        {
            "userId": "u",
            "event": "E",
            "messageId": "m-1",
            "channel": "mobile",
            "context": {"ip": "192.0.2.9", "library": library},
        },
        channel="client",
    )
    assert event["messageId"] == "m-1"
    assert event["channel"] == "mobile"
    assert event["context"] == {"ip": "192.0.2.9", "library": library}


def test_parse_time_fast_path_matches_fromisoformat() -> None:
    for text in (
        "2024-05-01T12:00:00.500Z",
        "2024-05-01T12:00:00.500+00:00",
        "2024-05-01T12:00:00.999Z",
        "2024-12-31T23:59:59.001+00:00",
    ):
        expected = datetime.fromisoformat(text).timestamp()
        assert parse_time(text, "timestamp") == pytest.approx(expected, abs=1e-6)
        assert parse_time(text, "timestamp") == pytest.approx(expected, abs=1e-6)  # cached second
    with pytest.raises(PayloadError):
        parse_time("2024-13-01T12:00:00.500Z", "timestamp")
    with pytest.raises(PayloadError):
        parse_time("2024-05-01T12:00:00.5x0Z", "timestamp")


def test_parse_time_without_zone_is_utc() -> None:
    assert parse_time("2024-05-01T12:00:00.5", "timestamp") == RECEIVED

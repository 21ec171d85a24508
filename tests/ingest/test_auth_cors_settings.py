"""auth.py, cors.py, settings_endpoint.py."""

from __future__ import annotations

import base64

import pytest

from eventrelay.core.errors import AuthError
from eventrelay.ingest.auth import authenticate, basic_user, write_key
from eventrelay.ingest.cors import cors_headers, preflight_headers
from eventrelay.ingest.settings_endpoint import ApiOrigin, settings_document, settings_key

KEY = "wk_abcdefghijklmnop"


def basic(text: str) -> bytes:
    return b"Basic " + base64.b64encode(text.encode())


@pytest.mark.parametrize("text", [f"{KEY}:", f"{KEY}:anything", KEY])
def test_basic_user(text: str) -> None:
    assert basic_user(basic(text)) == KEY


def test_basic_scheme_is_case_insensitive_and_bearer_is_ignored() -> None:
    assert basic_user(b"basic " + base64.b64encode(f"{KEY}:".encode())) == KEY
    assert basic_user(b"Bearer abc") is None


def test_header_wins_over_body() -> None:
    assert write_key(basic(f"{KEY}:"), {"writeKey": "other"}) == KEY
    assert write_key(None, {"writeKey": KEY}) == KEY


def test_missing_and_unknown_keys_never_echo_the_key() -> None:
    with pytest.raises(AuthError) as err:
        write_key(None, {"writeKey": 5})
    assert "no write key" in err.value.message
    with pytest.raises(AuthError) as err:
        authenticate(None, {"writeKey": KEY}, lambda _k: None)
    assert KEY not in str(err.value)
    assert err.value.status == 401


def test_bad_base64_is_401() -> None:
    with pytest.raises(AuthError):
        basic_user(b"Basic \xff\xfe!!")


def test_cors() -> None:
    assert dict(cors_headers(None))[b"access-control-allow-origin"] == b"*"
    assert dict(cors_headers(b"https://shop.example"))[b"access-control-allow-origin"] == b"https://shop.example"
    for origin in (None, b"https://shop.example"):  # write keys are no cookies: no credentials allowed
        assert b"access-control-allow-credentials" not in dict(cors_headers(origin))
    headers = dict(preflight_headers(None))
    for h in (b"Content-Type", b"Authorization", b"Content-Encoding"):
        assert h in headers[b"access-control-allow-headers"]
    assert b"POST" in headers[b"access-control-allow-methods"]


def test_settings_path() -> None:
    assert settings_key(f"/v1/projects/{KEY}/settings") == KEY
    assert settings_key("/v1/projects//settings") is None
    assert settings_key("/v1/projects/a/b/settings") is None
    assert settings_key("/v1/track") is None


def test_settings_document_points_analytics_js_here() -> None:
    doc = settings_document(KEY, "events.example:8088", "https")
    segment = doc["integrations"]["Segment.io"]
    assert segment["apiKey"] == KEY
    assert segment["apiHost"] == "events.example:8088/v1"
    assert segment["protocol"] == "https"
    assert doc["plan"]["track"]["__default"]["enabled"] is True
    assert doc["remotePlugins"] == []
    assert doc["metrics"]["sampleRate"] == 0


SERVER = ("10.0.0.5", 8088)  # the address a request arrived on


@pytest.mark.parametrize(
    ("origin", "host", "expected"),
    [
        (ApiOrigin(), b"evil.example", ("10.0.0.5:8088", "http")),  # a forged Host is never copied
        (ApiOrigin(), None, ("10.0.0.5:8088", "http")),
        (ApiOrigin(allowed_hosts=("events.example",)), b"events.example:8443", ("events.example:8443", "http")),
        (ApiOrigin(allowed_hosts=("events.example",)), b"EVENTS.example", ("events.example", "http")),
        (ApiOrigin(allowed_hosts=("events.example:443",)), b"events.example:8443", ("10.0.0.5:8088", "http")),
        (ApiOrigin(allowed_hosts=("events.example",)), b"events.example.evil", ("10.0.0.5:8088", "http")),
        (ApiOrigin("https://events.example/seg/"), b"evil.example", ("events.example/seg", "https")),
    ],
)
def test_the_settings_host_is_the_public_url_else_an_allowed_host_else_our_address(
    origin: ApiOrigin, host: bytes | None, expected: tuple[str, str]
) -> None:
    assert origin.resolve(host, "http", SERVER) == expected


def test_an_unlisted_host_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    origin = ApiOrigin()
    for _ in range(3):
        origin.resolve(b"evil.example", "http", SERVER)
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "'evil.example' is not in ingest.allowed_hosts" in warning and "ingest.public_url" in warning

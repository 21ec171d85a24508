"""CORS for the Tracking API and the settings endpoint: any origin may call them, as Segment allows.

Browsers send analytics.js events from any site, so every answer carries
``Access-Control-Allow-Origin`` (the request's ``Origin`` when it sent one, else ``*``) and a
preflight ``OPTIONS`` is answered 204 with the methods and headers the clients use. No answer
allows credentials (``Access-Control-Allow-Credentials``): the write key travels in the body or
the Basic header, never in a cookie, so no page may make a browser send its cookies here.
"""

from __future__ import annotations

Headers = list[tuple[bytes, bytes]]

ALLOW_METHODS = b"GET, POST, OPTIONS"
ALLOW_HEADERS = b"Content-Type, Authorization, Content-Encoding, X-Retry-Count"
PREFLIGHT_MAX_AGE = b"86400"  # browsers may cache the preflight answer for a day

_WILDCARD: Headers = [(b"access-control-allow-origin", b"*")]


def cors_headers(origin: bytes | None) -> Headers:
    """Headers for an ordinary answer to a request from ``origin`` (None: not a CORS request)."""
    if not origin:
        return _WILDCARD
    return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]


def preflight_headers(requested_headers: bytes | None) -> Headers:
    """Headers a preflight ``OPTIONS`` answer adds to ``cors_headers`` (the app adds those to
    every answer; sending Allow-Origin twice makes browsers refuse the preflight)."""
    allow = ALLOW_HEADERS
    if requested_headers:
        allow = ALLOW_HEADERS + b", " + requested_headers
    return [
        (b"access-control-allow-methods", ALLOW_METHODS),
        (b"access-control-allow-headers", allow),
        (b"access-control-max-age", PREFLIGHT_MAX_AGE),
    ]

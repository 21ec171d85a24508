"""AWS Signature Version 4 for the Invoke hot path, with the derived signing key cached.

botocore's ``SigV4Auth`` derives the signing key (four HMACs) and rebuilds every part of the
canonical request on each call: ~53 us per signature here. This signer produces byte-identical
``Authorization`` headers (tests/destinations/test_signer.py checks it against botocore on
generated requests) but caches the derived key per (secret, date, region, service), lets the
caller precompute the canonical path and query once per function, and keeps the canonical
request of each (function, header set) as a template in which only the date, the session token
and the payload hash change.

The rules followed are botocore's ``SigV4Auth`` (non-S3): the path is normalised (dot segments
and empty segments removed) and URI-encoded once more on top of the wire encoding; the query
is split on ``&``/``=`` and sorted as it appears on the wire; header values are trimmed with
runs of whitespace collapsed; the payload is always SHA-256 hashed; ``X-Amz-Date`` and
``X-Amz-Security-Token`` (when the credentials carry a token) are signed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote

from botocore.utils import normalize_url_path

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Headers botocore leaves out of the signature (botocore.auth.SIGNED_HEADERS_BLACKLIST).
UNSIGNED_HEADERS = frozenset(
    {
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
        "authorization",
        "content-length",
    }
)
MAX_CACHED_KEYS = 64  # derived keys live a day; a handful of (secret, region) pairs per process
# Canonical-request templates: one per (function, qualifier, header set): a destination has a
# few functions and one header set per invocation type; the bound only guards a misuse.
MAX_CACHED_TEMPLATES = 1024
# Placeholders cut out of a template (control characters: never in a signed header value).
_DATE_SLOT = "\x00date\x00"
_TOKEN_SLOT = "\x00token\x00"
_TemplateKey = tuple[str, str, str, str, tuple[tuple[str, str], ...], bool]
_Template = tuple[str, str, str, str]  # canonical request up to the date, to the token, after; signed headers


def canonical_path(wire_path: str) -> str:
    """The canonical URI of a path as sent on the wire (already percent-encoded)."""
    return quote(normalize_url_path(wire_path), safe="/~")


def canonical_query(wire_query: str) -> str:
    """The canonical query string of a query as sent on the wire (already percent-encoded)."""
    if not wire_query:
        return ""
    pairs = sorted((k, v) for k, _, v in (pair.partition("=") for pair in wire_query.split("&")))
    return "&".join(f"{k}={v}" for k, v in pairs)


def amz_date(now: float) -> str:
    """``X-Amz-Date`` for an epoch time: ``YYYYMMDDTHHMMSSZ``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


class SigV4Signer:
    """Signs requests for one (service, region); safe to share between coroutines."""

    def __init__(self, service: str, region: str) -> None:
        self.service = service
        self.region = region
        self._keys: dict[tuple[str, str], bytes] = {}
        self._templates: dict[_TemplateKey, _Template] = {}
        self._date_second = -1
        self._date = ""

    def sign(
        self,
        *,
        method: str,
        host: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        access_key: str,
        secret_key: str,
        token: str | None,
        timestamp: str | None = None,
    ) -> dict[str, str]:
        """Return the headers to add to the request: ``X-Amz-Date``, ``X-Amz-Security-Token``
        (with a token) and ``Authorization``.

        ``path`` and ``query`` are the canonical forms (``canonical_path``/``canonical_query``
        of what goes on the wire); ``headers`` are the other headers sent (any case)."""
        stamp = timestamp or self._now()
        added = {"X-Amz-Date": stamp}
        if token:
            added["X-Amz-Security-Token"] = token
        key = (method, host, path, query, tuple(headers.items()), bool(token))
        template = self._templates.get(key)
        if template is None:
            template = self._template(key)
        head, after_date, after_token, signed_headers = template
        date_value = " ".join(stamp.split())
        if token:
            canonical = f"{head}{date_value}{after_date}{' '.join(token.split())}{after_token}"
        else:
            canonical = f"{head}{date_value}{after_date}"
        canonical += hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        date = stamp[:8]
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        string_to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
        signature = hmac.new(self._key(secret_key, date), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        added["Authorization"] = (
            f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
        )
        return added

    def _template(self, key: _TemplateKey) -> _Template:
        """The canonical request of ``key`` cut around the two values that change per request
        (``x-amz-date`` and ``x-amz-security-token``), and its signed-header list: built once
        per function and header set, so a signature only fills in the date, the token and the
        payload hash."""
        method, host, path, query, header_items, with_token = key
        signed: dict[str, str] = {"host": host}
        for name, value in header_items:
            lname = name.lower()
            if lname not in UNSIGNED_HEADERS:
                signed[lname] = " ".join(value.split())
        signed["x-amz-date"] = _DATE_SLOT
        if with_token:
            signed["x-amz-security-token"] = _TOKEN_SLOT
        names = sorted(signed)
        signed_headers = ";".join(names)
        canonical = "\n".join(
            (
                method.upper(),
                path,
                query,
                "".join(f"{n}:{signed[n]}\n" for n in names),
                signed_headers,
                "",  # the payload hash follows
            )
        )
        head, _, rest = canonical.partition(_DATE_SLOT)
        after_date, _, after_token = rest.partition(_TOKEN_SLOT) if with_token else (rest, "", "")
        template = (head, after_date, after_token, signed_headers)
        if len(self._templates) >= MAX_CACHED_TEMPLATES:
            self._templates.clear()
        self._templates[key] = template
        return template

    def _key(self, secret_key: str, date: str) -> bytes:
        key = self._keys.get((secret_key, date))
        if key is None:
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.clear()
            key = _hmac(f"AWS4{secret_key}".encode(), date)
            for part in (self.region, self.service, "aws4_request"):
                key = _hmac(key, part)
            self._keys[(secret_key, date)] = key
        return key

    def _now(self) -> str:
        second = int(time.time())
        if second != self._date_second:
            self._date_second = second
            self._date = amz_date(second)
        return self._date


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

"""Verify the AWS Signature Version 4 of an incoming request (header form, as botocore signs).

The canonical request is rebuilt from the request as received, following botocore's rules: the path is
URI-encoded once more (``quote(path, safe='/~')``), query pairs are sorted as sent, only the headers named
in ``SignedHeaders`` are used, whitespace in values is collapsed. The derived signing key is cached per
(secret, date, region, service) so a verification costs a few microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote

from botocore.utils import normalize_url_path
from multidict import CIMultiDictProxy

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW_SECONDS = 15 * 60  # AWS refuses signatures more than 15 minutes off its clock
AUTH_PATTERN = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<headers>[^,\s]+),\s*"
    r"Signature=(?P<sig>[0-9a-f]{64})$"
)


class SignatureError(Exception):
    """The request is not signed, malformed, too old, or the signature does not match."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason  # missing | malformed | skew | mismatch
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the Authorization header claims; verify it with the secret of ``access_key``."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    security_token: str | None


def parse_authorization(headers: CIMultiDictProxy[str]) -> SignedRequest:
    auth = headers.get("Authorization")
    if not auth:
        raise SignatureError("missing", "Missing Authentication Token")
    m = AUTH_PATTERN.match(auth.strip())
    amz_date = headers.get("X-Amz-Date", "")
    if not m or not re.fullmatch(r"\d{8}T\d{6}Z", amz_date):
        raise SignatureError("malformed", "Authorization header or X-Amz-Date is not a valid SigV4 signature")
    parts = m.group("cred").split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise SignatureError("malformed", "Credential should be scoped to a valid region, service and date")
    return SignedRequest(
        access_key=parts[0],
        date=parts[1],
        region=parts[2],
        service=parts[3],
        signed_headers=tuple(m.group("headers").split(";")),
        signature=m.group("sig"),
        amz_date=amz_date,
        security_token=headers.get("X-Amz-Security-Token"),
    )


def verify(
    signed: SignedRequest,
    secret: str,
    *,
    method: str,
    raw_path: str,
    headers: CIMultiDictProxy[str],
    body: bytes,
    now: datetime | None = None,
) -> None:
    """Raise SignatureError unless ``signed`` was computed with ``secret`` over this request."""
    d = signed.amz_date  # YYYYMMDDTHHMMSSZ, checked by parse_authorization (strptime costs ~20 us)
    when = datetime(int(d[:4]), int(d[4:6]), int(d[6:8]), int(d[9:11]), int(d[11:13]), int(d[13:15]), tzinfo=UTC)
    skew = abs(((now or datetime.now(UTC)) - when).total_seconds())
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureError("skew", f"Signature expired: {signed.amz_date} is more than 15 minutes from now")
    if not signed.amz_date.startswith(signed.date):
        raise SignatureError("malformed", "Credential date does not match X-Amz-Date")
    canonical = canonical_request(method, raw_path, headers, signed.signed_headers, body)
    scope = f"{signed.date}/{signed.region}/{signed.service}/aws4_request"
    to_sign = "\n".join((ALGORITHM, signed.amz_date, scope, _sha256(canonical.encode())))
    key = signing_key(secret, signed.date, signed.region, signed.service)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signed.signature):
        raise SignatureError(
            "mismatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )


def canonical_request(
    method: str, raw_path: str, headers: CIMultiDictProxy[str], signed_headers: tuple[str, ...], body: bytes
) -> str:
    path, _, query = raw_path.partition("?")
    lines = [f"{name}:{','.join(' '.join(v.split()) for v in headers.getall(name, []))}" for name in signed_headers]
    payload_hash = headers.get("X-Amz-Content-SHA256") or _sha256(body)
    return "\n".join(
        (
            method.upper(),
            quote(normalize_url_path(path), safe="/~"),  # botocore removes dot segments before quoting
            _canonical_query(query),
            "\n".join(lines) + "\n",
            ";".join(signed_headers),
            payload_hash,
        )
    )


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{k}={v}" for k, v in pairs)


@lru_cache(maxsize=256)  # one key per (secret, day, region, service): a handful in practice
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

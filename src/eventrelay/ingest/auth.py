"""The write key of a Tracking API request, and the source it names.

Two styles, as Segment accepts them: HTTP Basic with the write key as the user (the password is
ignored: empty by convention, but ``user:anything`` works too), or ``writeKey`` at the top level
of the JSON body (analytics.js, which sends ``text/plain`` without an ``Authorization`` header).
The header wins when both are present. The key is never echoed: errors say only that it is
missing or unknown.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

from eventrelay.core.errors import AuthError

_BASIC = b"basic "


def basic_user(authorization: bytes | None) -> str | None:
    """The user part of an HTTP Basic ``Authorization`` header, or None when there is none."""
    if not authorization or authorization[:6].lower() != _BASIC:
        return None
    try:
        decoded = binascii.a2b_base64(authorization[6:].strip(), strict_mode=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthError("Authorization header is not valid HTTP Basic (base64 of 'writeKey:')") from exc
    user, _, _password = decoded.partition(":")
    return user or None


def write_key(authorization: bytes | None, body: dict[str, Any] | None) -> str:
    """The write key from the Basic header, else from the body's ``writeKey``; AuthError if neither."""
    key = basic_user(authorization)
    if key is None and body is not None:
        value = body.get("writeKey")
        if isinstance(value, str) and value:
            key = value
    if key is None:
        raise AuthError(
            "no write key: send HTTP Basic auth with the write key as user and an empty password, "
            "or writeKey in the body"
        )
    return key


def authenticate(authorization: bytes | None, body: dict[str, Any] | None, lookup: Callable[[str], str | None]) -> str:
    """The source name the request's write key belongs to; AuthError when missing or unknown."""
    return source_of(write_key(authorization, body), lookup)


def source_of(key: str, lookup: Callable[[str], str | None]) -> str:
    """The source name of ``key``; AuthError (not naming the key) when no source has it."""
    source = lookup(key)
    if source is None:
        raise AuthError("unknown write key: no source has it")
    return source

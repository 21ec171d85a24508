"""Required fields and field types of one Segment event (DESIGN.md section 3).

``validate`` checks an event of a known call type and raises ``PayloadError`` naming the first
wrong field. It also makes the one change Segment makes while validating: identifiers sent
as numbers (``"userId": 42``) become strings, exactly (a number id that cannot be kept exactly
is refused). ``null`` is the same as absent everywhere (analytics-python sends
``"anonymousId": null`` beside a ``userId``).
"""

from __future__ import annotations

from typing import Any

from eventrelay.core.errors import PayloadError
from eventrelay.core.spec import MAX_MESSAGE_ID_CHARS
from eventrelay.ingest.body import json_type

# Fields with a required JSON type when present (null counts as absent).
_OBJECT_FIELDS = ("context", "integrations", "properties", "traits")
_STRING_FIELDS = ("timestamp", "sentAt", "originalTimestamp", "name", "category")
MAX_EXACT_FLOAT = 2**53
"""A number id read as a float is exact only up to here: past it (``1e300``, or an integer beyond
64 bits, which the parser reads as a float: 2^70 -> 1.1805916207174113e+21) its digits are gone,
so it is refused, naming the field, rather than stored as a different id."""
_OBJECT_OK = frozenset({dict, type(None)})
_STRING_OK = frozenset({str, type(None)})


def validate(event: dict[str, Any], call_type: str) -> None:
    """Check ``event`` as a ``call_type`` call; coerce numeric ids to strings in place."""
    get = event.get
    # Identifiers are strings in the common case: checked inline, the rest (numbers, wrong types)
    # in _identifier. An empty string counts as absent either way.
    user_id = get("userId")
    if type(user_id) is not str:
        user_id = _identifier(event, "userId")
    anonymous_id = get("anonymousId")
    if type(anonymous_id) is not str:
        anonymous_id = _identifier(event, "anonymousId")
    if call_type == "alias":
        if not user_id:
            raise _missing("userId", "an alias call needs userId (the new id)")
        if not _identifier(event, "previousId"):
            raise _missing("previousId", "an alias call needs previousId (the old id)")
    elif not user_id and not anonymous_id:
        raise _missing("userId", "userId or anonymousId is required (a non-empty string)")
    if call_type == "track":
        name = event.get("event")
        if not isinstance(name, str) or not name:
            raise _wrong("event", "a track call needs event, a non-empty string", name)
    elif call_type == "group" and not _identifier(event, "groupId"):
        raise _missing("groupId", "a group call needs groupId")
    message_id = get("messageId")
    if message_id is not None and (type(message_id) is not str or len(message_id) > MAX_MESSAGE_ID_CHARS):
        _message_id(event)
    # The common case (every typed field right) is checked unrolled, without a loop (measured
    # ~40% cheaper than a loop or map/issuperset); the fields are those of _OBJECT_FIELDS and
    # _STRING_FIELDS, which name the first wrong one when a check fails.
    if (
        type(get("context")) not in _OBJECT_OK
        or type(get("integrations")) not in _OBJECT_OK
        or type(get("properties")) not in _OBJECT_OK
        or type(get("traits")) not in _OBJECT_OK
    ):
        _first_wrong(event, _OBJECT_FIELDS, dict, "an object")
    if (
        type(get("timestamp")) not in _STRING_OK
        or type(get("sentAt")) not in _STRING_OK
        or type(get("originalTimestamp")) not in _STRING_OK
        or type(get("name")) not in _STRING_OK
        or type(get("category")) not in _STRING_OK
    ):
        _first_wrong(event, _STRING_FIELDS, str, "a string")


def _first_wrong(event: dict[str, Any], keys: tuple[str, ...], expected: type, name: str) -> None:
    """Raise for the first of ``keys`` whose value is neither null nor of ``expected`` type."""
    for key in keys:
        value = event.get(key)
        if value is not None and not isinstance(value, expected):
            raise _wrong(key, f"{key} must be {name}", value)


def _identifier(event: dict[str, Any], key: str) -> str | None:
    """The id at ``key`` as a string (numbers converted in place), None when absent/null/empty."""
    value = event.get(key)
    if isinstance(value, str):
        return value or None
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and abs(value) > MAX_EXACT_FLOAT:  # an int (up to 64 bits) is exact
            raise PayloadError(
                f"{key} is a number too large to keep exactly (beyond 2^53, or 64 bits for an integer); "
                "send it as a string",
                field=key,
            )
        text = str(value)
        event[key] = text
        return text
    raise _wrong(key, f"{key} must be a string or a number", value)


def _message_id(event: dict[str, Any]) -> None:
    value = event.get("messageId")
    if value is None or value == "":
        return
    if not isinstance(value, str):
        raise _wrong("messageId", "messageId must be a string", value)
    if len(value) > MAX_MESSAGE_ID_CHARS:
        raise PayloadError(
            f"messageId is {len(value)} characters; the limit is {MAX_MESSAGE_ID_CHARS}",
            field="messageId",
            limit=f"{MAX_MESSAGE_ID_CHARS} characters",
        )


def _missing(field: str, message: str) -> PayloadError:
    return PayloadError(message, field=field)


def _wrong(field: str, message: str, value: object) -> PayloadError:
    return PayloadError(f"{message}, not {json_type(value)}", field=field)

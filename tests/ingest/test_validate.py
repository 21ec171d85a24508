"""validate.py: required fields per call type, types, ids coerced as Segment does."""

from __future__ import annotations

from typing import Any

import pytest

from eventrelay.core.errors import PayloadError
from eventrelay.ingest.validate import validate


def field_of(event: dict[str, Any], call_type: str) -> str | None:
    with pytest.raises(PayloadError) as err:
        validate(event, call_type)
    return err.value.field


def test_analytics_python_null_anonymous_id_beside_user_id_is_valid() -> None:
    validate({"userId": "u1", "anonymousId": None, "event": "E"}, "track")


def test_numeric_ids_become_strings() -> None:
    event: dict[str, Any] = {"userId": 42, "groupId": 7.5}
    validate(event, "group")
    assert event["userId"] == "42"
    assert event["groupId"] == "7.5"


@pytest.mark.parametrize("ids", [{}, {"userId": None}, {"userId": "", "anonymousId": None}])
def test_an_id_is_required(ids: dict[str, Any]) -> None:
    assert field_of({**ids}, "identify") == "userId"


def test_boolean_is_not_an_id() -> None:
    assert field_of({"userId": True}, "identify") == "userId"


@pytest.mark.parametrize("name", [None, "", 3, {"a": 1}])
def test_track_needs_an_event_name(name: Any) -> None:
    assert field_of({"userId": "u", "event": name}, "track") == "event"


def test_group_needs_group_id() -> None:
    assert field_of({"userId": "u"}, "group") == "groupId"
    validate({"anonymousId": "a", "groupId": "g"}, "group")


def test_alias_needs_previous_id_and_user_id() -> None:
    assert field_of({"previousId": "old"}, "alias") == "userId"
    assert field_of({"userId": "new"}, "alias") == "previousId"
    validate({"userId": "new", "previousId": "old"}, "alias")


@pytest.mark.parametrize("key", ["properties", "traits", "context", "integrations"])
@pytest.mark.parametrize("value", [[1], "s", 3, True])
def test_object_fields_must_be_objects(key: str, value: Any) -> None:
    with pytest.raises(PayloadError) as err:
        validate({"userId": "u", "event": "E", key: value}, "track")
    assert err.value.field == key
    assert f"{key} must be an object" in err.value.message


def test_null_object_fields_count_as_absent() -> None:
    validate({"userId": "u", "event": "E", "properties": None, "context": None}, "track")


def test_message_id_at_most_100_chars() -> None:
    validate({"userId": "u", "messageId": "m" * 100}, "identify")
    with pytest.raises(PayloadError) as err:
        validate({"userId": "u", "messageId": "m" * 101}, "identify")
    assert err.value.field == "messageId"
    assert "101 characters; the limit is 100" in err.value.message


def test_message_id_must_be_a_string() -> None:
    assert field_of({"userId": "u", "messageId": 12}, "identify") == "messageId"


@pytest.mark.parametrize("key", ["timestamp", "sentAt", "originalTimestamp", "name", "category"])
def test_string_fields(key: str) -> None:
    assert field_of({"userId": "u", key: 5}, "page") == key

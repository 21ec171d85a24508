"""Filter rules on events: drop, only, sample (deterministic per messageId), drop and allow properties."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from eventrelay.filters.fql_parser import parse
from eventrelay.filters.properties import allow_paths, drop_paths, split_path
from eventrelay.filters.rules import AllowProperties, Drop, DropProperties, Filtered, Filters, Kept, Rule, Sample

EVENT: dict[str, Any] = {
    "type": "identify",
    "userId": "u1",
    "traits": {"email": "a@example.com", "address": {"street": "1 Main St", "city": "Oslo"}, "plan": "pro"},
    "context": {"ip": "10.0.0.1", "device": {"id": "d1", "model": "x"}, "library": {"name": "analytics.js"}},
    "properties": {"price": 3},
}


def _rule(action: Any, condition: str = "true", name: str = "filters[0]") -> Rule:
    return Rule(name, parse(condition), action)


def test_drop_properties_removes_nested_paths_and_leaves_the_rest() -> None:
    before = copy.deepcopy(EVENT)
    out = drop_paths(EVENT, [split_path("traits.address.street"), split_path("context.ip"), split_path("traits.email")])
    assert out["traits"] == {"address": {"city": "Oslo"}, "plan": "pro"}
    assert out["context"] == {"device": {"id": "d1", "model": "x"}, "library": {"name": "analytics.js"}}
    assert out["properties"] is EVENT["properties"]  # untouched parts are shared, not copied
    assert EVENT == before  # the given event is never changed


def test_drop_properties_of_a_missing_or_non_object_path_changes_nothing() -> None:
    assert drop_paths(EVENT, [split_path("traits.phone"), split_path("userId.x"), split_path("nope.a.b")]) is EVENT


def test_allow_properties_keeps_only_the_named_paths_of_the_objects_they_name() -> None:
    before = copy.deepcopy(EVENT)
    paths = ["traits.plan", "traits.address.city", "context.device"]
    out = allow_paths(EVENT, [split_path(p) for p in paths])
    assert out["traits"] == {"plan": "pro", "address": {"city": "Oslo"}}
    assert out["context"] == {"device": {"id": "d1", "model": "x"}}  # a whole nested object kept
    assert out["properties"] == {"price": 3}  # an object no path names is untouched
    assert out["userId"] == "u1"
    assert EVENT == before


def test_allow_properties_a_shorter_path_keeps_everything_under_it() -> None:
    out = allow_paths(EVENT, [split_path("traits.address.city"), split_path("traits.address")])
    assert out["traits"] == {"address": {"street": "1 Main St", "city": "Oslo"}}


def test_allow_properties_empties_a_named_object_that_is_not_an_object() -> None:
    assert allow_paths({"traits": "secret"}, [split_path("traits.plan")]) == {"traits": {}}


def test_filters_apply_in_order_each_seeing_what_the_ones_before_left() -> None:
    filters = Filters(
        None,
        [
            _rule(DropProperties((split_path("traits.email"),)), name="filters[0]"),
            _rule(Drop(), "traits.email != null", name="filters[1]"),  # the email is gone: no match
            _rule(Drop(), 'traits.plan = "pro"', name="filters[2]"),
        ],
    )
    result = filters.apply("m1", EVENT)
    assert result == Filtered('filters[2]: drop if traits.plan = "pro"')


def test_only_filters_what_does_not_match_and_names_itself() -> None:
    filters = Filters(parse('type = "track"'), [])
    assert filters.apply("m1", EVENT) == Filtered('only: type = "track"')
    assert filters.apply("m1", {**EVENT, "type": "track"}) == Kept({**EVENT, "type": "track"}, changed=False)


def test_property_filters_report_a_changed_event_only_when_they_changed_it() -> None:
    dropping = Filters(None, [_rule(DropProperties((split_path("traits.phone"),)))])
    assert dropping.apply("m1", EVENT) == Kept(EVENT, changed=False)
    allowing = Filters(None, [_rule(AllowProperties((split_path("traits.plan"),)), 'type = "identify"')])
    kept = allowing.apply("m1", EVENT)
    assert isinstance(kept, Kept) and kept.changed and kept.event["traits"] == {"plan": "pro"}


def test_sampling_one_in_ten_keeps_about_a_thousand_of_ten_thousand_and_the_same_ones_each_time() -> None:
    filters = Filters(None, [_rule(Sample(0.1), 'type = "identify"', name="filters[3]")])
    ids = [str(uuid.UUID(int=i * 7919 + 13)) for i in range(10_000)]

    def kept(by: Filters) -> set[str]:
        return {m for m in ids if isinstance(by.apply(m, EVENT), Kept)}

    first = kept(filters)
    assert 900 <= len(first) <= 1_100
    assert kept(filters) == first  # deterministic per messageId
    assert kept(Filters(None, [_rule(Sample(0.1), 'type = "identify"')])) == first  # and across instances
    dropped = next(m for m in ids if m not in first)
    assert filters.apply(dropped, EVENT) == Filtered('filters[3]: sample 0.1 if type = "identify"')


def test_sampling_leaves_events_that_do_not_match_the_condition_alone() -> None:
    filters = Filters(None, [_rule(Sample(0.01), 'type = "track"')])
    assert all(isinstance(filters.apply(f"m{i}", EVENT), Kept) for i in range(200))


def test_a_larger_sample_keeps_every_event_a_smaller_one_keeps() -> None:
    ids = [f"id-{i}" for i in range(2_000)]
    small = {m for m in ids if isinstance(Filters(None, [_rule(Sample(0.1))]).apply(m, EVENT), Kept)}
    large = {m for m in ids if isinstance(Filters(None, [_rule(Sample(0.5))]).apply(m, EVENT), Kept)}
    assert small <= large


KEYS = st.sampled_from(["a", "b", "c"])
NESTED: st.SearchStrategy[Any] = st.recursive(
    st.integers() | st.text(max_size=3), lambda inner: st.dictionaries(KEYS, inner, max_size=3), max_leaves=10
)
PATHS = st.lists(KEYS, min_size=2, max_size=4).map(tuple)


@given(st.dictionaries(KEYS, NESTED, max_size=3), st.lists(PATHS, max_size=4))
def test_a_dropped_path_is_gone_and_nothing_else_changes(event: dict[str, Any], paths: list[tuple[str, ...]]) -> None:
    before = copy.deepcopy(event)
    out = drop_paths(event, paths)
    assert event == before
    for path in paths:
        node: Any = out
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        assert not (isinstance(node, dict) and path[-1] in node)
    assert drop_paths(out, paths) == out

"""Destination filters through the Config API: accepted, shown as given, applied without a restart,
and a bad expression refused with its field, position and what was expected."""

from __future__ import annotations

from eventrelay.filters.rules import Filtered, Kept
from eventrelay.runtime import Runtime

from .conftest import Client, lambda_destination

DESTS = "/api/v1/config/destinations"
FILTERS = [
    {"if": 'event = "Debug"', "drop": True},
    {"if": 'type = "page"', "sample": 0.25},
    {"drop_properties": ["context.ip"]},
]


def _worker_filters(runtime: Runtime, name: str):  # type: ignore[no-untyped-def]
    assert runtime.engine is not None
    return runtime.engine._workers[name].filters


async def test_filters_are_accepted_shown_as_given_and_applied_at_once(api: tuple[Runtime, Client]) -> None:
    runtime, client = api
    body = lambda_destination() | {"only": 'type != "screen"', "filters": FILTERS}
    created = await client.post(DESTS, body)
    assert created.status == 201, created.body
    view = created.json()
    assert view["only"] == 'type != "screen"'
    assert view["filters"] == [{**FILTERS[0]}, {**FILTERS[1]}, {"if": "true", "drop_properties": ["context.ip"]}]
    filters = _worker_filters(runtime, "api-dest")
    assert filters.apply("m", {"type": "track", "event": "Debug"}) == Filtered('filters[0]: drop if event = "Debug"')
    assert filters.apply("m", {"type": "screen"}) == Filtered('only: type != "screen"')

    replaced = await client.put(f"{DESTS}/api-dest", view)  # GET -> edit -> PUT round-trips
    assert replaced.status == 200, replaced.body
    patched = await client.patch(f"{DESTS}/api-dest", {"filters": [], "only": None})
    assert patched.status == 200 and patched.json()["filters"] == [] and patched.json()["only"] is None
    kept = _worker_filters(runtime, "api-dest").apply("m", {"type": "screen"})
    assert kept == Kept({"type": "screen"}, changed=False)


async def test_a_bad_filter_is_422_naming_field_position_and_expectation(api: tuple[Runtime, Client]) -> None:
    runtime, client = api
    assert (await client.post(DESTS, lambda_destination())).status == 201
    before = runtime.config
    cases = {
        "filters[1].if": ([FILTERS[0], {"if": 'type = "page" and', "drop": True}],
                          "at character 18: expected a condition"),
        "filters[0].sample": ([{"sample": 2}], "less than or equal to 1"),
        "filters[0]": ([{"if": "true"}], "exactly one of drop, sample, drop_properties, allow_properties"),
        "only": ("type = track'", "at character 13: expected"),
    }  # fmt: skip
    for field, (value, message) in cases.items():
        key = "only" if field == "only" else "filters"
        answer = await client.patch(f"{DESTS}/api-dest", {key: value})
        assert answer.status == 422, (field, answer.body)
        error = answer.json()["error"]["errors"][0]
        assert error["field"] == field, error
        assert message in error["message"], error
        assert runtime.config is before

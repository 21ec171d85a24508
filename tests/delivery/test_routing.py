"""Routing: sources, the integrations object, and the destination's own wants()."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.delivery.routing import route

from .conftest import FakeDestination

SETTINGS = {"lambda": "fn", "region": "us-west-2", "role_address": "arn:aws:iam::123456789012:role/r"}


def cfg(name: str, **kw: Any) -> DestinationConfig:
    return DestinationConfig.model_validate({"name": name, "settings": SETTINGS, **kw})


class Picky(FakeDestination):
    def wants(self, event: Mapping[str, Any]) -> bool:
        return event.get("type") != "screen"


CONFIGS = [cfg("lam"), cfg("web-only", sources=["web"]), cfg("off", enabled=False)]
DESTS: dict[str, Any] = {c.name: FakeDestination(c.name) for c in CONFIGS}


def names(
    event: Mapping[str, Any],
    source: str = "web",
    configs: list[DestinationConfig] = CONFIGS,
    dests: dict[str, Any] = DESTS,
) -> tuple[str, ...]:
    return route(configs, dests, source, event)


def test_enabled_destinations_for_the_source_get_the_event() -> None:
    assert names({"type": "track"}) == ("lam", "web-only")
    assert names({"type": "track"}, source="ios") == ("lam",)


def test_all_false_excludes_and_explicit_keys_override_it() -> None:
    assert names({"integrations": {"All": False}}) == ()
    assert names({"integrations": {"All": False, "AWS Lambda": True}}) == ("lam", "web-only")
    assert names({"integrations": {"All": False, "Amazon Lambda": True}}) == ("lam", "web-only")
    assert names({"integrations": {"All": False, "lam": True}}) == ("lam",)
    assert names({"integrations": {"AWS Lambda": False}}) == ()
    assert names({"integrations": {"All": True, "web-only": False}}) == ("lam",)


def test_the_destinations_own_name_wins_over_the_catalog_name() -> None:
    assert names({"integrations": {"AWS Lambda": False, "lam": True}}) == ("lam",)
    assert names({"integrations": {"AWS Lambda": True, "lam": False}}) == ("web-only",)


def test_catalog_names_are_case_sensitive_as_in_segment() -> None:
    assert names({"integrations": {"All": False, "aws lambda": True}}) == ()


def test_an_options_object_counts_as_enabled() -> None:
    assert names({"integrations": {"All": False, "AWS Lambda": {"some": "option"}}}) == ("lam", "web-only")


def test_segment_io_true_from_the_browser_routes_as_usual() -> None:
    assert names({"integrations": {"Segment.io": True}}) == ("lam", "web-only")
    assert names({"integrations": {"Segment.io": False}}) == ("lam", "web-only")


def test_integrations_that_is_not_an_object_is_ignored() -> None:
    assert names({"integrations": "nonsense"}) == ("lam", "web-only")
    assert names({"integrations": None}) == ("lam", "web-only")


def test_the_destination_decides_on_call_types_and_events() -> None:
    configs = [cfg("picky"), cfg("all")]
    dests: dict[str, Any] = {"picky": Picky("picky"), "all": FakeDestination("all")}
    assert names({"type": "screen"}, configs=configs, dests=dests) == ("all",)
    assert names({"type": "page"}, configs=configs, dests=dests) == ("picky", "all")


def test_a_configured_destination_without_an_instance_is_skipped() -> None:
    assert names({"type": "track"}, dests={"lam": DESTS["lam"]}) == ("lam",)


KEYS = st.sampled_from(["All", "AWS Lambda", "Amazon Lambda", "lam", "Segment.io", "Other"])
VALUES = st.one_of(st.booleans(), st.just({}), st.just({"x": 1}))


@given(st.dictionaries(KEYS, VALUES))
def test_routing_follows_the_most_specific_key(integrations: dict[str, Any]) -> None:
    got = "lam" in names({"integrations": integrations}, configs=[cfg("lam")], dests=DESTS)
    for key in ("lam", "AWS Lambda", "Amazon Lambda", "All"):
        if key in integrations:
            assert got == (integrations[key] is not False)
            return
    assert got

"""Routing: which configured destinations get an event.

A destination gets an event when all of these hold:

1. it is ``enabled``;
2. its ``sources`` is unset (every source) or names the event's source;
3. the event's ``integrations`` object allows it. ``All`` defaults to true; a key naming the
   destination overrides ``All``: the destination's own configured name first, then its
   type's Segment catalog names (``destinations/registry.py``; for ``aws_lambda``:
   ``"AWS Lambda"``, ``"Amazon Lambda"``, case-sensitive as Segment matches them). A value that
   is an object (destination options) counts as true. Other keys (``"Segment.io": true`` from
   analytics.js) are irrelevant;
4. the destination itself ``wants`` it (call-type functions, the track ``events`` allow-list).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.destinations import registry
from eventrelay.destinations.base import Destination


def route(
    dest_configs: Sequence[DestinationConfig],
    destinations: Mapping[str, Destination],
    source: str,
    event: Mapping[str, Any],
) -> tuple[str, ...]:
    """Names of the destinations that get ``event`` from ``source``, in configuration order."""
    integrations = _integrations(event)
    return tuple(
        cfg.name
        for cfg in dest_configs
        if cfg.enabled
        and (cfg.sources is None or source in cfg.sources)
        and integration_allows(integrations, cfg.name, registry.catalog_names(cfg.type))
        and cfg.name in destinations
        and destinations[cfg.name].wants(event)
    )


def integration_allows(integrations: Mapping[str, Any], name: str, catalog_names: Sequence[str]) -> bool:
    """Whether ``integrations`` lets the destination ``name`` (or its catalog names) have the event."""
    for key in (name, *catalog_names):
        if key in integrations:
            return _enabled(integrations[key])
    return _enabled(integrations.get("All", True))


_NONE: Mapping[str, Any] = {}


def _integrations(event: Mapping[str, Any]) -> Mapping[str, Any]:
    value = event.get("integrations")
    return value if isinstance(value, dict | Mapping) else _NONE  # dict first: events are parsed JSON


def _enabled(value: Any) -> bool:
    """``true`` or an options object enable; ``false``, ``null``, ``0``, ``""`` disable."""
    if type(value) is bool:  # the usual case ({"All": true}); cheaper than the ABC check below
        return value
    if isinstance(value, Mapping):
        return True
    return bool(value)

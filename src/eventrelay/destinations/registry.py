"""The destination types eventrelay knows: one line per type (its ``DestinationType``).

The configuration model, routing, the runtime, the Config and admin APIs, ``check``, ``send`` and
the IAM tooling all look a type up here, so a new type is its folder plus its line below.
"""

from __future__ import annotations

from typing import Any

from eventrelay.core.errors import ConfigError
from eventrelay.destinations.aws_lambda.entry import AWS_LAMBDA
from eventrelay.destinations.kind import DestinationType

_TYPES: dict[str, DestinationType[Any]] = {}


def register(kind: DestinationType[Any]) -> None:
    """Add a destination type; refuses a second type of the same name."""
    if kind.name in _TYPES:
        raise ValueError(f"destination type {kind.name!r} is already registered")
    _TYPES[kind.name] = kind


def unregister(name: str) -> None:
    """Remove a type registered with ``register`` (tests and plugins that come and go)."""
    _TYPES.pop(name, None)


def find(name: str) -> DestinationType[Any] | None:
    """The type named ``name``, or None."""
    return _TYPES.get(name)


def get(name: str) -> DestinationType[Any]:
    """The type named ``name``; a ``ConfigError`` naming the known types when there is none."""
    kind = _TYPES.get(name)
    if kind is None:
        raise ConfigError("type", f"unknown destination type {name!r} (known: {', '.join(_TYPES) or 'none'})")
    return kind


def names() -> tuple[str, ...]:
    """Every registered type name, in registration order."""
    return tuple(_TYPES)


def catalog_names(name: str) -> tuple[str, ...]:
    """The Segment catalog names of type ``name`` (none for an unknown type)."""
    kind = _TYPES.get(name)
    return kind.catalog_names if kind is not None else ()


register(AWS_LAMBDA)

"""The destination interface: one configured destination that can take one event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from eventrelay.core.outcome import Outcome


@runtime_checkable
class Destination(Protocol):
    """A configured destination instance (e.g. one ``aws_lambda`` entry of the config)."""

    name: str

    def wants(self, event: Mapping[str, Any]) -> bool:
        """Routing that depends on the destination's own settings (call types, track
        ``events`` allow-list). Source and ``integrations`` routing happen before this."""
        ...

    async def send(
        self,
        body: bytes,
        event: Mapping[str, Any],
        timeout: float,  # noqa: ASYNC109 (a plain number the destination applies per attempt)
        *,
        source: str | None = None,
    ) -> Outcome:
        """Deliver one event (``body`` is its JSON, ``event`` the parsed form) within
        ``timeout`` seconds and classify the result. Never raises for a delivery failure:
        every failure is an ``Outcome`` with a category. ``source`` is the name of the source
        the event came from (the External ID when no workspace id is configured)."""
        ...

    async def close(self) -> None:
        """Release connections."""


@runtime_checkable
class CheckableDestination(Destination, Protocol):
    """A destination that can test its connection without delivering an event (``eventrelay
    check``, ``POST /api/v1/destinations/{name}/check``)."""

    async def check(
        self,
        *,
        source: str | None = None,
        timeout: float = ...,  # noqa: ASYNC109 (a plain number the destination applies per target)
    ) -> list[tuple[str, Outcome]]:
        """Test every target this destination delivers to (for ``aws_lambda``: assume the role and
        ``DryRun`` each function) within ``timeout`` seconds each. Returns (target as configured,
        outcome) pairs; never raises for a failed target. ``source`` is as for ``send``."""
        ...

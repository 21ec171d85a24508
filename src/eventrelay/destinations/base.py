"""The destination interface: one configured destination that can take one event (and, for a
``BatchDestination``, many events in one request).

A destination's ``send`` owns the attempt: it bounds it by the timeout, measures its latency and
classifies what happened into one ``Outcome`` (category and verdict). The delivery worker only
turns that outcome into ack, retry or dead letter (``delivery/decide.py``), under the delivery
policy. The contract suite (``tests/contract/test_destination_contract.py``) checks every
destination type against this.

A destination configured to batch is a ``BatchDestination``: its ``batch`` limits say how the
delivery worker groups due events (``delivery/batcher.py``), and ``send_batch`` owns one attempt
of a whole batch, answering one ``Outcome`` per event (``delivery/batch_results.py`` settles them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from eventrelay.core.outcome import Outcome


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One event for one destination: what every ``send`` is given."""

    body: bytes  # the event's JSON, as stored and as it is sent
    event: Mapping[str, Any]  # the same event parsed (routing by call type, track event name)
    source: str  # the source the event came from (the External ID when no workspace id is configured)
    message_id: str


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
        request: SendRequest,
        timeout: float,  # noqa: ASYNC109 (a plain number the destination applies per attempt)
    ) -> Outcome:
        """Deliver one event and classify the result, answering within ``timeout`` seconds (a
        destination that has no answer by then returns a ``timeout`` outcome). Never raises:
        every failure, a bug of its own included, is an ``Outcome`` with a category and a verdict;
        its ``latency_ms`` is this attempt's."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent; a ``send`` after it still answers with an Outcome."""


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


@runtime_checkable
class TargetedDestination(Destination, Protocol):
    """A destination whose events go to targets of their own capacity (``aws_lambda``: its
    functions). Delivery keeps one adaptive in-flight limit per target (``delivery/flow.py``):
    a throttled function is slowed without slowing the destination's other functions."""

    def target(self, event: Mapping[str, Any]) -> str:
        """The target ``event`` goes to (a function name, without its qualifier: the versions and
        aliases of one function share its concurrency)."""
        ...

    def targets(self) -> tuple[str, ...]:
        """Every target this destination delivers to, as ``target`` names them."""
        ...

    async def reserved_concurrency(
        self,
        target: str,
        timeout: float,  # noqa: ASYNC109 (a plain number the destination applies to the request)
    ) -> int | None:
        """The target's reserved concurrency (Lambda ``GetFunctionConcurrency``), or None when it
        has none or it cannot be read (not allowed, unreachable): then the configured concurrency
        is the ceiling. Never raises."""
        ...


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How a batching destination wants its events grouped: a batch leaves when it holds
    ``max_events``, when one more event would take its payload over ``max_bytes``, or
    ``max_wait`` seconds after its first event, whichever comes first."""

    max_events: int
    max_bytes: int  # the whole encoded payload
    max_wait: float  # seconds
    envelope_bytes: int = 0  # payload bytes around the events (for aws_lambda: {"batch":[ and ]})
    separator_bytes: int = 0  # payload bytes between two events

    def payload_bytes(self, events: int, event_bytes: int) -> int:
        """The payload size of ``events`` events whose bodies total ``event_bytes``."""
        return self.envelope_bytes + event_bytes + self.separator_bytes * max(0, events - 1)


@dataclass(slots=True)
class BatchOutcome:
    """What one attempt of a batch produced.

    ``invoke`` is the request's own outcome (latency, request, response): not ``ok`` means the
    whole batch failed (every event shares it). ``events`` holds one outcome per event, in the
    order given: for a request that succeeded, ``invoke`` for the delivered events and an
    outcome of their own for those the destination reported failed."""

    invoke: Outcome
    events: list[Outcome]
    payload_bytes: int
    warning: str | None = None  # something the answer said that was ignored (kept with each record)


@runtime_checkable
class BatchDestination(Destination, Protocol):
    """A destination configured to send many events per request. The delivery worker batches
    only for these (one event per ``send`` otherwise)."""

    batch: BatchLimits

    def batch_group(self, request: SendRequest) -> str:
        """Events may share a batch only within one group (for aws_lambda: the function the
        event's call type goes to, and the External ID the role is assumed with)."""
        ...

    async def send_batch(
        self,
        requests: Sequence[SendRequest],
        timeout: float,  # noqa: ASYNC109 (a plain number the destination applies per attempt)
    ) -> BatchOutcome:
        """Deliver ``requests`` (one group, within ``batch``) as one attempt, answering within
        ``timeout`` seconds. Never raises, like ``send``."""
        ...

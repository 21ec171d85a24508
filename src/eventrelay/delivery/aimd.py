"""An adaptive in-flight limit for one delivery target (a Lambda function): AIMD, as TCP's
congestion window and Netflix's concurrency-limits adapt to what the other side can take.

    throttled (429)        limit = max(FLOOR, limit * CUT)       once per round: throttles of
                                                                 attempts started before the last
                                                                 cut do not cut again
                           Retry-After R: no attempt before now + R
                           already at FLOOR: no attempt for FLOOR_BACKOFF_MIN doubling up to
                           FLOOR_BACKOFF_MAX (a function that takes nothing is not hammered)
    accepted (the function ran: delivered or execution_error), while the limit was in use:
                           limit += GROWTH / limit               about +1 per round of attempts
                           limit += PROBE_GROWTH / limit         instead, from one below the limit
                                                                 the last throttle came at: probing
                                                                 costs a throttle, so probe slowly
    other outcomes (timeouts, transport errors) say nothing about the function's capacity.

``limit`` never exceeds ``ceiling``: the configured ``concurrency``, or the function's reserved
concurrency when eventrelay could read it (``cap``). In use: ``int(limit)``, at least ``FLOOR``.

Why these numbers (simulated against a function with reserved concurrency 4 and 50 ms per
invocation, starting at 64; measured the same way by ``tests/flow/test_adaptive_concurrency.py``):
CUT 0.5 wastes a quarter of the capacity after every probe; growing by 1 per round near the
capacity throttles ~15% of the attempts; a probe of 0.1 per round near the last throttle point
keeps throttles near 2% and throughput near 97% of the capacity, while a limit far below the
last throttle point (or one whose capacity grew: 1 above it without a throttle) still grows by
one per round.
"""

from __future__ import annotations

from enum import Enum

FLOOR = 1  # never fewer than one attempt in flight: the only way to learn the function is back
CUT = 0.75  # multiplicative decrease on a throttle
GROWTH = 1.0  # additive increase per round of successful attempts
PROBE_GROWTH = 0.1  # ... near the limit where the last throttle came
FLOOR_BACKOFF_MIN = 0.05  # seconds without attempts after a throttle at the floor, doubling ...
FLOOR_BACKOFF_MAX = 5.0  # ... up to this; reset by the next accepted attempt


class Signal(Enum):
    """What an attempt says about the target's capacity."""

    ACCEPTED = "accepted"  # the function ran (delivered, or it raised)
    THROTTLED = "throttled"  # 429 TooManyRequestsException / ThrottlingException
    NONE = "none"  # timeouts, transport and AWS errors, cancelled attempts


class AimdLimit:
    """The in-flight limit of one target; ``acquire`` before an attempt, ``release`` after it."""

    __slots__ = ("_floor_level", "configured", "epoch", "in_flight", "last_throttle", "limit", "not_before", "reserved")

    def __init__(self, configured: int) -> None:
        self.configured = configured  # the destination's delivery.concurrency: the ceiling
        self.reserved: int | None = None  # the function's reserved concurrency, when known
        self.limit = float(configured)
        self.in_flight = 0
        self.not_before = 0.0  # no attempt starts before this time (Retry-After, floor backoff)
        self.epoch = 0  # counts cuts; an attempt remembers the epoch it started in
        self.last_throttle: float | None = None  # the limit when the last cut came
        self._floor_level = 0

    @property
    def ceiling(self) -> int:
        return self.configured if self.reserved is None else max(FLOOR, min(self.configured, self.reserved))

    @property
    def current(self) -> int:
        """Attempts allowed in flight now."""
        return max(FLOOR, min(self.ceiling, int(self.limit)))

    def room(self, now: float) -> int:
        """Attempts that may start now."""
        if now < self.not_before:
            return 0
        return max(0, self.current - self.in_flight)

    def acquire(self) -> int:
        """One attempt starts; returns the epoch to hand back to ``release``."""
        self.in_flight += 1
        return self.epoch

    def release(self, epoch: int, signal: Signal, now: float, retry_after: float | None = None) -> None:
        """The attempt started in ``epoch`` ended with ``signal``."""
        was_full = self.in_flight >= self.current
        self.in_flight -= 1
        if signal is Signal.THROTTLED:
            self._throttled(epoch, now, retry_after)
        elif signal is Signal.ACCEPTED:
            self._floor_level = 0
            if was_full:
                self._grow()

    def cap(self, reserved: int | None) -> None:
        """The function's reserved concurrency is ``reserved`` (None: none, or unknown): the
        limit starts there and never exceeds it (nor the configured concurrency)."""
        first = self.reserved is None and reserved is not None
        self.reserved = reserved
        if first or self.limit > self.ceiling:
            self.limit = float(self.ceiling)

    def _grow(self) -> None:
        near = self.last_throttle is not None and self.limit >= self.last_throttle - 1
        self.limit = min(float(self.ceiling), self.limit + (PROBE_GROWTH if near else GROWTH) / self.limit)
        if self.last_throttle is not None and self.limit > self.last_throttle + 1:
            self.last_throttle = None  # the capacity grew: grow fast again

    def _throttled(self, epoch: int, now: float, retry_after: float | None) -> None:
        if retry_after:
            self.not_before = max(self.not_before, now + retry_after)
        if epoch != self.epoch:
            return  # started before the last cut: that cut already answered this round
        self.epoch += 1
        if self.limit <= FLOOR:
            backoff = min(FLOOR_BACKOFF_MAX, FLOOR_BACKOFF_MIN * 2**self._floor_level)
            self._floor_level += 1
            self.not_before = max(self.not_before, now + backoff)
        self.last_throttle = self.limit
        self.limit = max(float(FLOOR), self.limit * CUT)

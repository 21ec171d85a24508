"""The retry policy: full-jitter exponential backoff within a window and an attempt cap.

    delay(n) = uniform(0, min(cap, base * 2**(n-1)))      n = attempts made so far (>= 1)

The first retry comes within ``base`` (default 2 s), the bound doubles per attempt up to
``cap`` (default 5 min). When ``received_at + window`` has passed, or ``max_attempts`` are
made, there is no retry: the event is marked failed and kept (dead letter). ``received_at`` is
the window's start: the event's receipt, or its last re-drive (see ``decide.window_start``).
A destination's ``Retry-After`` raises the delay to at least that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry_at: float | None  # None: give up (dead letter as failed)
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 2.0
    cap: float = 300.0
    window: float = 4 * 3600.0
    max_attempts: int = 50

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        bound = min(self.cap, self.base * (2 ** max(0, attempts - 1)))
        return (rng or random).uniform(0.0, bound)

    def decide(
        self,
        *,
        attempts: int,
        received_at: float,
        now: float,
        retry_after: float | None = None,
        rng: random.Random | None = None,
        window_from: str = "receipt",
    ) -> RetryDecision:
        """``attempts`` includes the attempt that just failed; ``window_from`` names what
        ``received_at`` is (receipt, re-drive) in the reason given when the window has passed."""
        if attempts >= self.max_attempts:
            cap = self.max_attempts
            return RetryDecision(None, f"gave up after {attempts} attempts (max_attempts {cap})")
        deadline = received_at + self.window
        delay = max(self.delay(attempts, rng), retry_after or 0.0)
        at = now + delay
        if at > deadline:
            if now >= deadline:
                return RetryDecision(None, f"retry window of {self.window:.0f}s after {window_from} has passed")
            at = deadline
        return RetryDecision(at, f"retry {attempts + 1} in {at - now:.1f}s")

"""Which delivered attempts keep their event in a delivery log: a sample, for the page's recent
successful deliveries ("You sent" beside the response), as failed attempts always keep theirs."""

from __future__ import annotations

from eventrelay.core.outcome import NOT_FAILURES, Category
from eventrelay.core.records import AttemptRecord, finished_at

DELIVERED_SAMPLE_EVERY = 1.0  # seconds: at most one delivered attempt per destination and second keeps
# its event, for the page's samples of successful deliveries (a failed attempt always keeps its own);
# keeping every delivered event would write each body a second time.


class DeliveredSamples:
    """Which delivered attempts keep their event (``DELIVERED_SAMPLE_EVERY``)."""

    def __init__(self, every: float = DELIVERED_SAMPLE_EVERY) -> None:
        self.every = every
        self._last: dict[str, float] = {}  # destination -> when the last kept one ended

    def keep(self, a: AttemptRecord) -> bool:
        if a.category is not Category.DELIVERED or not a.event:
            return False
        end = finished_at(a)
        if end - self._last.get(a.destination, -self.every) < self.every:
            return False
        self._last[a.destination] = end
        return True


def keeps_event(a: AttemptRecord, sampled: bool) -> bool:
    """Whether the record of ``a`` keeps its event body: a failed attempt always, a delivered one
    when ``sampled`` (``DeliveredSamples.keep``), an event never sent (filtered) never."""
    if not a.event:
        return False
    return sampled if a.category is Category.DELIVERED else a.category not in NOT_FAILURES

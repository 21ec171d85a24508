"""``archive:``: how long accepted events are kept after delivery, for replay.

    archive: {retention: 7d, max_bytes: 2GB}     # the defaults; whichever limit comes first
    archive: {enabled: false}                    # keep nothing after delivery (replay finds nothing)

The oldest events go first. On SQLite the archive is a table of the queue's file in the data
directory (its size on the page and ``/metrics``); on JetStream it is a stream of its own whose
limits are these (``retention`` is its max age, ``max_bytes`` its max bytes, which JetStream
reserves of its storage).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from eventrelay.core.duration import Duration
from eventrelay.core.size import Size

DEFAULT_RETENTION = 7 * 86400.0  # a week: the page's longest range, and a long weekend's outage plus a fix
DEFAULT_MAX_BYTES = 2 * 10**9  # 2 GB: about two million 1 KB events


class Archive(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Keep accepted events after delivery. Default true."""
    retention: Duration = Field(default=DEFAULT_RETENTION, gt=0)
    """How long an event is kept after its receipt. Default 7d."""
    max_bytes: Size = Field(default=DEFAULT_MAX_BYTES, ge=1_000_000)
    """Most bytes of events kept (the oldest go first beyond it). Default 2GB; at least 1MB."""

"""queue/: durable storage of accepted events and per-destination work.

``base.Queue`` is the interface; ``sqlite`` (embedded default) and ``jetstream`` (scale-out)
implement it; ``memory`` is the in-memory fake for unit tests. ``runtime.build.open_queue`` picks one
from config.
"""

from eventrelay.core.records import Accepted, Job
from eventrelay.queue.base import Queue

__all__ = ["Accepted", "Job", "Queue"]

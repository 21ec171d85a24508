"""Internal telemetry: the Prometheus counters and histograms every stage updates (names ``eventrelay_*``).

One registry per process (``REGISTRY``); ``/metrics`` renders it (``render``). With ``serve
--workers`` each worker writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``
(``prometheus_client``'s multiprocess mode, chosen at import from that variable) and ``render``
sums them: whichever worker answers, the scrape shows the deployment. Each stage calls the small
functions here (ingest, queue depth) or a ``DestinationMeter`` (a delivery worker's) rather
than touching metric objects, so names stay in one place.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

REGISTRY = CollectorRegistry(auto_describe=True)

INGESTED = Counter("eventrelay_events_ingested_total", "Events accepted and durable", ["source"], registry=REGISTRY)
DUPLICATES = Counter(
    "eventrelay_events_duplicate_total", "Events dropped as duplicate messageId", ["source"], registry=REGISTRY
)
REJECTED = Counter(
    "eventrelay_events_rejected_total", "Events or requests refused at ingest", ["reason"], registry=REGISTRY
)
ATTEMPTS = Counter(
    "eventrelay_delivery_attempts_total",
    "Delivery attempts by outcome category",
    ["destination", "category"],
    registry=REGISTRY,
)
DELIVERED = Counter("eventrelay_events_delivered_total", "Events delivered", ["destination"], registry=REGISTRY)
FAILED = Counter(
    "eventrelay_events_failed_total",
    "Events that ended failed or discarded, by category",
    ["destination", "category"],
    registry=REGISTRY,
)
FILTERED = Counter(
    "eventrelay_events_filtered_total",
    "Events a destination filter kept from the destination (not sent; not a failure)",
    ["destination"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "eventrelay_delivery_retries_total", "Attempts scheduled for retry", ["destination"], registry=REGISTRY
)
# Per worker with --workers (each worker holds its share): the deployment's limit is their sum.
CONCURRENCY_LIMIT = Gauge(
    "eventrelay_concurrency_limit",
    "Attempts allowed in flight per destination and function (adaptive: AIMD on throttles)",
    ["destination", "function"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
# Read from the one archive every worker shares (its meta row): the deployment's value is any live worker's.
ARCHIVE_BYTES = Gauge(
    "eventrelay_archive_bytes",
    "Bytes of accepted events kept for replay",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
ARCHIVE_EVENTS = Gauge(
    "eventrelay_archive_events", "Accepted events kept for replay", registry=REGISTRY, multiprocess_mode="livemax"
)
# Every worker reads the one shared count, so the deployment's value is any live worker's: the max.
QUEUE_DEPTH = Gauge(
    "eventrelay_queue_depth",
    "Jobs waiting per destination",
    ["destination"],
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
ATTEMPT_SECONDS = Histogram(
    "eventrelay_attempt_duration_seconds",
    "Latency of one delivery attempt",
    ["destination"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
END_TO_END_SECONDS = Histogram(
    "eventrelay_end_to_end_latency_seconds",
    "receivedAt to successful delivery",
    ["destination"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400),
)

BATCH_EVENTS = Histogram(
    "eventrelay_batch_events",
    "Events per batch invoke (destinations with batch set)",
    ["destination"],
    registry=REGISTRY,
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
BATCH_BYTES = Histogram(
    "eventrelay_batch_bytes",
    "Payload bytes per batch invoke (destinations with batch set)",
    ["destination"],
    registry=REGISTRY,
    buckets=(1024, 4096, 16384, 65536, 262144, 524288, 1048576, 2097152, 4194304, 6291456),
)

# labels() takes a lock and builds a key (~25 us): each labelled child is looked up once, then
# cached (label values are source, destination, category and reason names: a small, bounded set).


def render() -> bytes:
    """The Prometheus text format of this process's metrics, or of every worker's (summed;
    the queue depth: the largest) when ``PROMETHEUS_MULTIPROC_DIR`` is set."""
    directory = os.environ.get(MULTIPROCESS_DIR_ENV)
    if directory is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


@functools.cache
def _child(metric: Any, *labels: str) -> Any:
    return metric.labels(*labels)


def ingested(source: str, count: int = 1) -> None:
    _child(INGESTED, source).inc(count)


def duplicate(source: str, count: int = 1) -> None:
    _child(DUPLICATES, source).inc(count)


def rejected(reason: str, count: int = 1) -> None:
    _child(REJECTED, reason).inc(count)


def archive_size(events: int, size: int) -> None:
    ARCHIVE_EVENTS.set(events)
    ARCHIVE_BYTES.set(size)


def queue_depth(destination: str, depth: int) -> None:
    _child(QUEUE_DEPTH, destination).set(depth)


def concurrency_limit(destination: str, function: str, limit: int) -> None:
    _child(CONCURRENCY_LIMIT, destination, function).set(limit)


class DestinationMeter:
    """One destination's delivery metrics, their children looked up once: ``labels()`` costs
    ~25 us a call, which at thousands of deliveries/s is a visible share of the engine's CPU."""

    def __init__(self, destination: str) -> None:
        self._name = destination
        self._attempt_seconds = ATTEMPT_SECONDS.labels(destination)
        self._delivered = DELIVERED.labels(destination)
        self._end_to_end = END_TO_END_SECONDS.labels(destination)
        self._retried = RETRIES.labels(destination)
        self._filtered = FILTERED.labels(destination)
        self._attempts: dict[str, Any] = {}
        self._failed: dict[str, Any] = {}

    def attempt(self, category: str, seconds: float) -> None:
        """One attempt ended in ``category`` after ``seconds``."""
        self._attempts_of(category).inc()
        self._attempt_seconds.observe(seconds)

    def delivered(self, end_to_end_seconds: float) -> None:
        """An event was delivered, ``end_to_end_seconds`` after its receipt."""
        self._delivered.inc()
        self._end_to_end.observe(end_to_end_seconds)

    def attempts(self, categories: Mapping[str, int], seconds: float) -> None:
        """One invoke of a batch: its events' attempts by category, and its latency (observed
        once: the invoke is the attempt that took ``seconds``)."""
        for category, count in categories.items():
            self._attempts_of(category).inc(count)
        self._attempt_seconds.observe(seconds)

    def _attempts_of(self, category: str) -> Any:
        counter = self._attempts.get(category)
        if counter is None:
            counter = self._attempts[category] = ATTEMPTS.labels(self._name, category)
        return counter

    def batch(self, events: int, payload_bytes: int) -> None:
        """One batch invoke of ``events`` events in ``payload_bytes`` bytes."""
        _child(BATCH_EVENTS, self._name).observe(events)
        _child(BATCH_BYTES, self._name).observe(payload_bytes)

    def retried(self) -> None:
        self._retried.inc()

    def filtered(self) -> None:
        """A destination filter kept an event from the destination."""
        self._filtered.inc()

    def failed(self, category: str) -> None:
        """An event ended failed or discarded."""
        counter = self._failed.get(category)
        if counter is None:
            counter = self._failed[category] = FAILED.labels(self._name, category)
        counter.inc()

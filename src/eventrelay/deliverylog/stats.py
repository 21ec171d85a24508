"""Statistics and samples: the arithmetic every delivery log store shares, and their JSON form.

Percentiles use the nearest-rank method: P(p) of N sorted values is the value at rank
``ceil(p/100 * N)`` (1-based), so P50 of 1..100 is 50 and P99 is 99; no interpolation, every
figure shown is a latency that really happened.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import orjson

from eventrelay.core.duration import parse_duration
from eventrelay.core.outcome import HUMAN_NAMES, NOT_FAILURES, Category
from eventrelay.core.records import AttemptRecord, finished_at
from eventrelay.deliverylog.base import Bucket, DeliveryRow, ErrorCount, Latency, Stats
from eventrelay.deliverylog.hints import hint

RANGES: dict[str, float] = {"10m": 600.0, "1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
SERIES_BUCKETS = 60  # points of the chart: enough to see a spike, few enough to draw and send cheaply
MAX_RANGE_SECONDS = 366 * 86400.0  # a custom range longer than a year is a typo, not a question
STATUSES = ("delivered", "failed", "retrying", "discarded", "filtered")
REDACTED = "[redacted]"
# Keys whose values are never shown in a sample, at any depth (defence in depth: the destination
# already keeps credentials out of ``request``). ``writeKey`` may arrive in an event body.
SECRET_KEY_PATTERN = re.compile(
    r"secret|token|password|passwd|authorization|credential|signature|x-amz-security|access.?key|write.?key",
    re.IGNORECASE,
)


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_of(values_ms: Iterable[float]) -> Latency:
    ordered = sorted(values_ms)
    return Latency(len(ordered), percentile(ordered, 50), percentile(ordered, 95), percentile(ordered, 99))


def latencies_of(delivered: Iterable[tuple[float, int]]) -> tuple[Latency, Latency]:
    """From (receipt-to-delivery ms, attempts) of delivered events: the latency of all of them,
    and of those delivered by their first attempt."""
    values = list(delivered)
    return latency_of(ms for ms, _ in values), latency_of(ms for ms, attempts in values if attempts == 1)


def bucket_width(since: float, until: float) -> float:
    return max(1.0, (until - since) / SERIES_BUCKETS)


def bucket_index(at: float, since: float, width: float) -> int:
    return min(SERIES_BUCKETS - 1, max(0, int((at - since) // width)))


def empty_buckets(since: float, width: float) -> list[Bucket]:
    return [Bucket(start=since + i * width) for i in range(SERIES_BUCKETS)]


def add_to_bucket(buckets: list[Bucket], index: int, category: str, count: int) -> None:
    bucket = buckets[index]
    if category == Category.DELIVERED:
        bucket.delivered += count
    elif category == Category.FILTERED:
        bucket.filtered += count
    else:
        bucket.errors[category] = bucket.errors.get(category, 0) + count


def sort_errors(errors: Iterable[ErrorCount]) -> list[ErrorCount]:
    return sorted(errors, key=lambda e: (-e.attempts, str(e.category)))


def compute_stats(
    destination: str,
    since: float,
    until: float,
    rows: Iterable[DeliveryRow],
    records: Iterable[AttemptRecord],
) -> Stats:
    """Stats from rows and records in memory (the fake store; SQLite does the same in SQL)."""
    counts = dict.fromkeys(STATUSES, 0)
    latencies: list[tuple[float, int]] = []
    for row in rows:
        if row.destination != destination or not since <= row.updated_at <= until:
            continue
        counts[row.status] += 1
        if row.status == "delivered" and row.delivered_at is not None:
            latencies.append(((row.delivered_at - row.received_at) * 1000.0, row.attempts))
    width = bucket_width(since, until)
    buckets = empty_buckets(since, width)
    per_category: dict[Category, tuple[int, set[str]]] = {}
    for rec in records:
        end = finished_at(rec)
        if rec.destination != destination or not since <= end <= until:
            continue
        add_to_bucket(buckets, bucket_index(end, since, width), str(rec.category), 1)
        if rec.category not in NOT_FAILURES:
            n, ids = per_category.get(rec.category, (0, set()))
            ids.add(rec.message_id)
            per_category[rec.category] = (n + 1, ids)
    errors = sort_errors(ErrorCount(cat, n, len(ids)) for cat, (n, ids) in per_category.items())
    total, first = latencies_of(latencies)
    return Stats(destination, since, until, counts, total, errors, buckets, width, first)


def stats_json(stats: Stats, *, external_id: str | None = None, timeout_s: float | None = None) -> dict[str, Any]:
    """The stats API answer: counts, latency, error table (with names and fix hints), series."""
    return {
        "destination": stats.destination,
        "since": stats.since,
        "until": stats.until,
        "counts": stats.counts,
        "latency_ms": latency_json(stats.latency),
        "first_attempt_latency_ms": latency_json(stats.first_attempt),
        "errors": [_error_json(e, external_id, timeout_s) for e in stats.errors],
        "series": {
            "bucket_seconds": stats.bucket_seconds,
            "buckets": [
                {"start": b.start, "delivered": b.delivered, "filtered": b.filtered, "errors": b.errors}
                for b in stats.buckets
            ],
        },
    }


def latency_json(lat: Latency) -> dict[str, Any]:
    """Percentiles in ms and how many events they are over."""
    return {"count": lat.count, "p50": lat.p50_ms, "p95": lat.p95_ms, "p99": lat.p99_ms}


def _error_json(e: ErrorCount, external_id: str | None, timeout_s: float | None) -> dict[str, Any]:
    h = hint(e.category, external_id=external_id, timeout_s=timeout_s)
    return {
        "category": str(e.category),
        "name": h.name,
        "attempts": e.attempts,
        "events": e.events,
        "description": h.description,
        "hint": h.fix,
    }


def sample_json(rec: AttemptRecord) -> dict[str, Any]:
    """One failed attempt as the page shows it: You sent / Request to / Response from destination."""
    request = scrub(dict(rec.request))
    request.setdefault("function", rec.function)
    request.setdefault("qualifier", rec.qualifier)
    request.setdefault("invocation_type", rec.invocation_type)
    return {
        "message_id": rec.message_id,
        "destination": rec.destination,
        "category": str(rec.category),
        "category_name": HUMAN_NAMES.get(rec.category, str(rec.category)),
        "attempt": rec.attempt,
        "status": rec.status,
        "at": finished_at(rec),
        "filter": rec.filter,
        "replay": rec.replay,
        "you_sent": event_json(rec.event),
        "request": request,
        "batch": batch_json(rec),
        "warning": rec.warning,
        "response": {
            "status": rec.status_code,
            "error_type": rec.error_type,
            "error_message": rec.error_message,
            "log_tail": rec.log_tail,
            "executed_version": rec.executed_version,
            "body": rec.response_body,
        },
    }


def batch_json(rec: AttemptRecord) -> dict[str, Any] | None:
    """The batch the attempt's event travelled in (None: one event per invoke)."""
    if rec.batch_id is None:
        return None
    return {"id": rec.batch_id, "size": rec.batch_size, "bytes": rec.batch_bytes}


def attempt_json(rec: AttemptRecord) -> dict[str, Any]:
    """One attempt of the attempts API (a sample plus its timing)."""
    out = sample_json(rec)
    out.update(
        started_at=rec.started_at,
        latency_ms=rec.latency_ms,
        received_at=rec.received_at,
        source=rec.source,
        type=rec.call_type,
        next_attempt_at=rec.next_attempt_at,
    )
    return out


def event_json(body: bytes) -> Any:
    """The event as sent (secrets such as a body ``writeKey`` redacted); None when not kept."""
    if not body:
        return None
    try:
        return scrub(orjson.loads(body))
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def scrub(value: Any) -> Any:
    """A copy of ``value`` with the values of secret-looking keys replaced, at any depth."""
    if isinstance(value, dict):
        return {k: REDACTED if SECRET_KEY_PATTERN.search(str(k)) else scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def parse_when(value: str, now: float) -> float:
    """A point in time from ``value``: epoch seconds (``1790000000``), an ISO 8601 time
    (``2026-11-26T10:00:00Z``) or a duration back from now (``10m``, ``1h``, ``7d``).
    Raises ``ValueError`` naming the accepted forms."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) else _fail(value)
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        _fail(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _fail(value: str) -> NoReturn:
    raise ValueError(f"{value!r} is not a time: use epoch seconds, ISO 8601 or a duration back like 1h")


def time_range(range_name: str | None, since: str | None, until: str | None, now: float) -> tuple[float, float]:
    """``[since, until]`` from a named range (10m, 1h, 24h, 7d) or explicit bounds; default 1h.
    Raises ``ValueError`` naming the parameter."""
    if range_name is not None and range_name not in RANGES:
        raise ValueError(f"range: must be one of {', '.join(RANGES)}")
    try:
        end = parse_when(until, now) if until else now
    except ValueError as exc:
        raise ValueError(f"until: {exc}") from exc
    try:
        start = parse_when(since, now) if since else end - RANGES[range_name or "1h"]
    except ValueError as exc:
        raise ValueError(f"since: {exc}") from exc
    if not start < end:
        raise ValueError("since: must be before until")
    if end - start > MAX_RANGE_SECONDS:
        raise ValueError(f"since: a range is at most {MAX_RANGE_SECONDS / 86400:g} days")
    return start, end

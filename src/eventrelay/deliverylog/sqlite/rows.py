"""Attempt records to and from the SQLite delivery log's rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from eventrelay.core.outcome import Category
from eventrelay.core.records import AttemptRecord, error_text, finished_at
from eventrelay.deliverylog.base import DeliveryRow
from eventrelay.deliverylog.samples import keeps_event


def attempt_row(a: AttemptRecord, keep_delivered_event: bool = False) -> tuple[Any, ...]:
    """The ``attempts`` row of ``a`` (``INSERT_ATTEMPT``): the event body on a failure, and on a
    delivery when ``keep_delivered_event`` (a sample); never for a filtered event (not sent)."""
    kept = keeps_event(a, keep_delivered_event)
    return (
        a.message_id,
        a.destination,
        a.source,
        a.call_type,
        a.attempt,
        a.status,
        str(a.category),
        a.started_at,
        finished_at(a),
        a.latency_ms,
        a.received_at,
        a.function,
        a.qualifier,
        a.invocation_type,
        a.status_code,
        a.error_type,
        a.error_message,
        a.log_tail,
        a.executed_version,
        orjson.dumps(a.request).decode() if a.request else None,
        a.response_body,
        a.event if kept else None,
        a.next_attempt_at,
        a.batch_id,
        a.batch_size,
        a.batch_bytes,
        a.warning,
        a.filter,
        a.replay,
    )


def delivery_row(a: AttemptRecord) -> tuple[Any, ...]:
    """The ``deliveries`` row ``a`` leaves (``UPSERT_DELIVERY``)."""
    end = finished_at(a)
    return (
        a.message_id,
        a.destination,
        a.source,
        a.call_type,
        a.function,
        str(a.category),
        a.status,
        error_text(a),
        a.received_at,
        end,
        end if a.category is Category.DELIVERED else None,
        a.next_attempt_at,
        a.filter,
        a.replay,
    )


def to_attempt(r: Sequence[Any]) -> AttemptRecord:
    """An attempt from a row of ``ATTEMPT_COLUMNS``."""
    return AttemptRecord(
        message_id=r[0],
        destination=r[1],
        source=r[2],
        call_type=r[3],
        attempt=r[4],
        status=r[5],
        category=Category(r[6]),
        started_at=r[7],
        latency_ms=r[9],
        received_at=r[10],
        function=r[11],
        qualifier=r[12],
        invocation_type=r[13],
        status_code=r[14],
        error_type=r[15],
        error_message=r[16],
        log_tail=r[17],
        executed_version=r[18],
        request=orjson.loads(r[19]) if r[19] else {},
        response_body=r[20],
        event=bytes(r[21]) if r[21] is not None else b"",
        next_attempt_at=r[22],
        batch_id=r[23],
        batch_size=r[24],
        batch_bytes=r[25],
        warning=r[26],
        filter=r[27],
        replay=r[28],
    )


def to_delivery(r: Sequence[Any]) -> DeliveryRow:
    """A delivery from a row of ``DELIVERY_COLUMNS``."""
    return DeliveryRow(
        message_id=r[0],
        destination=r[1],
        source=r[2],
        call_type=r[3],
        function=r[4],
        category=Category(r[5]),
        attempts=r[6],
        status=r[7],
        error=r[8],
        received_at=r[9],
        updated_at=r[10],
        next_attempt_at=r[11],
        delivered_at=r[12],
        filter=r[13],
        replay=r[14],
    )

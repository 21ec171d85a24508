"""NATS plumbing shared by the JetStream queue and the JetStream delivery log: one way to
connect, one way to create-or-update a stream, one way to open-or-create a KV bucket, one way to
name things and show servers, and one translation of NATS errors into the error tree."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NotFoundError
from nats.js.kv import KeyValue

from eventrelay.core.errors import DiskFull, QueueFull, StorageError

# JetStream error codes (nats-server errors.json).
ERR_STREAM_IN_USE = 10058  # stream name already in use with a different configuration
ERRS_DISK = {10023, 10047}  # insufficient resources / insufficient storage resources
API_TIMEOUT = 10.0  # JetStream API and PubAck wait; in a cluster a leader election takes a few seconds
RECONNECT_WAIT = 0.5  # seconds between reconnect attempts (the client reconnects forever)
CONNECT_TIMEOUT = 5.0  # seconds for the first connection
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")  # outside a subject token / consumer name


async def connect(servers: list[str], name: str) -> tuple[Client, JetStreamContext]:
    """A connection that reconnects forever, and its JetStream context."""
    nc = await nats.connect(
        servers=servers,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=RECONNECT_WAIT,
        connect_timeout=CONNECT_TIMEOUT,
    )
    return nc, nc.jetstream(timeout=API_TIMEOUT)


async def ensure_stream(js: Any, config: Any) -> None:
    """Make the stream ``config`` describes, or bring an existing one (made by another process,
    or with an older configuration) up to it."""
    try:
        await js.add_stream(config)
    except APIError as exc:
        if exc.err_code != ERR_STREAM_IN_USE:
            raise
        await js.update_stream(config)


async def open_bucket(js: JetStreamContext, bucket: str, *, ttl: float, replicas: int) -> KeyValue:
    """The KV bucket ``bucket`` (one value per key, on file, entries expiring after ``ttl``
    seconds), made if no process made it yet."""
    try:
        return await js.key_value(bucket)
    except NotFoundError:
        config = api.KeyValueConfig(bucket=bucket, history=1, ttl=ttl, replicas=replicas, storage=api.StorageType.FILE)
        return await js.create_key_value(config)


def redact(servers: list[str]) -> str:
    """Server URLs for messages, without any ``user:password@`` or token part."""
    return ", ".join(re.sub(r"//[^@/]*@", "//***@", url) for url in servers)


def token(name: str) -> str:
    """``name`` as one subject token / consumer-name fragment, escaped reversibly."""
    return _UNSAFE.sub(lambda m: "".join(f"~{b:02X}" for b in m.group().encode()), name)


def translate(exc: BaseException, what: str) -> StorageError:
    """The eventrelay error for a NATS/JetStream failure of ``what`` (``publish``, ``claim``...):
    ``DiskFull`` when JetStream is out of storage, ``QueueFull`` at a stream's limit, else
    ``StorageError``. Raise it ``from exc``."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, APIError):
        if exc.err_code in ERRS_DISK:
            return DiskFull(f"JetStream {what} refused: {exc.description} (storage full)")
        if exc.description and "maximum" in exc.description:
            return QueueFull(f"JetStream {what} refused: {exc.description}")
    detail: Any = exc if str(exc) else type(exc).__name__
    return StorageError(f"JetStream {what} failed: {detail}")


_T = TypeVar("_T")


def started(value: _T | None, what: str = "the JetStream queue") -> _T:
    """``value`` (a connection, a JetStream context, a bucket) once its owner has started;
    before that (or after close) a ``StorageError`` saying so."""
    if value is None:
        raise StorageError(f"{what} is not started")
    return value

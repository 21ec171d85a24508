"""One invocation of a local function: its payload, its log, and how it ended.

The log is what the handler printed between Lambda-style ``START``/``END``/``REPORT`` lines; Tail returns
its last 4 KB. Errors the platform produces (timeout, process exit, response too large) have AWS's bodies.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from eventrelay.localaws.functions import Target

MAX_LOG_BYTES = 64 * 1024  # log kept per invocation; Tail needs only the last 4 KB
LOG_TAIL_BYTES = 4 * 1024  # AWS: X-Amz-Log-Result carries the last 4 KB of the log
MEMORY_SIZE_MB = 128  # reported in REPORT lines, as a default Lambda function


@dataclass(frozen=True, slots=True)
class Result:
    body: bytes
    content_type: str
    function_error: str | None
    """``Unhandled`` when the function failed; None on success."""
    log: bytes

    def log_tail(self) -> bytes:
        return self.log[-LOG_TAIL_BYTES:]


@dataclass(eq=False)
class Invocation:
    target: Target
    payload: bytes
    client_context: str | None
    """The client context as JSON text (decoded from X-Amz-Client-Context)."""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    future: asyncio.Future[Result] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    log: bytearray = field(default_factory=bytearray)
    started: float = 0.0
    deadline_ms: int = 0
    max_memory_mb: int | None = None

    @property
    def done(self) -> bool:
        return self.future.done()

    def begin(self) -> None:
        self.started = time.monotonic()
        self.deadline_ms = int(time.time() * 1000 + self.target.spec.timeout * 1000)
        self.log.clear()
        self.append_log(f"START RequestId: {self.request_id} Version: {self.target.version}\n".encode())

    def append_log(self, data: bytes) -> None:
        self.log += data
        if len(self.log) > MAX_LOG_BYTES:
            del self.log[: len(self.log) - MAX_LOG_BYTES // 2]

    def succeed(self, body: bytes, content_type: str) -> None:
        self._finish(body, content_type, None)

    def fail(self, body: bytes, status_note: str | None = None) -> None:
        self._finish(body, "application/json", "Unhandled", status_note)

    def fail_platform(self, error_type: str, message: str, status_note: str | None = None) -> None:
        """An error produced by the platform rather than posted by the runtime (AWS's short body)."""
        body = orjson.dumps({"errorMessage": f"RequestId: {self.request_id} Error: {message}", "errorType": error_type})
        self.fail(body, status_note)

    def timed_out(self) -> None:
        note = f"Task timed out after {self.target.spec.timeout:.2f} seconds"
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.append_log(f"{stamp} {self.request_id} {note}\n".encode())
        self.fail_platform("Sandbox.Timedout", note, "timeout")

    def _finish(self, body: bytes, content_type: str, error: str | None, status: str | None = None) -> None:
        if self.done:
            return
        duration_ms = (time.monotonic() - self.started) * 1000 if self.started else 0.0
        memory = f"\tMax Memory Used: {self.max_memory_mb} MB" if self.max_memory_mb else ""
        status_part = f"\tStatus: {status}" if status else ""
        self.append_log(
            f"END RequestId: {self.request_id}\n"
            f"REPORT RequestId: {self.request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\tMemory Size: {MEMORY_SIZE_MB} MB"
            f"{memory}{status_part}\t\n".encode()
        )
        self.future.set_result(Result(body, content_type, error, bytes(self.log)))

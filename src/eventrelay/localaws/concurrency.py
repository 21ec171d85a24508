"""Reserved concurrency of local functions, enforced and answered as Lambda does.

- ``Reservations`` counts the invocations of each function in flight (every version and alias
  together: Lambda reserves concurrency per function). A synchronous invoke beyond the
  function's ``reserved_concurrency`` is refused with 429 ``TooManyRequestsException``, Reason
  ``ReservedFunctionConcurrentInvocationLimitExceeded``. Asynchronous (``Event``) invokes are
  queued by Lambda and never refused for concurrency; they count while they run.
- ``GetFunctionConcurrency`` answers it (``concurrency_api.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

from aiohttp import web

from eventrelay.localaws.functions import FunctionSpec

RESERVED_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"


class Reservations:
    """Invocations in flight per function name."""

    def __init__(self) -> None:
        self._running: Counter[str] = Counter()

    def running(self, function: str) -> int:
        return self._running[function]

    def admit(self, spec: FunctionSpec, done: asyncio.Future[Any], *, refusable: bool) -> bool:
        """Count an invocation of ``spec`` until ``done``; False (not counted) when ``refusable``
        and the function's reserved concurrency is taken."""
        limit = spec.reserved_concurrency
        if refusable and limit is not None and self._running[spec.name] >= limit:
            return False
        self._running[spec.name] += 1
        done.add_done_callback(lambda _: self._leave(spec.name))
        return True

    def _leave(self, function: str) -> None:
        self._running[function] -= 1
        if self._running[function] <= 0:
            del self._running[function]


def throttled(reason: str, retry_after: float | None, message: str = "Rate Exceeded.") -> web.Response:
    """AWS's 429 ``TooManyRequestsException`` answer, with its ``Reason``."""
    headers = {"x-amzn-ErrorType": "TooManyRequestsException", "x-amzn-RequestId": str(uuid.uuid4())}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    return web.json_response({"Reason": reason, "Type": "User", "message": message}, status=429, headers=headers)

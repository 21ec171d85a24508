"""The Lambda Runtime API that awslambdaric workers poll (``/2018-06-01/runtime/...``).

Every worker gets its own loopback listener, so the port a request arrives on says which worker asks.
``/invocation/next`` hands out the next invocation with the headers awslambdaric reads (request id,
deadline, invoked function ARN, client context as JSON text, trace id); ``/response`` and ``/error``
finish it; ``/init/error`` records why a worker could not load its handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from aiohttp import web

from eventrelay.localaws.invocation import Invocation
from eventrelay.localaws.pool import RuntimeHost, Worker, free_socket

PREFIX = "/2018-06-01/runtime"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # AWS: synchronous response payload at most 6 MB (6,291,456 bytes)
MAX_RUNTIME_BODY = 32 * 1024 * 1024  # accepted from a worker, so an oversized response can be reported as such
RUNTIME_HOST = "127.0.0.1"


class RuntimeApi(RuntimeHost):
    def __init__(self) -> None:
        app = web.Application(client_max_size=MAX_RUNTIME_BODY)
        app.router.add_get(f"{PREFIX}/invocation/next", self.next)
        app.router.add_post(f"{PREFIX}/invocation/{{request_id}}/response", self.response)
        app.router.add_post(f"{PREFIX}/invocation/{{request_id}}/error", self.error)
        app.router.add_post(f"{PREFIX}/init/error", self.init_error)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.by_port: dict[int, Worker] = {}
        self.sites: dict[int, web.SockSite] = {}

    async def start(self) -> None:
        await self.runner.setup()

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def listen(self, worker: Worker) -> int:
        sock = free_socket(RUNTIME_HOST)
        port: int = sock.getsockname()[1]
        site = web.SockSite(self.runner, sock)
        await site.start()
        self.by_port[port] = worker
        self.sites[port] = site
        return port

    async def unlisten(self, worker: Worker) -> None:
        self.by_port.pop(worker.port, None)
        site = self.sites.pop(worker.port, None)
        if site is not None:
            with contextlib.suppress(RuntimeError):
                await site.stop()

    def _worker(self, request: web.Request) -> Worker | None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        return self.by_port.get(sockname[1]) if sockname else None

    async def next(self, request: web.Request) -> web.StreamResponse:
        worker = self._worker(request)
        if worker is None:
            return _status(403, "unknown runtime")
        if worker.stale:
            worker.kill()  # replaced by a worker that loads the new code
            return _status(410, "runtime replaced")
        try:
            inv = await worker.pool.next_for(worker)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return _status(410, "runtime gone")  # the worker exited while it waited
        if worker.gone:
            worker.pool.submit(inv)  # it exited just as the invocation was handed over: give it to another
            return _status(410, "runtime gone")
        worker.dispatch(inv)
        headers = {
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": inv.target.arn,
            "Lambda-Runtime-Trace-Id": _trace_id(),
            "Content-Type": "application/json",
        }
        if inv.client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = inv.client_context
        return web.Response(body=inv.payload, headers=headers)

    async def response(self, request: web.Request) -> web.StreamResponse:
        found = await self._finish(request)
        if isinstance(found, web.StreamResponse):
            return found
        inv, body = found
        if len(body) > MAX_RESPONSE_BYTES:
            inv.fail_platform(
                "Function.ResponseSizeTooLarge",
                f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size "
                f"({MAX_RESPONSE_BYTES} bytes).",
            )
        else:
            inv.succeed(body, request.headers.get("Content-Type", "application/json"))
        return _status(202, "OK")

    async def error(self, request: web.Request) -> web.StreamResponse:
        found = await self._finish(request)
        if isinstance(found, web.StreamResponse):
            return found
        inv, body = found
        inv.fail(body)
        return _status(202, "OK")

    async def _finish(self, request: web.Request) -> tuple[Invocation, bytes] | web.StreamResponse:
        """The invocation a worker reports on, with what it posted; the worker is free again."""
        found = self._current(request)
        if isinstance(found, web.StreamResponse):
            return found
        worker, inv = found
        body = await request.read()
        worker.finished(inv)
        return inv, body

    async def init_error(self, request: web.Request) -> web.StreamResponse:
        worker = self._worker(request)
        if worker is None:
            return _status(403, "unknown runtime")
        worker.init_error = await request.read()
        return _status(202, "OK")

    def _current(self, request: web.Request) -> tuple[Worker, Invocation] | web.StreamResponse:
        worker = self._worker(request)
        if worker is None:
            return _status(403, "unknown runtime")
        inv = worker.current
        if inv is None or inv.request_id != request.match_info["request_id"]:
            return _status(400, "InvalidRequestID")
        return worker, inv


def _status(status: int, text: str) -> web.Response:
    return web.json_response(
        {"status": text} if status < 400 else {"errorMessage": text, "errorType": text}, status=status
    )


def _trace_id() -> str:
    hex_id = uuid.uuid4().hex
    return f"Root=1-{hex_id[:8]}-{hex_id[8:32]};Parent={uuid.uuid4().hex[:16]};Sampled=0"

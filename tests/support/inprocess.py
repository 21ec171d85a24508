"""A ``Runtime`` served in this process on a free port, with exactly the server settings
``eventrelay serve`` uses (``Runtime.server_config()``: the one-port app and the Tracking API's
fast path), so tests that talk HTTP to it exercise what users run."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

from eventrelay.runtime import Runtime

START_TIMEOUT = 30.0  # seconds for uvicorn to start on a loaded 2-core machine
STOP_TIMEOUT = 20.0


@contextlib.asynccontextmanager
async def serving_config(config: uvicorn.Config) -> AsyncIterator[str]:
    """Serve ``config`` (its app and settings; host and port are ignored) on a free loopback
    port; yields the base URL, stops the server on exit."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped it
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STOP_TIMEOUT)


def serving(runtime: Runtime) -> contextlib.AbstractAsyncContextManager[str]:
    """Serve the started ``runtime`` as ``eventrelay serve`` does; yields its base URL. Stops the
    server (not the runtime)."""
    return serving_config(runtime.server_config())

"""An Invoke endpoint independent of eventrelay: a small aiohttp server on its own thread that
answers like AWS (STS AssumeRole and Lambda Invoke), takes ``delay`` seconds per invocation, and
counts invocations per messageId.

It lives outside the eventrelay process on purpose: what a SIGTERM of eventrelay does to an
invocation in flight is seen from the function's side (``started`` counts every invocation that
reached the function, ``answered`` those whose answer was written, ``cut`` those whose
connection closed before the answer could be written).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from aiohttp import web

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


@dataclass
class SlowFunction:
    """The function's view: invocations per messageId, and how each one ended."""

    delay: tuple[float, float] = (0.2, 0.5)  # seconds one invocation takes (uniform)
    started: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    cut: Counter[str] = field(default_factory=Counter)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(3))

    def duplicates(self) -> dict[str, int]:
        with self.lock:
            return {mid: n for mid, n in self.started.items() if n > 1}

    def invoked(self) -> set[str]:
        with self.lock:
            return set(self.started)

    def finished(self) -> set[str]:
        """messageIds whose invocation answered."""
        with self.lock:
            return set(self.answered)

    def in_flight(self) -> int:
        with self.lock:
            return sum(self.started.values()) - sum(self.answered.values()) - sum(self.cut.values())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if "/functions/" not in request.path:
            return _assume_role()
        mid = str(orjson.loads(body)["messageId"])
        with self.lock:
            self.started[mid] += 1
            pause = self.rng.uniform(*self.delay)
        try:
            await asyncio.sleep(pause)
        except asyncio.CancelledError:  # aiohttp cancels the handler when the client disconnects
            with self.lock:
                self.cut[mid] += 1
            raise
        with self.lock:
            self.answered[mid] += 1
        return web.Response(body=b'{"ok":true}', headers={"X-Amz-Executed-Version": "$LATEST"})


def _assume_role() -> web.Response:
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    result = (
        "<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/eventrelay-invoke/s</Arn>"
        "<AssumedRoleId>AROATEST:s</AssumedRoleId></AssumedRoleUser>"
        "<Credentials><AccessKeyId>ASIATESTTESTTEST0001</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>"
        f"<SessionToken>token</SessionToken><Expiration>{expires}</Expiration></Credentials>"
    )
    text = (
        f'<AssumeRoleResponse xmlns="{STS_NS}"><AssumeRoleResult>{result}</AssumeRoleResult>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></AssumeRoleResponse>"
    )
    return web.Response(text=text, content_type="text/xml")


@contextlib.contextmanager
def slow_function(delay: tuple[float, float] = (0.2, 0.5)) -> Iterator[SlowFunction]:
    """Serve a ``SlowFunction`` on a loopback port from a thread of its own; stopped on exit."""
    function = SlowFunction(delay)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", function.handle)
        run = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await run.setup()
        site = web.TCPSite(run, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        function.url = f"http://127.0.0.1:{port}"
        runner.append(run)
        ready.set()

    thread = threading.Thread(target=loop.run_forever, name="slow-function", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    ready.wait(30)
    try:
        yield function
    finally:
        asyncio.run_coroutine_threadsafe(runner[0].cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()

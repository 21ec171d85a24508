"""A configured proxy carries the Invoke requests of a running eventrelay, as botocore's would.

The whole path runs: events POSTed to the Tracking API of a ``Runtime`` (SQLite queue and log,
delivery engine, the aws_lambda destination built from the config) are invoked on the local AWS
endpoint (``tests/support/localaws.py``: real STS trust checks, SigV4 verification, the handler
in awslambdaric). Between them stands a small real forward proxy that logs what it is asked:

- ``HTTP_PROXY`` with an http Lambda endpoint: every Invoke reaches the proxy as an absolute URL;
- ``HTTPS_PROXY`` with an https Lambda endpoint (a TLS front with a throwaway CA before the local
  endpoint, trusted through ``AWS_CA_BUNDLE``): the Invokes go through ``CONNECT`` tunnels, and
  every connection the endpoint accepted came out of the proxy;
- ``NO_PROXY`` naming the Lambda endpoint's host: the Invokes go direct while STS (another host)
  still goes through the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import trustme

from eventrelay.config.model import Config, LocalAwsRole
from eventrelay.destinations.aws_lambda import endpoints
from eventrelay.runtime import Runtime
from tests.support.awsenv import isolate_aws_env
from tests.support.inprocess import serving
from tests.support.localaws import handler_functions, local_aws_endpoint

WORKSPACE = "ws_proxy_test"
WRITE_KEY = "wk_proxy_test_0123456789abcdef"
ROLE = "eventrelay-invoke"
EVENTS = 3
DEADLINE = 60.0  # seconds for the events to be delivered on a loaded 2-core machine
INVOKE_PATH = "/2015-03-31/functions/echo/invocations"
HANDLER = """
def handle(event, context):
    return {"messageId": event["messageId"]}
"""
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@dataclass
class ForwardProxy:
    """An HTTP forward proxy: ``CONNECT host:port`` opens a tunnel (bytes piped both ways);
    any other request (absolute URL) is sent on to its origin in origin form and the answer piped
    back, one upstream connection per request."""

    connects: list[str] = field(default_factory=list)  # CONNECT targets
    forwarded: list[str] = field(default_factory=list)  # "METHOD absolute-URL" per forwarded request
    tunnel_ends: set[tuple[str, int]] = field(default_factory=set)  # our side of each tunnel's upstream
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
                if method == "CONNECT":
                    await self._tunnel(target, reader, writer)
                    return
                body = await reader.readexactly(_content_length(head))
                writer.write(await self._forward(method, target, head, body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connects.append(target)
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self.tunnel_ends.add(up_writer.get_extra_info("sockname")[:2])
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _forward(self, method: str, target: str, head: bytes, body: bytes) -> bytes:
        self.forwarded.append(f"{method} {target}")
        origin, _, path = target.partition("://")[2].partition("/")
        host, port = origin.rsplit(":", 1)
        lines = head.decode("latin-1").split("\r\n")
        lines[0] = f"{method} /{path} HTTP/1.1"
        kept = [line for line in lines[1:] if line and not line.lower().startswith(("connection:", "proxy-"))]
        upstream = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        up_writer.write(upstream + body)
        answer = await up_reader.read()  # the origin closes after its answer (Connection: close)
        up_writer.close()
        return answer

    def invokes(self) -> list[str]:
        return [f for f in self.forwarded if INVOKE_PATH in f]


@dataclass
class TlsFront:
    """TLS for the local AWS endpoint: accepts TLS on its own port and pipes the plain bytes to
    the endpoint. Records the peer of every connection it accepted."""

    upstream: tuple[str, int]
    peers: list[tuple[str, int]] = field(default_factory=list)
    authority: str = ""  # host:port it is reached at

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername")[:2])
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


@contextlib.asynccontextmanager
async def listening(handler: object, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def make_config(data: Path) -> Config:
    return Config.model_validate(
        {
            "workspace": {"id": WORKSPACE},
            "storage": {"backend": "sqlite", "path": str(data)},
            "sources": [{"name": "app", "write_key": WRITE_KEY}],
            "destinations": [
                {
                    "name": "lambda",
                    "settings": {
                        "lambda": "echo",
                        "region": "us-west-2",
                        "role_address": f"arn:aws:iam::123456789012:role/{ROLE}",
                    },
                    "delivery": {"timeout": "30s", "backoff_base": "100ms", "backoff_cap": "500ms"},
                }
            ],
        }
    )


async def deliver_events(runtime: Runtime) -> list[str]:
    """POST ``EVENTS`` tracks to the served runtime; wait until each is delivered; their ids."""
    ids = [f"proxy-{i}-{time.time_ns()}" for i in range(EVENTS)]
    async with serving(runtime) as url, aiohttp.ClientSession() as http:  # trust_env off: the test goes direct
        for message_id in ids:
            event = {"userId": "u1", "event": "Order Completed", "messageId": message_id}
            async with http.post(f"{url}/v1/track", json=event, auth=aiohttp.BasicAuth(WRITE_KEY, "")) as resp:
                assert resp.status == 200, await resp.text()
        deadline = time.monotonic() + DEADLINE
        while True:
            rows = await runtime.log.deliveries(destination="lambda", status="delivered")
            if {r.message_id for r in rows} >= set(ids):
                return ids
            assert time.monotonic() < deadline, f"not delivered in {DEADLINE}s: {rows}"
            await asyncio.sleep(0.1)


async def attempts(runtime: Runtime, ids: list[str]) -> int:
    return sum([len(await runtime.log.attempts(m, "lambda")) for m in ids])


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Runtime, str, ForwardProxy]]:
    """The local AWS endpoint and a forward proxy, both started; a Runtime not yet started.
    Yields (runtime, the endpoint's URL, the proxy)."""
    isolate_aws_env(monkeypatch, tmp_path, access_key="AKIAPROXYTESTBASE001", secret_key="proxy-test-base-secret")
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(endpoints, "_default_session", None)  # botocore reads this test's environment
    settings = handler_functions(tmp_path, HANDLER, "echo")
    settings = settings.model_copy(update={"roles": {ROLE: LocalAwsRole(external_id=WORKSPACE)}})
    proxy = ForwardProxy()
    async with local_aws_endpoint(settings, monkeypatch) as local, listening(proxy.handle) as proxy_port:
        proxy.url = f"http://127.0.0.1:{proxy_port}"
        runtime = Runtime(make_config(tmp_path / "data"))
        try:
            yield runtime, local.url, proxy
        finally:
            await runtime.stop()


@contextlib.asynccontextmanager
async def tls_front(local_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TlsFront]:
    """An https Lambda endpoint (``https://localhost:port``) in front of the local one, its CA in
    ``AWS_CA_BUNDLE`` and its URL in ``AWS_ENDPOINT_URL_LAMBDA``."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    host, port = local_url.removeprefix("http://").rsplit(":", 1)
    front = TlsFront((host, int(port)))
    async with listening(front.handle, context) as front_port:
        front.authority = f"localhost:{front_port}"
        monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"https://localhost:{front_port}")
        yield front


@pytest.mark.timeout(120)
async def test_http_proxy_carries_every_invoke_to_an_http_endpoint(
    stack: tuple[Runtime, str, ForwardProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, local_url, proxy = stack
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    await runtime.start()

    ids = await deliver_events(runtime)

    invokes = proxy.invokes()
    assert len(invokes) == await attempts(runtime, ids) >= EVENTS  # every attempt went through the proxy
    assert all(i == f"POST {local_url}{INVOKE_PATH}" for i in invokes)
    assert any(f.startswith(f"POST {local_url}/") and INVOKE_PATH not in f for f in proxy.forwarded)  # STS, by botocore


@pytest.mark.timeout(120)
async def test_https_proxy_tunnels_every_invoke_to_an_https_endpoint(
    stack: tuple[Runtime, str, ForwardProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, local_url, proxy = stack
    async with tls_front(local_url, tmp_path, monkeypatch) as front:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        await runtime.start()

        await deliver_events(runtime)

        assert proxy.connects and set(proxy.connects) == {front.authority}
        assert front.peers and set(front.peers) <= proxy.tunnel_ends  # no connection to Lambda went direct
        assert proxy.invokes() == []


@pytest.mark.timeout(120)
async def test_no_proxy_sends_the_invokes_of_its_hosts_direct(
    stack: tuple[Runtime, str, ForwardProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, local_url, proxy = stack
    async with tls_front(local_url, tmp_path, monkeypatch) as front:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost")  # the Lambda endpoint's host; STS is at 127.0.0.1
        await runtime.start()

        await deliver_events(runtime)

        assert proxy.connects == [] and front.peers  # Lambda direct
        assert not set(front.peers) & proxy.tunnel_ends
        assert proxy.forwarded and proxy.invokes() == []  # STS still through the proxy

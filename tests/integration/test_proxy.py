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
from tests.support.proxy import ForwardProxy, pipe

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
class TlsFront:
    """TLS for the local AWS endpoint: accepts TLS on its own port and pipes the plain bytes to
    the endpoint. Records the peer of every connection it accepted."""

    upstream: tuple[str, int]
    peers: list[tuple[str, int]] = field(default_factory=list)
    authority: str = ""  # host:port it is reached at

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername")[:2])
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


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


def invokes(proxy: ForwardProxy) -> list[str]:
    """The Invoke requests the proxy sent on (an http endpoint's; an https one's are tunnelled)."""
    return [f for f in proxy.forwarded if INVOKE_PATH in f]


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
    await proxy.start()
    async with local_aws_endpoint(settings, monkeypatch) as local:
        runtime = Runtime(make_config(tmp_path / "data"))
        try:
            yield runtime, local.url, proxy
        finally:
            await runtime.stop()
            proxy.close()


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
    server = await asyncio.start_server(front.handle, "127.0.0.1", 0, ssl=context)
    front.authority = f"localhost:{server.sockets[0].getsockname()[1]}"
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"https://{front.authority}")
    try:
        yield front
    finally:
        server.close()


@pytest.mark.timeout(120)
async def test_http_proxy_carries_every_invoke_to_an_http_endpoint(
    stack: tuple[Runtime, str, ForwardProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, local_url, proxy = stack
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    await runtime.start()

    ids = await deliver_events(runtime)

    sent_on = invokes(proxy)
    assert len(sent_on) == await attempts(runtime, ids) >= EVENTS  # every attempt went through the proxy
    assert all(i == f"POST {local_url}{INVOKE_PATH}" for i in sent_on)
    assert any(f.startswith(f"POST {local_url}/") and INVOKE_PATH not in f for f in proxy.forwarded)  # STS, by botocore


async def deliver_over_https(
    stack: tuple[Runtime, str, ForwardProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, no_proxy: str = ""
) -> TlsFront:
    """HTTPS_PROXY and HTTP_PROXY set to the proxy (and ``NO_PROXY`` when given), the Lambda
    endpoint https (``tls_front``): start the runtime and deliver the events; the front."""
    runtime, local_url, proxy = stack
    async with tls_front(local_url, tmp_path, monkeypatch) as front:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        if no_proxy:
            monkeypatch.setenv("NO_PROXY", no_proxy)
        await runtime.start()
        await deliver_events(runtime)
    return front


@pytest.mark.timeout(120)
async def test_https_proxy_tunnels_every_invoke_to_an_https_endpoint(
    stack: tuple[Runtime, str, ForwardProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    front = await deliver_over_https(stack, tmp_path, monkeypatch)

    proxy = stack[2]
    assert proxy.connects and set(proxy.connects) == {front.authority}
    assert front.peers and set(front.peers) <= proxy.tunnel_ends  # no connection to Lambda went direct
    assert invokes(proxy) == []


@pytest.mark.timeout(120)
async def test_no_proxy_sends_the_invokes_of_its_hosts_direct(
    stack: tuple[Runtime, str, ForwardProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the Lambda endpoint is https://localhost:...; STS stays at http://127.0.0.1:..., not covered
    front = await deliver_over_https(stack, tmp_path, monkeypatch, no_proxy="localhost")

    proxy = stack[2]
    assert proxy.connects == [] and front.peers  # Lambda direct
    assert not set(front.peers) & proxy.tunnel_ends
    assert proxy.forwarded and invokes(proxy) == []  # STS still through the proxy

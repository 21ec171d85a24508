"""The Invoke path's HTTP/1.1 client against real sockets: a scripted server answers each request
the way a test needs (keep-alive, chunked, close, no length, oversize, garbage, silence), and a
real TLS server with a throwaway CA checks verification."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import trustme

from eventrelay.core.errors import TransportError
from eventrelay.destinations.http_client import HttpClient, HttpRequest, Proxy, proxy_from_environment
from tests.support.proxy import ForwardProxy

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Amz-Executed-Version: 3\r\n\r\nok"

Answer = Callable[[bytes, int], bytes | None]  # (request head + body, request number) -> raw answer


@dataclass
class Server:
    answer: Answer
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[bytes] = field(default_factory=list)
    close_after_answer: bool = False
    close_instead: set[int] = field(default_factory=set)  # request numbers answered by closing
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                number = len(self.requests)
                self.requests.append(request)
                if number in self.close_instead:
                    break
                raw = self.answer(request, number)
                if raw is None:  # say nothing until the client gives up and closes
                    await reader.read()
                    break
                writer.write(raw)
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer = lambda _r, _n: OK, ssl_context: ssl.SSLContext | None = None) -> Server:
        state = Server(answer)
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0, ssl=ssl_context)
        servers.append(server)
        state.port = server.sockets[0].getsockname()[1]
        return state

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


async def test_requests_reuse_one_keepalive_connection_and_send_what_was_asked(serve) -> None:
    server = await serve()
    client = HttpClient(f"http://127.0.0.1:{server.port}", user_agent="eventrelay/test")
    try:
        for i in range(5):
            answer = await client.request("POST", f"/fn/invocations?Qualifier=v{i}", {"X-Amz-Log-Type": "Tail"}, b"{}")
            assert answer.status == 200 and answer.body == b"ok"
            assert answer.header("X-Amz-Executed-Version") == "3"
    finally:
        await client.close()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /fn/invocations?Qualifier=v0 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in first
    assert b"User-Agent: eventrelay/test\r\n" in first and b"X-Amz-Log-Type: Tail\r\n" in first
    assert first.endswith(b"Content-Length: 2\r\n\r\n{}")


async def test_chunked_and_repeated_headers_are_read(serve) -> None:
    chunked = (
        b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    server = await serve(lambda _r, _n: chunked)
    client = HttpClient(f"http://127.0.0.1:{server.port}")
    try:
        answer = await client.request("POST", "/", {}, b"x")
        again = await client.request("POST", "/", {}, b"x")
    finally:
        await client.close()
    assert (answer.status, answer.body, answer.header("x-a")) == (502, b"hello world", "1, 2")
    assert again.body == b"hello world" and server.connections == 1


async def test_connection_close_answers_and_answers_ending_at_close(serve) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na"
    server = await serve(lambda _r, _n: closing)
    server.close_after_answer = True
    client = HttpClient(f"http://127.0.0.1:{server.port}")
    try:
        assert [(await client.request("GET", "/", {})).body for _ in range(3)] == [b"a"] * 3
    finally:
        await client.close()
    assert server.connections == 3  # a closed connection is never reused

    no_length = await serve(lambda _r, _n: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
    no_length.close_after_answer = True
    client = HttpClient(f"http://127.0.0.1:{no_length.port}")
    try:
        assert (await client.request("GET", "/", {})).body == b"until the end"
    finally:
        await client.close()


@pytest.mark.parametrize("limit", [0, 1])
async def test_an_idle_connection_closed_by_the_server_is_replaced_without_an_error(serve, limit: int) -> None:
    server = await serve()
    server.close_instead = {1}  # the server drops the reused connection instead of answering
    client = HttpClient(f"http://127.0.0.1:{server.port}", max_connections=limit)
    try:
        assert (await client.request("POST", "/", {}, b"1")).status == 200
        assert (await client.request("POST", "/", {}, b"2")).status == 200
    finally:
        await client.close()
    assert server.connections == 2 and len(server.requests) == 3  # request 2 was resent once


async def test_a_connection_dropped_on_a_fresh_connection_is_an_error(serve) -> None:
    server = await serve()
    server.close_instead = {0}
    client = HttpClient(f"http://127.0.0.1:{server.port}")
    try:
        with pytest.raises(TransportError, match="closed before the answer"):
            await client.request("POST", "/", {}, b"1")
    finally:
        await client.close()
    assert len(server.requests) == 1  # not resent: the server may have acted on it


async def test_malformed_and_oversized_answers_fail_and_the_connection_is_dropped(serve) -> None:
    server = await serve(lambda _r, n: b"NOT HTTP AT ALL\r\n\r\n" if n == 0 else OK)
    client = HttpClient(f"http://127.0.0.1:{server.port}", max_body=1000)
    try:
        with pytest.raises(TransportError, match="malformed"):
            await client.request("GET", "/", {})
        assert (await client.request("GET", "/", {})).body == b"ok"
    finally:
        await client.close()
    assert server.connections == 2

    big = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    server = await serve(lambda _r, _n: big)
    client = HttpClient(f"http://127.0.0.1:{server.port}", max_body=1000)
    try:
        with pytest.raises(TransportError, match="over 1000 bytes"):
            await client.request("GET", "/", {})
    finally:
        await client.close()


async def test_refused_connection_names_the_address() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = HttpClient(f"http://127.0.0.1:{port}")
    with pytest.raises(TransportError, match=f"cannot connect to 127.0.0.1:{port}"):
        await client.request("GET", "/", {})
    await client.close()


async def test_concurrency_is_bounded_by_max_connections_and_all_requests_complete(serve) -> None:
    server = await serve()
    client = HttpClient(f"http://127.0.0.1:{server.port}", max_connections=4)
    try:
        answers = await asyncio.gather(*(client.request("POST", "/", {}, b"%d" % i) for i in range(50)))
    finally:
        await client.close()
    assert all(a.status == 200 for a in answers) and len(server.requests) == 50
    assert server.most_open <= 4 and server.connections <= 4


async def test_a_timed_out_request_closes_its_connection_and_the_next_one_works(serve) -> None:
    server = await serve(lambda _r, n: None if n == 0 else OK)
    client = HttpClient(f"http://127.0.0.1:{server.port}", max_connections=1)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await client.request("POST", "/", {}, b"slow")
        assert (await client.request("POST", "/", {}, b"next")).status == 200  # the slot was freed
    finally:
        await client.close()
    assert server.connections == 2  # the interrupted connection was not reused


async def test_tls_is_verified_against_the_given_ca_bundle(serve, tmp_path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    server = await serve(ssl_context=server_ctx)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))

    client = HttpClient(f"https://localhost:{server.port}", ca_bundle=str(bundle))
    try:
        answer = await client.request("POST", "/", {}, b"{}")
    finally:
        await client.close()
    assert answer.status == 200 and f"Host: localhost:{server.port}".encode() in server.requests[0]

    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    untrusting = HttpClient(f"https://localhost:{server.port}", ca_bundle=str(other))
    try:
        with pytest.raises(TransportError, match=r"SSL|certificate"):
            await untrusting.request("POST", "/", {}, b"{}")
    finally:
        await untrusting.close()


async def test_https_goes_through_a_connect_tunnel_with_tls_to_the_endpoint(serve, tmp_path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    server = await serve(ssl_context=server_ctx)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    log = ForwardProxy()
    proxy_port = await log.start()
    proxy = Proxy("127.0.0.1", proxy_port, "Basic dTpw")
    client = HttpClient(f"https://localhost:{server.port}", ca_bundle=str(bundle), proxy=proxy)
    try:
        answers = [await client.request("POST", "/fn/invocations", {}, b"{}") for _ in range(2)]
    finally:
        await client.close()
        log.close()
    assert [a.status for a in answers] == [200, 200] and len(server.requests) == 2
    assert len(log.heads) == 1  # one tunnel, kept alive for both requests
    assert log.heads[0].startswith(f"CONNECT localhost:{server.port} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic dTpw\r\n" in log.heads[0]
    assert b"Proxy-Authorization" not in server.requests[0]  # never sent to the endpoint itself


async def test_http_goes_to_the_proxy_as_an_absolute_url(serve) -> None:
    server = await serve()
    log = ForwardProxy()
    proxy_port = await log.start()
    client = HttpClient(f"http://127.0.0.1:{server.port}", proxy=Proxy("127.0.0.1", proxy_port))
    try:
        answer = await client.request("POST", "/fn/invocations?Qualifier=live", {}, b"{}")
    finally:
        await client.close()
        log.close()
    assert answer.status == 200
    line = f"POST http://127.0.0.1:{server.port}/fn/invocations?Qualifier=live HTTP/1.1"
    assert log.heads[0].startswith(line.encode())


async def test_a_proxy_refusing_the_tunnel_is_a_clear_error(serve) -> None:
    server = await serve()
    log = ForwardProxy(refuse=True)
    proxy_port = await log.start()
    client = HttpClient(f"https://localhost:{server.port}", proxy=Proxy("127.0.0.1", proxy_port))
    try:
        with pytest.raises(TransportError, match=re.escape("refused the tunnel: 'HTTP/1.1 407")):
            await client.request("POST", "/", {}, b"{}")
    finally:
        await client.close()
        log.close()


def test_proxy_from_environment_follows_https_proxy_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_from_environment("https://lambda.us-west-2.amazonaws.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://svc%40corp:p%3Ass@proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.internal")
    proxy = proxy_from_environment("https://lambda.us-west-2.amazonaws.com")
    assert proxy == Proxy("proxy.corp", 3128, "Basic " + base64.b64encode(b"svc@corp:p:ss").decode())
    assert proxy_from_environment("https://lambda.vpce.internal") is None  # NO_PROXY
    assert proxy_from_environment("http://127.0.0.1:9000") is None  # no HTTP_PROXY set
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.corp:3129")
    with pytest.raises(ValueError, match="HTTPS_PROXY must be an http:// proxy URL"):
        proxy_from_environment("https://lambda.us-west-2.amazonaws.com")


async def test_as_a_transport_it_refuses_a_request_for_another_origin(serve) -> None:
    server = await serve()
    client = HttpClient(f"http://127.0.0.1:{server.port}")
    try:
        here = HttpRequest("POST", client.origin, "/fn/invocations", {}, b"{}")
        assert (await client.handle(here)).status == 200
        elsewhere = HttpRequest("POST", "http://127.0.0.1:1", "/fn/invocations", {}, b"{}")
        with pytest.raises(TransportError, match=re.escape(f"speaks to {client.origin}, not http://127.0.0.1:1")):
            await client.handle(elsewhere)
    finally:
        await client.close()
    assert len(server.requests) == 1

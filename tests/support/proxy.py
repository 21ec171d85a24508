"""A small real HTTP forward proxy for tests, logging what it is asked.

``CONNECT host:port`` opens a tunnel (bytes piped both ways; our end of each tunnel's upstream
socket is kept in ``tunnel_ends``, so a test can tell tunnelled connections from direct ones).
Any other request (absolute URL) is sent on to its origin in origin form, without its Proxy-*
headers, one upstream connection per request, and the answer (read by its Content-Length, else
to the close) passed back; the client's connection stays open for its next request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

REFUSAL = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"


@dataclass
class ForwardProxy:
    heads: list[bytes] = field(default_factory=list)  # every request head, as received
    refuse: bool = False  # answer 407 to everything
    tunnel_ends: set[tuple[str, int]] = field(default_factory=set)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connects(self) -> list[str]:
        """The ``host:port`` of each CONNECT."""
        return [target for method, target in map(_request_line, self.heads) if method == "CONNECT"]

    @property
    def forwarded(self) -> list[str]:
        """``METHOD absolute-URL`` of each request sent on."""
        return [f"{method} {target}" for method, target in map(_request_line, self.heads) if method != "CONNECT"]

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                method, target = _request_line(head)
                if self.refuse:
                    writer.write(REFUSAL)
                    return
                if method == "CONNECT":
                    await self._tunnel(target, reader, writer)
                    return
                body = await reader.readexactly(_content_length(head) or 0)
                writer.write(await self._forward(method, target, head, body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self.tunnel_ends.add(up_writer.get_extra_info("sockname")[:2])
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def _forward(self, method: str, target: str, head: bytes, body: bytes) -> bytes:
        origin, _, path = target.partition("://")[2].partition("/")
        host, port = origin.rsplit(":", 1)
        lines = head.decode("latin-1").split("\r\n")
        kept = [line for line in lines[1:] if line and not line.lower().startswith("proxy-")]
        upstream = "\r\n".join([f"{method} /{path} HTTP/1.1", *kept, "", ""]).encode("latin-1")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        try:
            up_writer.write(upstream + body)
            answer = await up_reader.readuntil(b"\r\n\r\n")
            length = _content_length(answer)
            return answer + (await up_reader.read() if length is None else await up_reader.readexactly(length))
        finally:
            up_writer.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until the end, then close ``writer``."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def _request_line(head: bytes) -> tuple[str, str]:
    method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    return method, target


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return None

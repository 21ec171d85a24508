"""The HTTP transport interface: one request in, its answer out (the shape of httpx's transport).

A destination talks HTTP through an ``HttpTransport``. eventrelay's own pooled client
(``HttpClient``, one origin) is the default; a test passes a transport that records what was
asked and answers as scripted, without a server or monkeypatching. Every failure to get an
answer is a ``TransportError``; time is bounded by the caller (``asyncio.timeout``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}  # left out of Host and of an origin, as browsers and SDKs do


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request: ``origin`` is ``scheme://host[:port]`` (``origin_of``), ``target`` the path and
    query as sent on the request line (already encoded). The transport adds ``Host`` and
    ``Content-Length``."""

    method: str
    origin: str
    target: str
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def url(self) -> str:
        return self.origin + self.target


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[bytes, bytes]  # raw: names in lower case; repeated headers joined with ", "
    body: bytes

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


class HttpTransport(Protocol):
    """Sends one request and returns its answer; raises ``TransportError`` when no complete answer
    came. Whoever builds a transport closes it."""

    async def handle(self, request: HttpRequest) -> HttpResponse: ...


def header_value(headers: Mapping[bytes, bytes], name: str) -> str | None:
    """A header's value from raw lower-cased ``headers`` (decoded as Latin-1, as HTTP's bytes
    are), or None."""
    value = headers.get(name.lower().encode("latin-1"))
    return None if value is None else value.decode("latin-1")


def host_header(url: str) -> str:
    """The ``Host`` value for a URL (and the ``host`` SigV4 signs): the hostname, plus the port
    when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, spelled as ``HttpRequest.origin`` expects."""
    return f"{urlsplit(url).scheme}://{host_header(url)}"

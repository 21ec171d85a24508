"""Which proxy a request goes through: ``HTTPS_PROXY`` / ``HTTP_PROXY`` and ``NO_PROXY``, as botocore reads them.

An https endpoint is reached through a ``CONNECT`` tunnel (TLS end to end, verified against the
endpoint's name), an http one by sending the absolute URL to the proxy (``HttpClient`` does
both); ``user:password@`` in the proxy URL becomes Proxy-Authorization. https:// proxy URLs
(TLS to the proxy itself) are refused.
"""

from __future__ import annotations

import base64
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class Proxy:
    """An http:// proxy: where it listens, and the Proxy-Authorization value (None: none)."""

    host: str
    port: int
    authorization: str | None = None


def proxy_from_environment(url: str) -> Proxy | None:
    """The proxy for ``url`` from ``HTTPS_PROXY`` / ``HTTP_PROXY`` (by ``url``'s scheme) unless
    ``NO_PROXY`` covers its host, as botocore chooses; None for a direct connection. Raises
    ``ValueError`` naming the variable for a proxy URL this client cannot use."""
    parts = urlsplit(url)
    address = urllib.request.getproxies().get(parts.scheme)
    if not address or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxy = urlsplit(address if "://" in address else f"http://{address}")
    if proxy.scheme != "http" or not proxy.hostname:
        raise ValueError(
            f"{parts.scheme.upper()}_PROXY must be an http:// proxy URL (host and port); got scheme {proxy.scheme!r}"
        )
    authorization = None
    if proxy.username is not None:
        user = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
        authorization = "Basic " + base64.b64encode(user.encode()).decode()
    return Proxy(proxy.hostname, proxy.port or 80, authorization)

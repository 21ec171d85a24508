"""``GET /v1/projects/{writeKey}/settings``: what analytics.js (analytics-next) loads at start.

analytics-next fetches ``{cdnURL}/v1/projects/{writeKey}/settings`` and sends events to
``{protocol}://{integrations["Segment.io"].apiHost}``. Pointing its ``cdnURL`` at eventrelay
therefore makes the browser send every event here: ``apiHost`` is this server's host plus
``/v1`` (no scheme, as Segment spells it), ``protocol`` its scheme. No device-mode destinations
are loaded (``remotePlugins`` empty) and remote metrics are off (``sampleRate: 0``) so the
browser talks to no third party.

The answer is cacheable (60 s), so the host in it never comes from the request unchecked
(``ApiOrigin``): a forged ``Host`` in one request must not point every browser served from a cache
at the forger's server. It is ``ingest.public_url`` when set; else the request's Host when it is in
``ingest.allowed_hosts``; else the address the request arrived on. The answer says ``Vary: Host``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("eventrelay.ingest")

SETTINGS_PREFIX = "/v1/projects/"
SETTINGS_SUFFIX = "/settings"


def settings_key(path: str) -> str | None:
    """The write key in a settings path, or None when ``path`` is not one."""
    if path.startswith(SETTINGS_PREFIX) and path.endswith(SETTINGS_SUFFIX):
        key = path[len(SETTINGS_PREFIX) : -len(SETTINGS_SUFFIX)]
        if key and "/" not in key:
            return key
    return None


class ApiOrigin:
    """Where the settings endpoint points analytics.js: ``public_url`` (``https://events.example.com``,
    optionally with a path), else a Host header in ``allowed_hosts`` (``name``: any port, or
    ``name:port``), else the server's own address."""

    def __init__(self, public_url: str | None = None, allowed_hosts: tuple[str, ...] = ()) -> None:
        self._public: tuple[str, str] | None = None
        if public_url:
            url = urlsplit(public_url)
            self._public = (url.netloc + url.path.rstrip("/"), url.scheme)
        self._allowed = frozenset(h.strip().lower() for h in allowed_hosts)
        self._warned = False  # the fallback is logged once per process, with what to configure

    def resolve(self, host_header: bytes | None, scheme: str, server: tuple[str, int] | None) -> tuple[str, str]:
        """``(host[:port][/path], scheme)`` for a settings request with these ``Host``, scheme
        (as uvicorn judged it, forwarded headers of trusted proxies included) and local address."""
        if self._public is not None:
            return self._public
        host = (host_header or b"").decode("latin-1").strip().lower()
        if host and self._allows(host):
            return host, scheme
        own = _address(server)
        if host and host != own and not self._warned:
            self._warned = True
            log.warning(
                "settings endpoint: Host %r is not in ingest.allowed_hosts and ingest.public_url is not set; "
                "analytics.js is pointed at %s, the address the request arrived on (set ingest.public_url)",
                host[:100],
                own,
            )
        return own, scheme

    def _allows(self, host: str) -> bool:
        """``host`` itself is listed, or it is ``name:port`` and ``name`` is listed (without a port)."""
        name, colon, port = host.rpartition(":")
        return host in self._allowed or (bool(colon) and port.isdigit() and name in self._allowed)


def _address(server: tuple[str, int] | None) -> str:
    if server is None:
        return "localhost"
    host, port = server[0], server[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def settings_document(write_key: str, host: str, scheme: str) -> dict[str, Any]:
    """The settings analytics-next needs, with its API host pointed at ``host`` (``name[:port]``)."""
    api_host = f"{host}/v1"
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0, "host": api_host},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }

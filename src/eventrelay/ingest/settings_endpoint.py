"""``GET /v1/projects/{writeKey}/settings``: what analytics.js (analytics-next) loads at start.

analytics-next fetches ``{cdnURL}/v1/projects/{writeKey}/settings`` and sends events to
``{protocol}://{integrations["Segment.io"].apiHost}``. Pointing its ``cdnURL`` at eventrelay
therefore makes the browser send every event here: ``apiHost`` is this server's host plus
``/v1`` (no scheme, as Segment spells it), ``protocol`` the scheme the request came in on. No
device-mode destinations are loaded (``remotePlugins`` empty) and remote metrics are off
(``sampleRate: 0``) so the browser talks to no third party.
"""

from __future__ import annotations

from typing import Any

SETTINGS_PREFIX = "/v1/projects/"
SETTINGS_SUFFIX = "/settings"


def settings_key(path: str) -> str | None:
    """The write key in a settings path, or None when ``path`` is not one."""
    if path.startswith(SETTINGS_PREFIX) and path.endswith(SETTINGS_SUFFIX):
        key = path[len(SETTINGS_PREFIX) : -len(SETTINGS_SUFFIX)]
        if key and "/" not in key:
            return key
    return None


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

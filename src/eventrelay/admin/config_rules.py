"""Rules the Config API applies beyond validation: the endpoint allow-list and JSON merge patch.

The configuration file and the environment are trusted; the API is not. A setting that points a
destination at a host it sends signed requests to (``DestinationType.endpoint_settings``; for
``aws_lambda``: ``endpoint_url``) must, when set through the API, name a host on
``admin.endpoint_allow_list``, so eventrelay never signs AWS requests for an arbitrary host.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from eventrelay.admin.config_problems import invalid
from eventrelay.config.model import Destination
from eventrelay.destinations import registry


def check_endpoints(entity: dict[str, Any], allow_list: list[str]) -> None:
    """Refuse (422) an endpoint setting of the destination ``entity`` whose host is not allowed."""
    kind = registry.find(str(entity.get("type", Destination.model_fields["type"].default)))
    settings = entity.get("settings")
    if kind is None or not isinstance(settings, dict):
        return  # validation names the unknown type or the missing settings
    for key in kind.endpoint_settings:
        url = settings.get(key)
        if url is not None and (not isinstance(url, str) or not endpoint_allowed(url, allow_list)):
            shown = ", ".join(allow_list) if allow_list else "empty"
            raise invalid(
                f"settings.{key}",
                f"{url!r} is not on the operator's allow-list (admin.endpoint_allow_list: {shown}); "
                "an endpoint set through the API must name an allowed host, so eventrelay never sends "
                "signed AWS requests to an arbitrary host",
            )


def endpoint_allowed(url: str, allow_list: list[str]) -> bool:
    """Whether ``url``'s host (any port) or ``host:port`` is on ``allow_list``."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return False
    if not host:
        return False
    port = port or (443 if parts.scheme == "https" else 80)
    allowed = {entry.strip().lower() for entry in allow_list}
    return host in allowed or f"{host}:{port}" in allowed


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, ``null`` removes a key."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out

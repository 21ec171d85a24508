"""The admin API of a running server, as the CLI calls it (``--url``, ``--token``)."""

from __future__ import annotations

import argparse
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson

from eventrelay.cli.discover import CONFIG_HELP, TOKEN_ENV, admin_token
from eventrelay.core.errors import ConfigError, EventRelayError

HTTP_TIMEOUT = 30.0  # seconds for one admin API call


class AdminApiError(EventRelayError):
    """The admin API of a running server refused or failed a request."""


def add_source_options(p: argparse.ArgumentParser) -> None:
    """``--config`` to read the store, or ``--url``/``--token`` to ask a running server."""
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--url", help="or ask a running server's admin API, e.g. http://127.0.0.1:8088")
    p.add_argument("--token", help=f"admin token for --url (default: ${TOKEN_ENV})")


def call_api(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """One admin API call to ``args.url``; raises ``AdminApiError`` with the server's message."""
    token = admin_token(args)
    if not token:
        raise ConfigError("--token", f"--url needs the admin token (--token or ${TOKEN_ENV})")
    query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
    url = args.url.rstrip("/") + path + (f"?{query}" if query else "")
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            answer: dict[str, Any] = orjson.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        raise AdminApiError(f"{url.split('?')[0]}: HTTP {exc.code}: {_message(exc.read())}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise AdminApiError(f"cannot reach {args.url}: {exc}") from exc


def _message(raw: bytes) -> str:
    try:
        return str(orjson.loads(raw)["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return raw[:200].decode("utf-8", "replace")

"""Tiny admin-API reader for the reliability suites."""

from __future__ import annotations

import urllib.request
from typing import Any

import orjson

from tests.reliability.conftest import ADMIN_TOKEN


def get(url: str, path: str, token: str | None = ADMIN_TOKEN) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def deliveries(url: str, **params: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    status, body = get(url, f"/api/v1/deliveries?limit=1000&{query}")
    assert status == 200, body
    rows: list[dict[str, Any]] = orjson.loads(body)["deliveries"]
    return rows

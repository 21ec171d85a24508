"""What the Settings view's browser tests share: the demo a newcomer runs (``eventrelay serve``
without a config), an event through its Tracking API, its Config API over HTTP, and the page's
Settings view and the error shown next to a field."""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any

from playwright.async_api import Page, expect

from tests.support.demo import Demo

DELIVERY_TIMEOUT_MS = 60_000  # an awslambdaric process starts on the first invoke of a loaded machine


def track(demo: Demo, user_id: str, event: str) -> None:
    """One event through the Tracking API, as analytics-python sends it."""
    body = json.dumps({"userId": user_id, "event": event}).encode()
    basic = base64.b64encode(f"{demo.write_key}:".encode()).decode()
    request = urllib.request.Request(
        demo.url + "/v1/track",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def config_api(demo: Demo, path: str) -> Any:
    request = urllib.request.Request(demo.url + path, headers={"Authorization": f"Bearer {demo.token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


async def open_settings(page: Page, url: str, token: str) -> None:
    await page.goto(f"{url}/#token={token}")
    await page.get_by_role("tab", name="Settings").click()
    await expect(page.get_by_label("Lambda", exact=True)).to_be_visible()


def field_error(page: Page, label: str) -> Any:
    """The error shown next to the field a person knows by ``label``."""
    return page.locator(".field", has=page.get_by_label(label, exact=True)).locator(".field-error")

"""What the page says, read as a person reads it: a chart with a count axis and a time axis,
latency figures that say what they measure beside a first-attempt latency, recent successful
deliveries among the samples, and a log tail whose lines stay lines."""

from __future__ import annotations

import re
import time

from playwright.async_api import Page, expect

from eventrelay.core.outcome import Category
from tests.admin.server import ADMIN_TOKEN, Served
from tests.deliverylog.records import attempt


async def seed(served: Served) -> float:
    now = time.time()
    await served.runtime.log.record(
        [
            attempt("fast-1", Category.DELIVERED, at=now - 300, received_at=now - 300.2, log_tail="handled fast-1"),
            attempt("fast-2", Category.DELIVERED, at=now - 200, received_at=now - 200.4),
            attempt("slow-1", Category.EXECUTION_ERROR, at=now - 150, received_at=now - 150.1),
        ]
    )
    await served.runtime.log.record(
        [
            attempt("slow-1", Category.DELIVERED, n=2, at=now - 90, received_at=now - 150.1),
            attempt(
                "boom-1",
                Category.EXECUTION_ERROR,
                status="failed",
                at=now - 60,
                log_tail="[ERROR] RuntimeError: boom\rTraceback (most recent call last):\r  File handler.py\rEND",
            ),
        ]
    )
    return now


async def test_chart_latency_samples_and_log_tail_read_as_they_mean(served: Served, page: Page) -> None:
    await seed(served)
    await page.goto(f"{served.url}/#token={ADMIN_TOKEN}")

    chart = page.locator("#chart")
    await expect(chart.locator("text.axis.time")).to_have_count(3)  # start, middle and end of the range
    for label in await chart.locator("text.axis.time").all_text_contents():
        assert re.fullmatch(r"\d{1,2}:\d{2}( [AP]M)?", label), label
    counts = await chart.locator("text.axis:not(.time)").all_text_contents()
    assert counts[0] == "0" and int(counts[-1]) >= 2  # a count axis from 0 to a round top
    await expect(chart.locator("text.axis-title")).to_have_text("attempts")
    await expect(page.locator("#chart-scale")).to_have_text("(attempts per 1 min; highest bar 2)")

    latency = page.locator("#latency")
    await expect(latency).to_contain_text("Receipt to delivery, retries included (3 events delivered): P50 ")
    await expect(latency).to_contain_text("Delivered by their first attempt (2 events): P50 210 ms")
    await expect(page.get_by_title("median time from receipt to delivery, retries included")).to_have_text("P50")
    await expect(page.locator("#latency-note")).to_contain_text("retries included")

    delivered = page.locator('#samples article[data-category="delivered"]')
    await expect(delivered).to_have_count(2)  # recent successful deliveries, beside the failures
    await expect(delivered.first.locator("h4")).to_contain_text("Delivered · slow-1 · attempt 2")
    await expect(delivered.nth(1).locator("pre.sent")).to_contain_text('"messageId": "fast-2"')

    failed = page.locator('#samples article[data-category="execution_error"]').first
    await expect(failed.locator("pre.log-tail")).to_contain_text("Traceback")
    shown = await failed.locator("pre.log-tail").text_content() or ""
    assert shown == "[ERROR] RuntimeError: boom\nTraceback (most recent call last):\n  File handler.py\nEND"

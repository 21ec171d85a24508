"""The Event Delivery page in a real headless Chromium: what a person sees."""

from __future__ import annotations

import time

from playwright.async_api import Page, expect

from eventrelay.core.outcome import Category
from tests.admin.server import ADMIN_TOKEN, WRITE_KEY, Served
from tests.deliverylog.records import attempt


async def seed(served: Served) -> None:
    now = time.time()
    log = served.runtime.log
    await log.record([attempt(f"ok{i}", Category.DELIVERED, at=now - 60 + i) for i in range(3)])
    await log.record(
        [
            attempt(
                "boom-1",
                Category.EXECUTION_ERROR,
                status="failed",
                at=now - 20,
                log_tail="START RequestId: 1\nboom from handler\nEND RequestId: 1",
                event={"type": "track", "event": "Checkout Started", "userId": "u42", "writeKey": WRITE_KEY},
            ),
            attempt("slow-1", Category.TIMEOUT, status="retrying", at=now - 15),
            attempt("denied-1", Category.ACCESS_DENIED, status="failed", at=now - 10),
        ]
    )
    await served.dead_job("boom-1")
    await served.dead_job("denied-1")


def cell(page: Page, destination: str, column: str) -> object:
    return page.locator(f'#destinations tr[data-destination="{destination}"] td.{column}')


async def test_a_person_sees_counts_errors_samples_and_can_redrive(served: Served, page: Page) -> None:
    await seed(served)
    await page.goto(f"{served.url}/#token={ADMIN_TOKEN}")

    await expect(cell(page, "lambda-prod", "delivered")).to_have_text("3")  # type: ignore[arg-type]
    await expect(cell(page, "lambda-prod", "failed")).to_have_text("2")  # type: ignore[arg-type]
    await expect(cell(page, "lambda-prod", "retrying")).to_have_text("1")  # type: ignore[arg-type]
    await expect(cell(page, "lambda-other", "delivered")).to_have_text("0")  # type: ignore[arg-type]

    errors = page.locator("#errors tbody")
    await expect(errors.locator('tr[data-category="execution_error"] td.category')).to_have_text("Execution Error")
    await expect(errors.locator('tr[data-category="timeout"] td.category')).to_have_text("Operation timed out")
    await expect(errors.locator('tr[data-category="access_denied"] td.hint')).to_contain_text(
        "sts:ExternalId = ws_eventlog_test"
    )

    sample = page.locator('#samples article[data-category="execution_error"]').first
    await expect(sample).to_contain_text("Execution Error")
    await expect(sample.locator("pre.log-tail")).to_contain_text("boom from handler")
    await expect(sample.locator("pre.sent")).to_contain_text("Checkout Started")
    await expect(sample.locator("pre.request")).to_contain_text('"qualifier": "live"')
    await expect(sample.locator("pre.response")).to_contain_text("Message: boom from handler")

    html = await page.content()
    assert WRITE_KEY not in html and ADMIN_TOKEN not in html
    assert "token" not in page.url  # the fragment is dropped from the address bar

    await expect(page.locator("#failed tbody tr")).to_have_count(2)
    await page.locator('#failed tr[data-message-id="boom-1"] button').click()
    await expect(page.locator("#redrive-result")).to_have_text("Re-drove 1 event.")
    assert await served.runtime.queue.depth("lambda-prod") == 1
    await expect(page.locator("#failed tbody tr")).to_have_count(1)

    await page.locator("#redrive-all").click()
    await expect(page.locator("#redrive-result")).to_have_text("Re-drove 1 event.")
    await expect(page.locator("#no-failed")).to_be_visible()


async def test_the_page_refreshes_on_its_own(served: Served, page: Page) -> None:
    await page.goto(f"{served.url}/admin#token={ADMIN_TOKEN}")
    await expect(cell(page, "lambda-prod", "delivered")).to_have_text("0")  # type: ignore[arg-type]
    await served.runtime.log.record([attempt("late", Category.DELIVERED, at=time.time() - 1)])
    await expect(cell(page, "lambda-prod", "delivered")).to_have_text("1", timeout=15_000)  # type: ignore[arg-type]


async def test_the_page_asks_for_the_token_and_refuses_a_wrong_one(served: Served, page: Page) -> None:
    await page.goto(served.url + "/")
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#token-input", "not-the-admin-token-000")
    await page.click("#login-form button")
    await expect(page.locator("#login-message")).to_contain_text("refused")
    await page.fill("#token-input", ADMIN_TOKEN)
    await page.click("#login-form button")
    await expect(page.locator("#destinations tr[data-destination='lambda-prod']")).to_be_visible()
    await page.locator("#ranges button[data-range='7d']").click()
    await expect(page.locator("#ranges button[data-range='7d']")).to_have_attribute("aria-pressed", "true")


async def test_the_page_loads_without_a_failed_request_in_the_console(served: Served, page: Page) -> None:
    failed: list[str] = []
    page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    await page.goto(f"{served.url}/#token={ADMIN_TOKEN}")
    await expect(cell(page, "lambda-prod", "delivered")).to_have_text("0")  # type: ignore[arg-type]
    await page.wait_for_load_state("networkidle")
    assert failed == []  # the favicon included

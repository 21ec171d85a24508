"""Destination filters in the Settings view, in a real Chromium on the demo a newcomer runs: a person
writes "Only send events that match" and an ordered list of filters, saves them through the Config API,
sees a matching event counted as Filtered, finds them again after a reload; a wrong condition is
explained next to the Filters field with the Config API's message and nothing is saved."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.browser.settings_page import DELIVERY_TIMEOUT_MS, config_api, field_error, open_settings, track
from tests.support.demo import Demo

DEMO = "/api/v1/config/destinations/demo-lambda"
ONLY = 'type = "track" and event != "Internal Ping"'


def filter_row(page: Page, number: int) -> Any:
    """The row of the Filters editor a person knows as "Filter N"."""
    return page.get_by_role("group", name=f"Filter {number}", exact=True)


async def add_filter(page: Page, condition: str, action: str, value: str | None = None) -> None:
    await page.get_by_role("button", name="Add filter").click()
    row = filter_row(page, await page.locator(".filter-row").count())
    await row.get_by_label("If").fill(condition)
    await row.get_by_label("Then").select_option(label=action)
    if action == "Sample":
        await row.get_by_label("Rate").fill(value or "")
    elif value is not None:
        await row.get_by_label("Properties").fill(value)


async def save(page: Page) -> None:
    await page.get_by_role("button", name="Save").click()


async def test_filters_written_on_the_page_are_saved_applied_and_shown_again_after_a_reload(
    demo: Demo, page: Page
) -> None:
    await open_settings(page, demo.url, demo.token)
    await expect(page.get_by_text("No filters: every event that passes the line above is sent.")).to_be_visible()
    await page.get_by_label("Only send events that match").fill(ONLY)
    await add_filter(page, 'event = "Debug Ping"', "Drop")
    await add_filter(page, 'type = "track"', "Drop properties", "context.ip, properties.email\ntraits.address.street")
    await save(page)
    await expect(page.locator("#settings-result")).to_have_text("Saved: the next attempt uses these settings.")

    saved = config_api(demo, DEMO)
    assert saved["only"] == ONLY
    assert saved["filters"] == [
        {"if": 'event = "Debug Ping"', "drop": True},
        {"if": 'type = "track"', "drop_properties": ["context.ip", "properties.email", "traits.address.street"]},
    ]

    track(demo, "u-debug", "Debug Ping")  # matches Filter 1: not sent, counted as Filtered
    track(demo, "u-kept", "Kept Event")  # matches no drop: delivered (without the dropped properties)
    await page.get_by_role("tab", name="Event Delivery").click()
    row = page.locator('#destinations tr[data-destination="demo-lambda"]')
    await expect(row.locator("td.filtered")).to_have_text("1", timeout=DELIVERY_TIMEOUT_MS)
    await expect(row.locator("td.delivered")).to_have_text("1", timeout=DELIVERY_TIMEOUT_MS)
    await expect(row.locator("td.failed")).to_have_text("0")

    await page.reload()
    await page.get_by_role("tab", name="Settings").click()
    await expect(page.get_by_label("Only send events that match")).to_have_value(ONLY)
    await expect(page.locator(".filter-row")).to_have_count(2)
    await expect(filter_row(page, 1).get_by_label("If")).to_have_value('event = "Debug Ping"')
    await expect(filter_row(page, 1).get_by_label("Then")).to_have_value("drop")
    await expect(filter_row(page, 1).get_by_label("Properties")).to_be_hidden()
    await expect(filter_row(page, 2).get_by_label("If")).to_have_value('type = "track"')
    await expect(filter_row(page, 2).get_by_label("Then")).to_have_value("drop_properties")
    await expect(filter_row(page, 2).get_by_label("Properties")).to_have_value(
        "context.ip, properties.email, traits.address.street"
    )


async def test_a_syntax_error_is_shown_next_to_the_filters_and_nothing_is_saved(demo: Demo, page: Page) -> None:
    await open_settings(page, demo.url, demo.token)
    await add_filter(page, 'event = "Debug', "Drop")
    await page.get_by_label("Only send events that match").fill("type = track'")
    await save(page)

    filters_error = field_error(page, "Filters")
    await expect(filters_error).to_contain_text('Filter 1, If: at character 15: expected a closing "')
    await expect(filter_row(page, 1).get_by_label("If")).to_have_attribute("aria-invalid", "true")
    await expect(field_error(page, "Only send events that match")).to_contain_text("at character 13: expected")
    await expect(page.locator("#settings-result")).to_have_text("")
    unchanged = config_api(demo, DEMO)
    assert (unchanged["filters"], unchanged["only"]) == ([], None)

    await page.get_by_label("Only send events that match").fill("")
    await filter_row(page, 1).get_by_label("If").fill('event = "Debug"')
    await add_filter(page, 'type = "page"', "Sample")  # no rate: said on the page, before any request
    await save(page)
    await expect(filters_error).to_have_text(
        "Filter 2, Rate: give the share of the matching events to send, over 0 up to 1 (0.1: one in ten)"
    )
    await expect(filter_row(page, 1).get_by_label("If")).not_to_have_attribute("aria-invalid", "true")

    await filter_row(page, 2).get_by_label("Rate").fill("0.5")
    await add_filter(page, "", "Allow properties", "properties.plan")
    await expect(filter_row(page, 1).get_by_role("button", name="Move up")).to_be_disabled()
    await expect(filter_row(page, 3).get_by_role("button", name="Move down")).to_be_disabled()
    await filter_row(page, 3).get_by_role("button", name="Move up").click()  # allow before sample
    await filter_row(page, 1).get_by_role("button", name="Remove").click()  # the drop goes
    await save(page)
    await expect(page.locator("#settings-result")).to_have_text("Saved: the next attempt uses these settings.")
    await expect(filters_error).to_be_hidden()
    assert config_api(demo, DEMO)["filters"] == [
        {"if": "true", "allow_properties": ["properties.plan"]},
        {"if": 'type = "page"', "sample": 0.5},
    ]

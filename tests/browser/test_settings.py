"""The Settings view in a real Chromium, on the demo a newcomer runs (``eventrelay serve`` without a
config): change a setting without touching any code, live, and see what it did; wrong values are
explained next to their field and change nothing; a file-managed destination is read-only."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Page, expect

from tests.admin.server import ADMIN_TOKEN, make_config, serve
from tests.browser.settings_page import DELIVERY_TIMEOUT_MS, config_api, field_error, open_settings, track
from tests.support.demo import Demo


async def test_log_type_tail_saved_on_the_demo_destination_shows_the_next_events_log_tail(
    demo: Demo, page: Page
) -> None:
    await open_settings(page, demo.url, demo.token)
    await expect(page.get_by_label("Log Type")).to_have_value("None")  # the catalog's default
    await expect(page.get_by_label("External ID")).to_have_value(str(demo.config["workspace"]["id"]))  # type: ignore[index]
    await expect(page.get_by_label("External ID")).not_to_be_editable()

    await page.get_by_label("Log Type").select_option("Tail")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#settings-result")).to_have_text("Saved: the next attempt uses these settings.")
    assert config_api(demo, "/api/v1/config/destinations/demo-lambda")["settings"]["log_type"] == "Tail"

    track(demo, "u-tail", "Tail Saved")  # no restart: the next attempt uses the saved setting
    await page.get_by_role("tab", name="Event Delivery").click()
    sample = page.locator('#samples article[data-category="delivered"]').first
    await expect(sample.locator("pre.sent")).to_contain_text("Tail Saved", timeout=DELIVERY_TIMEOUT_MS)
    await expect(sample.locator("pre.log-tail")).to_contain_text("received track from u-tail: Tail Saved")

    await page.get_by_role("tab", name="Settings").click()
    await page.get_by_role("button", name="Send test event").click()
    tested = page.locator("#test-result")
    await expect(tested.locator("h4")).to_have_text("Send test event: Delivered", timeout=DELIVERY_TIMEOUT_MS)
    await expect(tested.locator("pre.sent")).to_contain_text('"event": "Test Event"')
    await expect(tested.locator("pre.request")).to_contain_text('"log_type": "Tail"')
    await expect(tested.locator("pre.log-tail")).to_contain_text("received track from eventrelay-test-user")

    await page.get_by_role("button", name="Test connection").click()
    await expect(page.locator("#check-result li")).to_have_text(re.compile(r"eventrelay-demo: OK \(\d+ ms\)"))


async def test_an_invalid_value_shows_the_config_apis_message_next_to_its_field_and_nothing_is_applied(
    demo: Demo, page: Page
) -> None:
    await open_settings(page, demo.url, demo.token)
    await page.get_by_label("Region").fill("eu-central-1")  # valid, but saved together with the wrong one
    await page.get_by_label("Lambda", exact=True).fill("not a function!")
    await page.get_by_label("Timeout").fill("forever")
    await page.get_by_role("button", name="Save").click()

    await expect(field_error(page, "Lambda")).to_contain_text("'not a function!' is not a Lambda function name")
    await expect(page.get_by_label("Lambda", exact=True)).to_have_attribute("aria-invalid", "true")
    await expect(field_error(page, "Timeout")).to_contain_text("'forever' is not a duration like 500ms, 5s")
    await expect(field_error(page, "Region")).to_be_hidden()
    await expect(page.locator("#settings-result")).to_have_text("")
    settings = config_api(demo, "/api/v1/config/destinations/demo-lambda")
    assert (settings["settings"]["lambda"], settings["settings"]["region"]) == ("eventrelay-demo", "us-west-2")

    await page.get_by_label("Client Context").fill("{not json")
    await page.get_by_label("Lambda", exact=True).fill("eventrelay-demo")
    await page.get_by_role("button", name="Save").click()
    await expect(field_error(page, "Client Context")).to_contain_text("is not valid JSON")
    await expect(field_error(page, "Lambda")).to_be_hidden()


async def test_a_new_destination_is_created_from_the_page_and_delivers(demo: Demo, page: Page) -> None:
    await page.goto(f"{demo.url}/#token={demo.token}")
    await page.get_by_role("button", name="New destination").click()
    await page.get_by_label("Name").fill("second-lambda")
    await page.get_by_label("Lambda", exact=True).fill("eventrelay-demo")
    await page.get_by_label("Region").fill("us-west-2")
    await page.get_by_label("Role Address").fill("arn:aws:iam::123456789012:role/eventrelay-demo")
    endpoint = config_api(demo, "/api/v1/config/destinations/demo-lambda")["settings"]["endpoint_url"]
    await page.get_by_label("Endpoint URL").fill(endpoint)  # the demo's local endpoint is allowed
    await page.get_by_label("track", exact=True).fill("no such function!")
    await page.get_by_role("button", name="Create").click()
    await expect(field_error(page, "track")).to_contain_text("is not a Lambda function name")

    await page.get_by_label("track", exact=True).fill("")
    await page.get_by_role("button", name="Create").click()
    await expect(page.locator("#settings-result")).to_have_text("Saved: the next attempt uses these settings.")
    await expect(page.locator("#detail-name")).to_have_text("second-lambda")
    await expect(page.locator('#destinations tr[data-destination="second-lambda"]')).to_be_visible()

    track(demo, "u-second", "Both Destinations")
    delivered = page.locator('#destinations tr[data-destination="second-lambda"] td.delivered')
    await expect(delivered).to_have_text("1", timeout=DELIVERY_TIMEOUT_MS)


async def test_a_destination_of_the_configuration_file_is_read_only_and_names_the_file(
    tmp_path: Path, page: Page
) -> None:
    config_file = tmp_path / "eventrelay.yaml"
    async with serve(make_config(tmp_path / "data"), config_file=str(config_file)) as served:
        await open_settings(page, served.url, ADMIN_TOKEN)
        await expect(page.locator("#managed-note")).to_contain_text(f"Managed by the configuration file {config_file}")
        await expect(page.locator("#managed-note")).to_contain_text("changed in the file")
        await expect(page.get_by_label("Lambda", exact=True)).to_be_disabled()
        await expect(page.get_by_label("Log Type")).to_be_disabled()
        await expect(page.get_by_role("button", name="Save")).to_have_count(0)
        await expect(page.get_by_role("button", name="Test connection")).to_be_enabled()

"""What a user sees when the scoring server is down: the page says so in plain words."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from imaging.samples import sample_path


def test_server_down_is_shown_in_plain_words(page: Page, webapp_without_server, screenshot) -> None:
    page.goto(webapp_without_server.url)
    page.wait_for_selector("body[data-ready=true]")
    down = re.compile(r"^The scoring server is not reachable at localhost:\d+\.")
    expect(page.locator("#server-text")).to_have_text(down)
    expect(page.locator("#server-pill")).to_have_class(re.compile(r"\bpill-bad\b"))
    faq_pill = page.locator('#model-pills .pill[data-model="faq_match"]')
    expect(faq_pill).to_have_attribute("data-ready", "false")

    page.fill("#faq-input", "how do I clone an object")
    expect(page.locator("#faq-error")).to_have_text(down)
    expect(page.locator("#faq-results > li")).to_have_count(0)

    page.set_input_files("#file-input", str(sample_path("coffee")))
    page.wait_for_selector("#image-card[data-state=error]")
    expect(page.locator("#image-error")).to_have_text(down)
    screenshot(page, "server-down")

"""The example page in headless Chromium against the real Triton server: what a user sees.

Each test leaves a screenshot in ``test-artifacts/webapp/`` (the README's come from here).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from faq.data import load_dataset
from imaging.samples import sample_path

LATENCY = re.compile(r"^\d+(\.\d+)? m?s$")


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")


def wait_for_answer(page: Page, question: str) -> None:
    page.wait_for_function(
        "q => { const c = document.querySelector('#faq-card');"
        " return c.dataset.state === 'done' && c.dataset.query === q; }",
        arg=question,
    )


@pytest.fixture(scope="module")
def originals():
    return load_dataset().originals


def test_status_strip_shows_every_model_ready(page: Page, webapp, image_models, screenshot) -> None:
    open_page(page, webapp.url)
    expect(page.locator("#server-text")).to_have_text(re.compile(r"live, ready$"))
    assert "efficientnet_lite0" in image_models and "resnet152_pytorch" in image_models
    for name in ("faq_match", *image_models):
        pill = page.locator(f'#model-pills .pill[data-model="{name}"]')
        expect(pill).to_have_attribute("data-ready", "true")
    page.click("#status-details summary")
    # the details table lists the ensembles' steps too, from the repository index
    expect(page.locator("#status-table tbody tr")).not_to_have_count(0)
    assert page.locator("#status-table tbody tr").count() > 4
    screenshot(page, "status")


def test_typing_a_faq_question_shows_it_first(page: Page, webapp, originals, screenshot) -> None:
    open_page(page, webapp.url)
    row = originals.iloc[0]
    # typed key by key: the page asks as you type and must end on the full question
    page.locator("#faq-input").press_sequentially(row.question, delay=8)
    wait_for_answer(page, row.question)
    results = page.locator("#faq-results > li")
    expect(results).to_have_count(5)
    first = results.first
    expect(first).to_have_attribute("data-faq-id", str(row.faq_id))
    expect(first.locator(".faq-question")).to_have_text(row.question_text)  # the title as written
    expect(first.locator(".faq-answer")).to_have_text(
        row.answer_text
    )  # the answer as readable text, code kept
    best = float(first.locator(".pct").inner_text().rstrip("%"))
    second = float(results.nth(1).locator(".pct").inner_text().rstrip("%"))
    assert best > second
    expect(page.locator("#faq-meta")).to_contain_text("faq_match")
    expect(page.locator("#faq-meta")).to_contain_text("round trip")
    expect(page.locator("#faq-error")).to_be_hidden()
    screenshot(page, "faq")


@pytest.mark.parametrize("index", [7, 33, 61])
def test_other_faq_questions_rank_first(page: Page, webapp, originals, index: int) -> None:
    open_page(page, webapp.url)
    row = originals.iloc[index % len(originals)]
    page.fill("#faq-input", row.question)
    wait_for_answer(page, row.question)
    expect(page.locator("#faq-results > li").first).to_have_attribute("data-faq-id", str(row.faq_id))


def test_text_too_long_is_explained(page: Page, webapp, screenshot) -> None:
    open_page(page, webapp.url)
    limit = page.evaluate("fetch('/api/config').then(r => r.json()).then(c => c.max_question_chars)")
    page.fill("#faq-input", "why " * (limit // 4 + 1))
    expect(page.locator("#faq-error")).to_contain_text("Your question is too long")
    expect(page.locator("#faq-error")).to_contain_text(f"the limit is {limit} characters")
    expect(page.locator("#faq-counter")).to_have_class(re.compile(r"\bover\b"))


def test_coffee_photo_is_espresso(page: Page, webapp, image_models, screenshot) -> None:
    open_page(page, webapp.url)
    page.set_input_files("#file-input", str(sample_path("coffee")))
    page.wait_for_selector("#image-card[data-state=done]")
    expect(page.locator(".model-col")).to_have_count(len(image_models))
    for name in image_models:
        column = page.locator(f'.model-col[data-model="{name}"]')
        expect(column).to_have_attribute("data-state", "done")
        expect(column.locator(".top5 > li")).to_have_count(5)
        assert LATENCY.match(column.locator(".latency").inner_text()), name
    efficientnet = page.locator('.model-col[data-model="efficientnet_lite0"]')
    expect(efficientnet.locator(".top5 > li").first.locator(".label")).to_contain_text("espresso")
    for name in (m for m in image_models if m.startswith("resnet152")):
        expect(page.locator(f'.model-col[data-model="{name}"] .note')).to_contain_text("Random weights")
    expect(page.locator("#image-error")).to_be_hidden()
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#image-meta")).to_contain_text("coffee.png")
    screenshot(page, "image")


def test_dropped_cat_photo_is_a_cat(page: Page, webapp) -> None:
    """Drag and drop, as a user would from a file manager (a DataTransfer with the file)."""
    open_page(page, webapp.url)
    data = list(Path(sample_path("chelsea")).read_bytes())
    page.evaluate(
        """bytes => {
            const file = new File([new Uint8Array(bytes)], 'chelsea.png', {type: 'image/png'});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            document.querySelector('#dropzone').dispatchEvent(
                new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }""",
        data,
    )
    page.wait_for_selector("#image-card[data-state=done]")
    top = page.locator('.model-col[data-model="efficientnet_lite0"] .top5 > li').first.locator(".label")
    expect(top).to_contain_text(re.compile(r"cat|tabby", re.IGNORECASE))


def test_garbage_upload_gets_a_clear_error(page: Page, webapp, image_models, screenshot) -> None:
    open_page(page, webapp.url)
    garbage = random.Random(1234).randbytes(50_000)
    page.set_input_files(
        "#file-input", files=[{"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": garbage}]
    )
    page.wait_for_selector("#image-card[data-state=error]")
    banner = page.locator("#image-error")
    expect(banner).to_be_visible()
    expect(banner).to_have_text(re.compile(r"^The image was rejected: .+\.$"))
    assert "Traceback" not in banner.inner_text() and "ensemble '" not in banner.inner_text()
    for name in image_models:
        column = page.locator(f'.model-col[data-model="{name}"]')
        expect(column).to_have_attribute("data-state", "error")
        expect(column.locator(".alert")).to_contain_text("The image was rejected")
    screenshot(page, "error-garbage")


def test_oversized_file_is_refused_before_upload(page: Page, webapp) -> None:
    open_page(page, webapp.url)
    limit = page.evaluate("fetch('/api/config').then(r => r.json()).then(c => c.max_upload_bytes)")
    page.set_input_files(
        "#file-input", files=[{"name": "huge.png", "mimeType": "image/png", "buffer": b"\0" * (limit + 1)}]
    )
    expect(page.locator("#image-error")).to_contain_text("The file is too large")


def test_overview_for_the_readme(page: Page, webapp, screenshot: Callable) -> None:
    """One page with a question answered and a photo classified: the README's picture."""
    open_page(page, webapp.url)
    question = "how do I remove a specific item from an array"
    page.locator("#faq-input").press_sequentially(question, delay=10)
    wait_for_answer(page, question)
    page.set_input_files("#file-input", str(sample_path("coffee")))
    page.wait_for_selector("#image-card[data-state=done]")
    expect(page.locator("#faq-results > li")).to_have_count(5)
    expect(page.locator("#faq-results > li .faq-question").first).to_contain_text("array")
    page.wait_for_timeout(5500)  # one more status poll: the strip shows the requests just made
    expect(page.locator('#model-pills .pill[data-model="faq_match"] small')).to_contain_text("ok")
    screenshot(page, "overview")

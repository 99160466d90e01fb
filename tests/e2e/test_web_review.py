"""The tag review screen in a real browser (Debian's Chromium, driven by Playwright) against `catalens serve`.

The store is indexed by the real CLI; its tags are written through the store's tag table, as a tagging run
writes them. The service, browser and page fixtures are those of ``test_web.py`` (its ``store`` fixture is
replaced by the one here). A person's decisions made on the page are checked through the HTTP API.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.test_web import (  # noqa: F401  (fixtures)
    DEMO_IMAGES,
    _expect,
    _settle,
    base_url,
    browser,
    open_page,
    screenshots,
)

# (image, id, title)
ITEMS = [
    ("high-heeled-shoe", "shoes/heel", "Red high-heeled shoe"),  # an id with a slash
    ("teapot", "teapot", "Ceramic teapot"),
    ("banana", "banana", "Banana"),
    ("guitar", "guitar", "Acoustic guitar"),
]
COLOURS = ["red", "blue", "green", "brown", "yellow", "white", "pink"]
TAXONOMY = {"attributes": {"colour": {"values": COLOURS}, "material": {"values": ["wood", "metal"]}}}
# (id, attribute, value, confidence, decision, runner-up, its confidence): three suggestions wait for review.
TAGS = [
    ("shoes/heel", "colour", "red", 0.30, "review", "pink", 0.25),
    ("teapot", "colour", "white", 0.45, "review", "blue", 0.20),
    ("banana", "colour", "yellow", 0.60, "review", "green", 0.30),
    ("guitar", "colour", "brown", 0.95, "accept", "red", 0.02),
    ("guitar", "material", "wood", 0.90, "accept", "metal", 0.05),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_spec: str) -> Path:
    """A four-item store indexed by `catalens index`, with one tagging run's tags."""
    from catalens.indexer.store import CatalogStore
    from catalens.indexer.store.tags import ModelTag
    from catalens.indexer.tagging.taxonomy import parse_taxonomy
    from catalens.search.cli import main

    root = tmp_path_factory.mktemp("review")
    rows = [{"id": i, "image": str(DEMO_IMAGES / f"{image}.jpg"), "title": title} for image, i, title in ITEMS]
    manifest = root / "catalog.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    path = root / "store"
    assert main(["index", str(manifest), "--store", str(path), "--model", tiny_spec, "--quiet", "--json"]) == 0

    taxonomy = parse_taxonomy(json.dumps(TAXONOMY), fmt="json")
    by_item: dict[str, list[ModelTag]] = {}
    for item_id, attribute, value, confidence, decision, runner_up, runner_conf in TAGS:
        tag = ModelTag(attribute, value, confidence, decision, runner_up=runner_up, runner_up_confidence=runner_conf)
        by_item.setdefault(item_id, []).append(tag)
    with CatalogStore.open(path) as catalog, catalog.writer_lock():
        run = catalog.tags.start_run("sig", taxonomy.fingerprint, taxonomy.to_json(), tiny_spec, None)
        keys = {i: item.key for i, item in catalog.get_items_by_id(by_item).items()}
        catalog.tags.write(
            run, "sig", [(keys[i], sorted({t.attribute for t in tags}), tags) for i, tags in by_item.items()]
        )
        catalog.tags.finish_run(run, {})
    return path


def _tags(base_url: str, item_id: str) -> set[tuple[str, str, str, str]]:  # noqa: F811
    item = httpx.get(f"{base_url}/v1/items/{quote(item_id, safe='')}", timeout=10).json()
    return {(t["attribute"], t["value"], t["decision"], t["source"]) for t in item["tags"]}


@pytest.mark.slow
def test_reviewing_tags_with_the_keyboard(open_page: Any, base_url: str, screenshots: Path) -> None:  # noqa: F811
    expect = _expect()
    page, problems = open_page("/?view=catalog")
    counts = page.locator("#catalog-tags tbody tr")
    expect(counts).to_have_count(2)
    expect(counts.first).to_contain_text("Colour")
    page.locator("#catalog-tags").screenshot(path=str(screenshots / "catalog-tags.png"))
    page.locator("#review-link").click()
    expect(page).to_have_url(re.compile(r"\?view=review$"))
    expect(page.locator("#review-link")).to_be_hidden()

    # Least confident first: the shoe, its suggestion and runner-up, with the large image.
    item = page.locator("#review-card .review-item")
    progress = page.locator("#review-progress")
    expect(progress).to_have_text("1 of 3")
    expect(item).to_have_attribute("data-id", "shoes/heel")
    expect(item.locator(".review-suggested")).to_contain_text("red")
    expect(item.locator(".review-suggested")).to_contain_text("30%")
    expect(item.locator(".review-runner-up")).to_contain_text("pink")
    expect(item.locator("img")).to_have_attribute("src", re.compile(r"/v1/items/shoes%2Fheel/image$"))
    expect(page.locator("#review-choice option")).to_have_count(len(COLOURS))
    _settle(page)
    page.screenshot(path=str(screenshots / "review.png"), full_page=True)

    # The item view opens over the review screen, with the suggestion; keys typed there decide nothing.
    item.locator(".review-title a").click()
    dialog = page.locator("#item-dialog")
    expect(dialog.locator(".item-section", has_text="Suggested tags")).to_contain_text("Colour: red")
    page.keyboard.press("a")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(re.compile(r"\?view=review$"))
    expect(progress).to_have_text("1 of 3")

    page.keyboard.press("a")  # accept
    expect(progress).to_have_text("2 of 3")
    expect(item).to_have_attribute("data-id", "teapot")
    assert _tags(base_url, "shoes/heel") == {("colour", "red", "accept", "person")}

    page.keyboard.press("2")  # the second value: blue, instead of white
    expect(progress).to_have_text("3 of 3")
    expect(item).to_have_attribute("data-id", "banana")
    assert _tags(base_url, "teapot") == {("colour", "blue", "accept", "person")}

    page.keyboard.press("s")  # skip: the suggestion stays in the queue
    expect(page.locator("#review-card .empty-queue")).to_contain_text("1 skipped")
    expect(progress).to_have_text("3 of 3 done")
    assert _tags(base_url, "banana") == {("colour", "yellow", "review", "model")}

    # The attribute filter starts a new pass over what is left: the skipped banana.
    page.locator("#review-attribute").select_option("colour")
    expect(page).to_have_url(re.compile(r"\?view=review&tag=colour$"))
    expect(progress).to_have_text("1 of 1")
    expect(item).to_have_attribute("data-id", "banana")
    page.keyboard.press("ArrowRight")  # skip again, then go over the skipped ones
    expect(page.locator("#review-card .empty-queue")).to_contain_text("0 decided, 1 skipped")
    page.get_by_role("button", name="Review the skipped ones").click()
    expect(progress).to_have_text("1 of 1")
    page.locator("#review-choice").select_option("green")
    page.locator("#review-use").click()
    expect(page.locator("#review-card .empty-queue")).to_contain_text("1 decided, 0 skipped")
    assert _tags(base_url, "banana") == {("colour", "green", "accept", "person")}

    # Back in the catalog view, the counts follow the decisions.
    page.locator("a", has_text="← Catalog").click()
    expect(page.locator("#catalog-tags")).to_contain_text("No suggestion is waiting for review")
    info = httpx.get(f"{base_url}/v1/info", timeout=10).json()["tags"]
    assert info["colour"] == {"accept": 4, "review": 0, "reject": 0}
    problems.check()


@pytest.mark.slow
def test_an_attribute_with_nothing_to_review_says_so(open_page: Any) -> None:  # noqa: F811
    expect = _expect()
    page, problems = open_page("/?view=review&tag=material")
    expect(page.locator("#review-card .empty-queue")).to_contain_text("Nothing to review for Material")
    expect(page.locator("#review-progress")).to_have_text("")
    expect(page.locator("#review-attribute")).to_have_value("material")
    page.keyboard.press("a")  # nothing shown: nothing happens
    expect(page.locator("#review-error")).to_be_empty()

    # Accepted tags show among the item's facts, like catalog attributes.
    page.goto(page.url + "&item=guitar")
    facts = page.locator("#item-dialog .facts")
    expect(facts).to_contain_text("Material")
    expect(facts).to_contain_text("wood")
    expect(facts).to_contain_text("brown")
    problems.check()

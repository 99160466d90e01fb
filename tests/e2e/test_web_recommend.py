"""Recommendations on the web page in a real browser (Debian's Chromium, driven by Playwright) against `catalens serve`.

Picking result cards (checkbox or long press) for "more like these", "less like this" on a card, the example
chips and skipped ids; in the item view, "complete the look" (other categories, grouped) and the brand toggle of
the similar items. The requests the page sends to ``POST /v1/recommend`` are checked, and what it shows is
checked against the catalog. One store, one service and one browser for the module, from ``test_web.py``'s
fixtures (its ``store`` is replaced by a lighter one here: no captions).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_web import (  # noqa: F401  (fixtures)
    CATALOG,
    DEMO_IMAGES,
    _expect,
    _query,
    _settle,
    base_url,
    browser,
    open_page,
    screenshots,
)

NO_BRAND = "violin-plain"  # an indexed item without a brand attribute
BRAND = {item_id: brand for _, item_id, _, _, _, brand, _ in CATALOG}
CATEGORY = {item_id: category for _, item_id, _, category, _, _, _ in CATALOG} | {NO_BRAND: "music"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_spec: str) -> Path:
    """test_web's catalog (categories, brands) indexed by `catalens index`, with one item that has no brand."""
    from catalens.search.cli import main

    root = tmp_path_factory.mktemp("recommend")
    rows = [
        {
            "id": item_id,
            "image": str(DEMO_IMAGES / f"{image}.jpg"),
            "title": title,
            "category": category,
            "price": price,
            "attributes": {"brand": brand, "color": color},
        }
        for image, item_id, title, category, price, brand, color in CATALOG
    ]
    rows.append({"id": NO_BRAND, "image": str(DEMO_IMAGES / "violin.jpg"), "title": "Violin", "category": "music"})
    manifest = root / "catalog.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    path = root / "store"
    assert main(["index", str(manifest), "--store", str(path), "--model", tiny_spec, "--quiet", "--json"]) == 0
    return path


def _ids(root: Any) -> list[str]:
    """The item ids of the cards under ``root`` (a page or a locator), in order."""
    ids: list[str] = root.locator(".card").evaluate_all("cards => cards.map(c => c.dataset.id)")
    return ids


def _recommend_body(page: Any, action: Any) -> dict[str, Any]:
    """Run ``action`` and return the JSON body of the POST /v1/recommend it sends."""
    with page.expect_request(lambda r: r.url.endswith("/v1/recommend") and r.method == "POST") as sent:
        action()
    body: dict[str, Any] = sent.value.post_data_json
    return body


@pytest.mark.slow
def test_picking_cards_for_more_like_these_and_less_like_one(open_page: Any, screenshots: Path) -> None:  # noqa: F811
    expect = _expect()
    page, problems = open_page("/?q=shoe&mode=lexical")
    expect(page.locator("#status")).to_contain_text("Results 1–")

    # Pick two cards with their checkboxes; the bar counts them.
    for item_id in ("shoe-trail", "shoe-flat"):
        page.locator(f'#results .card[data-id="{item_id}"] .pick').check()
    expect(page.locator("#picked-count")).to_have_text("2 items picked")
    expect(page.locator('#results .card[data-id="shoe-flat"]')).to_have_class(re.compile(r"\bpicked\b"))

    body = _recommend_body(page, lambda: page.get_by_role("button", name="More like these").click())
    assert body["positive"] == ["shoe-trail", "shoe-flat"] and body["negative"] == []
    assert body["k"] == 25 and body["offset"] == 0
    expect(page.locator("#status")).to_contain_text("more like 2 items")
    assert _query(page) == {"more": ["shoe-trail", "shoe-flat"]}  # the words started afresh
    expect(page.locator("#results-heading")).to_be_focused()
    expect(page.locator("#picked-count")).to_be_empty()
    expect(page.locator("#mode")).to_be_disabled()
    chips = page.locator('#query-chips .chip[data-example="more"]')
    expect(chips).to_have_count(2)
    expect(chips.first).to_contain_text("Trail running shoe")
    ids = _ids(page.locator("#results"))
    assert len(ids) == len(CATALOG) - 2 + 1 and not {"shoe-trail", "shoe-flat"} & set(ids)  # inputs never shown

    # "Less like this" on a card adds it as a negative example of this recommendation.
    first = ids[0]
    body = _recommend_body(page, lambda: page.locator(f'#results .card[data-id="{first}"] a.less').click())
    assert body["positive"] == ["shoe-trail", "shoe-flat"] and body["negative"] == [first]
    expect(page.locator('#query-chips .chip[data-example="less"]')).to_have_count(1)
    expect(page.locator("#status")).to_contain_text("less like 1 item")
    expect(page.locator(f'#results .card[data-id="{first}"]')).to_have_count(0)

    # A chip's remove button drops that example; back goes to the previous examples.
    remove = page.get_by_role("button", name="Remove “Ballet flat shoe” from the examples")
    body = _recommend_body(page, remove.click)
    assert body["positive"] == ["shoe-trail"] and body["negative"] == [first]
    page.go_back()
    expect(page.locator('#query-chips .chip[data-example="more"]')).to_have_count(2)
    expect(page.locator("#status")).to_contain_text("more like 2 items")
    page.locator("#results .card .pick").first.check()
    _settle(page)
    page.screenshot(path=str(screenshots / "recommend.png"))
    page.locator("#results .card .pick").first.uncheck()

    # A long press on a touch screen picks a card, and the click that ends it does not open the item.
    card = page.locator("#results .card").nth(1)
    card.locator(".card-link").dispatch_event("pointerdown", {"pointerType": "touch", "isPrimary": True})
    expect(card.locator(".pick")).to_be_checked()
    card.locator(".card-link").dispatch_event("pointerup", {"pointerType": "touch", "isPrimary": True})
    card.locator(".card-link").dispatch_event("click")
    expect(page.locator("#picked-count")).to_have_text("1 item picked")
    assert "item" not in _query(page)
    page.get_by_role("button", name="Clear picks").click()
    expect(card.locator(".pick")).not_to_be_checked()

    # Ids the service could not use are named.
    page.goto(page.url.split("?")[0] + "?more=shoe-trail&more=nope")
    expect(page.locator("#skipped")).to_have_text("Not used as examples: nope (not found).")
    expect(page.locator("#status")).to_contain_text("Results 1–")
    problems.check(allow=("404",))  # the unknown item's title and thumbnail


@pytest.mark.slow
def test_less_like_this_starts_from_the_query(open_page: Any) -> None:  # noqa: F811
    expect = _expect()
    page, problems = open_page("/?q=hat&mode=vector&cat=hats&cat=clothing")
    expect(page.locator("#status")).to_contain_text("Results 1–")
    first = _ids(page.locator("#results"))[0]
    with page.expect_request(lambda r: r.url.endswith("/v1/embed")) as embedded:
        body = _recommend_body(page, lambda: page.locator(f'#results .card[data-id="{first}"] a.less').click())
    assert embedded.value.post_data_json == {"text": "hat"}
    # The words stay the positive side (as a vector from /v1/embed), the filters stay the filters.
    [positive] = body["positive"]
    assert set(positive) == {"vector", "weight"} and len(positive["vector"]) > 8
    assert body["negative"] == [first] and body["filters"]["categories"] == ["hats", "clothing"]
    assert _query(page) == {"q": ["hat"], "mode": ["vector"], "cat": ["hats", "clothing"], "less": [first]}
    expect(page.locator("#status")).to_contain_text("“hat”, less like 1 item")
    ids = _ids(page.locator("#results"))
    assert ids and first not in ids and {CATEGORY[i] for i in ids} <= {"hats", "clothing"}
    expect(page.locator("#query-chips .chip")).to_contain_text("Less like")

    # An uploaded image joins the positive side, as its vector from /v1/embed (multipart); the examples stay.
    with page.expect_request(lambda r: r.url.endswith("/v1/embed")) as embedded:
        body = _recommend_body(page, lambda: page.locator("#image-file").set_input_files(DEMO_IMAGES / "top-hat.jpg"))
    assert "multipart/form-data" in embedded.value.headers["content-type"]
    assert [set(p) for p in body["positive"]] == [{"vector", "weight"}] * 2 and body["negative"] == [first]
    expect(page.locator("#status")).to_contain_text("for your image, “hat”, less like 1 item")
    problems.check()


@pytest.mark.slow
def test_item_view_completes_the_look_and_toggles_the_brand(open_page: Any, screenshots: Path) -> None:  # noqa: F811
    expect = _expect()
    page, problems = open_page("/?q=shoe&mode=lexical")
    expect(page.locator("#status")).to_contain_text("Results 1–")
    dialog = page.locator("#item-dialog")
    with page.expect_response(lambda r: r.url.endswith("/v1/recommend")) as answered:
        page.locator('#results .card-link[data-item="shoe-heel"]').click()
    body = answered.value.request.post_data_json
    assert body["positive"] == ["shoe-heel"] and body["group_by"] == "category" and body["group_size"] == 2
    # The filter lists every category but the item's own: the filter syntax has no "not".
    others = {c for c in CATEGORY.values() if c != "shoes"}
    assert set(body["filters"]["categories"]) == others and body["k"] == 4

    look = dialog.locator(".complete-look")
    groups = look.locator(".look-group")
    expect(groups).to_have_count(4)
    names = groups.locator("h4").all_inner_texts()
    assert len(set(names)) == 4 and set(names) <= others
    for group, name in zip(groups.all(), names, strict=True):
        ids = _ids(group)
        assert 1 <= len(ids) <= 2 and {CATEGORY[i] for i in ids} == {name}

    # Fewer from this brand: at most one item per brand (max_per); more: that brand only (a filter).
    fewer = dialog.get_by_role("button", name="Fewer from Acme")
    more = dialog.get_by_role("button", name="More from Acme")
    similar = dialog.locator(".similar")
    body = _recommend_body(page, fewer.click)
    assert body == {"positive": ["shoe-heel"], "k": 8, "max_per": {"brand": 1}}
    expect(fewer).to_have_attribute("aria-pressed", "true")
    expect(similar.locator("[role=status]")).to_contain_text("at most one per brand")
    brands = [BRAND.get(i) for i in _ids(similar)]
    assert len(brands) == len(set(brands)) == 4  # Acme, Kestrel, Marigold and the violin's none

    body = _recommend_body(page, more.click)
    assert body["filters"] == {"attributes": {"brand": "Acme"}}
    expect(more).to_have_attribute("aria-pressed", "true")
    expect(fewer).to_have_attribute("aria-pressed", "false")
    expect(similar.locator("[role=status]")).to_contain_text("all from Acme")
    ids = _ids(similar)
    assert ids and "shoe-heel" not in ids and {BRAND[i] for i in ids} == {"Acme"}
    _settle(page)
    look.evaluate("section => section.scrollIntoView()")
    page.screenshot(path=str(screenshots / "item-recommend.png"))

    # Pressed again, the toggle goes back to plain similar items; the choice stays for the next item.
    with page.expect_request(lambda r: "/similar?" in r.url):
        more.click()
    expect(more).to_have_attribute("aria-pressed", "false")
    _recommend_body(page, fewer.click)
    dialog.locator(f'.similar .card-link:not([data-item="{NO_BRAND}"])').first.click()
    expect(dialog.get_by_role("button", name=re.compile("^Fewer from"))).to_have_attribute("aria-pressed", "true")

    # An item without a brand has no toggle.
    page.goto(page.url.split("?")[0] + f"?item={NO_BRAND}")
    expect(dialog.locator("#item-title")).to_have_text("Violin")
    expect(dialog.locator(".similar .card").first).to_be_visible()
    expect(dialog.locator(".brand-toggle")).to_have_count(0)
    expect(dialog.locator(".look-group").first).to_be_visible()
    assert "music" not in dialog.locator(".look-group h4").all_inner_texts()
    problems.check()

"""The web page in a real browser: Playwright drives Debian's Chromium against a real `catalens serve`.

One store, one service and one browser per module (built in the fixtures below); every test opens its own
browser context. Screenshots of the main views go to ``$CATALENS_SCREENSHOTS`` or, by default, to a
``screenshots`` folder under pytest's temporary directory. The browser tests skip, saying why, when
``/usr/bin/chromium`` or the ``playwright`` package is missing; Playwright never downloads a browser here.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.serving import REPO, start_serve, stop

WEB = REPO / "web"
DEMO_IMAGES = REPO / "scripts" / "data" / "demo_catalog" / "images"
CHROMIUM = Path("/usr/bin/chromium")
PAGE_BUDGET_BYTES = 150 * 1024
FIRST_RENDER_BUDGET_MS = 1000

# (image, id, title, category, price, brand, color)
CATALOG: list[tuple[str, str, str, str, float, str, str]] = [
    ("running-shoe", "shoe-trail", "Trail running shoe", "shoes", 89.0, "Kestrel", "grey"),
    ("hiking-boot", "boot-hiking", "Leather hiking boot", "shoes", 129.0, "Acme", "brown"),
    ("flat-shoe", "shoe-flat", "Ballet flat shoe", "shoes", 49.5, "Marigold", "pink"),
    ("high-heeled-shoe", "shoe-heel", "Red high-heeled shoe", "shoes", 99.0, "Acme", "red"),
    ("t-shirt", "shirt-cotton", "Cotton T-shirt", "clothing", 19.0, "Kestrel", "blue"),
    ("jeans", "jeans-denim", "Denim jeans", "clothing", 59.0, "Marigold", "blue"),
    ("dress", "dress-summer", "Summer dress", "clothing", 79.0, "Acme", "red"),
    ("top-hat", "hat-top", "Top hat", "hats", 45.0, "Acme", "black"),
    ("billed-cap", "cap-baseball", "Baseball cap", "hats", 15.0, "Kestrel", "green"),
    ("red-apple", "apple-red", "Red apple", "food", 1.2, "Marigold", "red"),
    ("banana", "banana", "Banana", "food", 0.9, "Marigold", "yellow"),
    ("teapot", "teapot", "Ceramic teapot", "kitchen", 35.0, "Acme", "white"),
    ("guitar", "guitar", "Acoustic guitar", "music", 249.0, "Kestrel", "brown"),
]
# Markup in catalog fields must reach the page as text, never as elements.
HOSTILE_TITLE = 'Violin <img src=x onerror="window.__xss=1"> & "bow"'
HOSTILE_ID = "violin-hostile"


# -- page files (no browser needed) ----------------------------------------------------------------------


def _page_files() -> list[Path]:
    return sorted(p for p in WEB.iterdir() if p.is_file() and p.suffix in {".html", ".js", ".css", ".svg"})


def test_page_files_are_small_and_shipped() -> None:
    files = _page_files()
    names = {p.name for p in files}
    assert {"index.html", "app.js", "style.css"} <= names
    total = sum(p.stat().st_size for p in files)
    assert total < PAGE_BUDGET_BYTES, f"the page's own files are {total} bytes, over the {PAGE_BUDGET_BYTES} budget"
    # Every file must match a package-data glob, or the wheel ships a page without it.
    import tomllib

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["catalens.web"]
    shipped = [p for p in WEB.iterdir() if p.is_file() and p.name != "__init__.py"]
    unshipped = [p.name for p in shipped if not any(p.match(glob) for glob in globs)]
    assert not unshipped, f"not covered by package-data: {unshipped}"


def test_page_scripts_never_insert_html() -> None:
    """Service strings go in as text; even the <mark> snippets are parsed into text nodes (web/dom.js)."""
    sinks = re.compile(
        r"\.(innerHTML|outerHTML|insertAdjacentHTML|createContextualFragment)\b|document\.write|\beval\(|new Function"
    )
    for path in WEB.glob("*.js"):
        found = sinks.search(path.read_text())
        assert found is None, f"{path.name} uses {found.group(0) if found else ''}"


def test_page_links_only_local_resources() -> None:
    html = (WEB / "index.html").read_text()
    assert "Content-Security-Policy" in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "the page must not load anything from elsewhere"


# -- fixtures: store, service, browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_spec: str) -> Path:
    """A small store built by the real CLI: a manifest, `catalens index`, `catalens caption --captioner attributes`."""
    from catalens.search.cli import main

    root = tmp_path_factory.mktemp("web")
    rows = [
        {
            "id": item_id,
            "image": str(DEMO_IMAGES / f"{image}.jpg"),
            "title": title,
            "description": f"A {title.lower()} from {brand}.",
            "category": category,
            "price": price,
            "attributes": {"brand": brand, "color": color},
        }
        for image, item_id, title, category, price, brand, color in CATALOG
    ]
    rows.append(
        {
            "id": HOSTILE_ID,
            "image": str(DEMO_IMAGES / "violin.jpg"),
            "title": HOSTILE_TITLE,
            "description": "<script>window.__xss = 2</script> strings and a bow",
            "category": "music",
            "price": 399.0,
            "attributes": {"brand": "<b>Bold</b>", "color": "brown"},
        }
    )
    rows.append({"id": "broken", "image": str(root / "missing.jpg"), "title": "Broken", "category": "misc"})
    manifest = root / "catalog.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    path = root / "store"
    assert main(["index", str(manifest), "--store", str(path), "--model", tiny_spec, "--quiet", "--json"]) == 0
    assert main(["caption", "--store", str(path), "--captioner", "attributes", "--quiet", "--json"]) == 0
    return path


@pytest.fixture(scope="module")
def base_url(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`catalens serve` on a free loopback port, for the whole module."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "CATALENS_REFRESH_INTERVAL_S": "5"}
    with (tmp_path_factory.mktemp("serve") / "serve.log").open("w") as log:
        base, process = start_serve(store, env=env, log=log)
        try:
            yield base
        finally:
            stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (make sysdeps)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing: pip install -e '.[dev]'"
    )
    sync_api.expect.set_options(timeout=15_000)
    with sync_api.sync_playwright() as playwright:
        # Debian's Chromium, never a downloaded one (`playwright install` is not needed and must not run).
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--headless=new", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CATALENS_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class PageProblems:
    """Uncaught exceptions and console errors a page produced."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def check(self, allow: tuple[str, ...] = ()) -> None:
        unexpected = [e for e in self.errors if not any(a in e for a in allow)]
        assert not unexpected, f"the page reported errors: {unexpected}"


@pytest.fixture
def open_page(browser: Any, base_url: str) -> Iterator[Callable[..., tuple[Any, PageProblems]]]:
    contexts: list[Any] = []

    def open_(path: str = "/", **context_options: Any) -> tuple[Any, PageProblems]:
        options = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US", **context_options}
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        problems = PageProblems()
        page.on("pageerror", lambda error: problems.errors.append(f"uncaught: {error}"))
        page.on("console", lambda m: problems.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.goto(base_url + path)
        return page, problems

    yield open_
    for context in contexts:
        context.close()


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _settle(page: Any) -> None:
    """Wait for the images in view to load, so screenshots show them (they are lazy-loaded)."""
    page.wait_for_function(
        "() => [...document.images].filter(i => i.checkVisibility() && i.getBoundingClientRect().top < innerHeight"
        " && i.getBoundingClientRect().bottom > 0).every(i => i.complete)"
    )


def _card_titles(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#results .card-title").all_inner_texts()]


def _query(page: Any) -> dict[str, list[str]]:
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(page.url).query)


# -- the shopper's page ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_typing_searches_keeps_the_query_in_the_url_and_back_restores_it(open_page: Any, screenshots: Path) -> None:
    expect = _expect()
    page, problems = open_page("/")
    expect(page.locator("#q")).to_be_focused()
    expect(page.locator("#filters-body input[type=checkbox]").first).to_be_visible()
    _settle(page)
    page.screenshot(path=str(screenshots / "landing.png"))

    page.locator("#q").press_sequentially("shoe", delay=30)  # debounced: one search, not four
    expect(page.locator("#status")).to_contain_text("Results 1–")
    expect(page).to_have_url(re.compile(r"\?q=shoe$"))
    assert _card_titles(page)[0].lower().endswith("shoe")
    page.locator("#q").press("Enter")

    page.locator("#q").fill("hat")
    page.locator("#q").press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=hat$"))
    expect(page.locator("#results .card-title").first).to_have_text(re.compile("hat", re.I))
    _settle(page)
    page.screenshot(path=str(screenshots / "search.png"))

    page.go_back()
    expect(page).to_have_url(re.compile(r"\?q=shoe$"))
    expect(page.locator("#q")).to_have_value("shoe")
    expect(page.locator("#results .card-title").first).to_have_text(re.compile("shoe", re.I))

    # The score shows on hover; the explanation marks the matched words.
    first = page.locator("#results .card").first
    first.hover()
    expect(first.locator(".score")).to_have_css("opacity", "1")
    first.locator(".why summary").click()
    expect(first.locator(".why-fields mark").first).to_have_text(re.compile("shoe", re.I))
    problems.check()


@pytest.mark.slow
def test_pages_of_results_with_lazy_thumbnails(open_page: Any) -> None:
    expect = _expect()
    indexed = len(CATALOG) + 1
    page, problems = open_page("/?q=anything&mode=vector&k=4")
    expect(page.locator("#status")).to_have_text("Results 1–4 for “anything”.")
    image = page.locator("#results .card img").first
    expect(image).to_have_attribute("loading", "lazy")
    expect(image).to_have_attribute("src", re.compile(r"/v1/items/[^/]+/thumbnail\?size=256$"))
    first_page = _card_titles(page)

    page.locator("#pager a[rel=next]").click()
    expect(page).to_have_url(re.compile(r"k=4&page=2$"))
    expect(page.locator("#status")).to_have_text("Results 5–8 for “anything”.")
    expect(page.locator("#results-heading")).to_be_focused()  # keyboard and screen-reader users land on the new page
    assert not set(_card_titles(page)) & set(first_page)
    page.locator("#pager a[rel=prev]").click()
    expect(page.locator("#status")).to_have_text("Results 1–4 for “anything”.")
    page.go_back()
    expect(page.locator("#status")).to_have_text("Results 5–8 for “anything”.")

    last = (indexed - 1) // 4 + 1
    page.goto(page.url.replace("page=2", f"page={last}"))
    expect(page.locator("#status")).to_have_text(f"Results {4 * (last - 1) + 1}–{indexed} for “anything” (all shown).")
    expect(page.locator("#pager a[rel=next]")).to_have_count(0)
    problems.check()


@pytest.mark.slow
def test_catalog_text_is_never_markup(open_page: Any) -> None:
    expect = _expect()
    page, problems = open_page("/?q=violin&mode=lexical")
    card = page.locator(f'#results .card[data-id="{HOSTILE_ID}"]')
    expect(card.locator(".card-title")).to_have_text(HOSTILE_TITLE)
    card.locator(".why summary").click()
    expect(card.locator(".why-fields mark").first).to_have_text(re.compile("violin", re.I))
    assert card.locator("img[src=x], b, script").count() == 0
    card.locator(".card-link").click()
    dialog = page.locator("#item-dialog")
    expect(dialog.locator("#item-title")).to_have_text(HOSTILE_TITLE)
    expect(dialog.locator(".facts")).to_contain_text("<b>Bold</b>")
    expect(dialog.locator(".description")).to_contain_text("<script>")
    assert dialog.locator(".item-content b, .item-content script, .item-content img[src=x]").count() == 0
    assert page.evaluate("window.__xss") is None
    problems.check()


@pytest.mark.slow
def test_search_by_uploaded_dropped_and_refined_image(open_page: Any, screenshots: Path) -> None:
    expect = _expect()
    page, problems = open_page("/")
    page.locator("#image-file").set_input_files(str(DEMO_IMAGES / "teapot.jpg"))
    expect(page.locator("#query-chips")).to_contain_text("Your image")
    expect(page.locator("#status")).to_contain_text("your image")
    # The same picture is its own nearest neighbour.
    expect(page.locator("#results .card").first).to_have_attribute("data-id", "teapot")
    assert "img" in _query(page)
    _settle(page)
    page.screenshot(path=str(screenshots / "image-search.png"))

    # Refine with words to add and words to avoid: the image search runs again with both.
    with page.expect_response(re.compile(r"/v1/search/image$")) as refined:
        page.locator("#q").fill("banana")
        page.locator("#not").fill("leather")
    assert refined.value.ok
    expect(page.locator("#status")).to_contain_text("“banana”")
    expect(page.locator("#status")).to_contain_text("without “leather”")
    assert _query(page)["not"] == ["leather"]

    # Drop a file anywhere on the page (a real DataTransfer carrying a File).
    data = list((DEMO_IMAGES / "guitar.jpg").read_bytes())
    page.locator("#q").fill("")
    page.locator("#not").fill("")
    page.evaluate(
        """bytes => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "guitar.jpg", {type: "image/jpeg"}));
            document.dispatchEvent(new DragEvent("dragenter", {dataTransfer: transfer, bubbles: true}));
            const drop = new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true});
            document.body.dispatchEvent(drop);
        }""",
        data,
    )
    expect(page.locator("#results .card").first).to_have_attribute("data-id", "guitar")
    expect(page.locator("#drop-overlay")).to_be_hidden()

    # Paste from the clipboard.
    page.evaluate(
        """bytes => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "pasted.jpg", {type: "image/jpeg"}));
            const paste = new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true, cancelable: true});
            document.dispatchEvent(paste);
        }""",
        list((DEMO_IMAGES / "banana.jpg").read_bytes()),
    )
    expect(page.locator("#results .card").first).to_have_attribute("data-id", "banana")

    # The uploaded image survives a reload (session storage), and a file that is no image is refused.
    page.reload()
    expect(page.locator("#results .card").first).to_have_attribute("data-id", "banana")
    page.locator("#image-file").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture"}]
    )
    expect(page.locator("#error")).to_contain_text("is not an image")
    page.locator("#query-chips .chip-remove").click()
    expect(page.locator("#query-chips")).to_be_empty()
    problems.check()


@pytest.mark.slow
def test_filters_narrow_results_and_live_in_the_url(open_page: Any, screenshots: Path) -> None:
    expect = _expect()
    page, problems = open_page("/")
    # Browsing a category from the landing page needs no words.
    page.locator("#results .browse a", has_text="hats").click()
    expect(page).to_have_url(re.compile(r"\?cat=hats$"))
    expect(page.locator("#status")).to_have_text("Results 1–2 in the chosen filters (all shown).")
    assert set(page.locator("#results .card .category").all_inner_texts()) == {"hats"}

    page.goto(page.url.split("?")[0] + "?q=shoe")
    expect(page.locator("#status")).to_contain_text("Results")
    shoes = page.locator("#filters-body label", has_text="shoes")
    expect(shoes).to_contain_text("4")  # the facet count
    shoes.locator("input").check()
    expect(page).to_have_url(re.compile(r"cat=shoes"))
    expect(page.locator("#status")).to_contain_text("1 filter")
    categories = page.locator("#results .card .category").all_inner_texts()
    assert categories and set(categories) == {"shoes"}

    page.locator("#price-min").fill("50")
    page.locator("#price-max").fill("100")
    expect(page).to_have_url(re.compile(r"min=50&max=100"))
    expect(page.locator("#results .card")).to_have_count(2)  # 89.0 and 99.0
    assert sorted(_card_titles(page)) == ["Red high-heeled shoe", "Trail running shoe"]

    page.locator("#attr-brand").select_option("Acme")
    expect(page).to_have_url(re.compile(r"attr=brand%3AAcme"))
    expect(page.locator("#results .card")).to_have_count(1)
    expect(page.locator("#filters-summary")).to_have_text("Filters (3)")
    _settle(page)
    page.screenshot(path=str(screenshots / "filters.png"))

    page.locator("#price-max").fill("")
    page.locator("#price-min").fill("500")
    expect(page.locator("#results .empty")).to_contain_text("Nothing matched")
    expect(page.locator("#status")).to_contain_text("No results")
    page.locator("#results .empty button").click()
    expect(page).to_have_url(re.compile(r"\?q=shoe$"))
    expect(page.locator("#results .card")).not_to_have_count(0)
    problems.check()


@pytest.mark.slow
def test_item_view_with_keyboard_caption_tags_labels_and_similar_items(open_page: Any, screenshots: Path) -> None:
    expect = _expect()
    page, problems = open_page("/?q=shoe&mode=lexical")
    expect(page.locator("#status")).to_contain_text("Results")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.press("ArrowDown")
    links = page.locator("#results .card-link")
    expect(links.nth(0)).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(links.nth(0)).to_be_focused()
    opened = links.nth(0).get_attribute("data-item")
    page.keyboard.press("Enter")

    dialog = page.locator("#item-dialog")
    expect(dialog).to_be_visible()
    expect(page).to_have_url(re.compile(rf"item={opened}"))
    expect(dialog.locator(".caption")).not_to_be_empty()
    expect(dialog.locator(".tags li").first).to_be_visible()
    expect(dialog.locator(".bars li").first).to_be_visible()  # zero-shot labels against the categories
    expect(dialog.locator(".grid.compact .card").first).to_be_visible()  # similar items
    expect(dialog.locator(".item-section", has_text="Text in the image")).to_contain_text("Not read yet")
    _settle(page)
    page.screenshot(path=str(screenshots / "item.png"))

    # A similar item opens in the same view; Escape closes the view, back to the results and focus.
    similar = dialog.locator(".grid.compact .card-link").first
    other = similar.get_attribute("data-item")
    similar.click()
    expect(page).to_have_url(re.compile(rf"item={other}"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(re.compile(r"\?q=shoe&mode=lexical$"))
    expect(page.locator(f'#results .card-link[data-item="{opened}"]')).to_be_focused()

    # A shared item URL opens the item directly, and closing it after moving to a similar one closes the view.
    page.goto(page.url.split("?")[0] + "?item=shoe-trail")
    expect(dialog.locator("#item-title")).to_have_text("Trail running shoe")
    dialog.locator(".grid.compact .card-link").first.click()
    expect(dialog.locator("#item-title")).not_to_have_text("Trail running shoe")
    dialog.locator(".close").click()
    expect(dialog).to_be_hidden()
    expect(page).not_to_have_url(re.compile("item="))
    # An unknown item says so.
    page.goto(page.url.split("?")[0] + "?item=nope")
    expect(dialog.locator('[role="alert"]')).to_contain_text("no item “nope”")
    problems.check(allow=("404",))


@pytest.mark.slow
def test_more_like_this_and_refining_it_with_words(open_page: Any) -> None:
    expect = _expect()
    page, problems = open_page("/?q=boot&mode=lexical")
    card = page.locator('#results .card[data-id="boot-hiking"]')
    card.locator("a.more").click()
    expect(page).to_have_url(re.compile(r"\?like=boot-hiking$"))
    expect(page.locator("#query-chips")).to_contain_text("Leather hiking boot")
    expect(page.locator("#results .card")).to_have_count(len(CATALOG))  # every other indexed item, itself left out
    assert "boot-hiking" not in page.locator("#results .card").evaluate_all("cards => cards.map(c => c.dataset.id)")

    with page.expect_request(lambda r: r.url.endswith("/v1/search") and r.method == "POST") as posted:
        page.locator("#q").fill("red")
        page.locator("#q").press("Enter")
    body = posted.value.post_data_json
    assert body["parts"] == [{"item_id": "boot-hiking", "weight": 1}] and body["query"] == "red"
    expect(page.locator("#status")).to_contain_text("items like the chosen one, “red”")
    ids = page.locator("#results .card").evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert ids and "boot-hiking" not in ids
    problems.check()


@pytest.mark.slow
def test_errors_are_shown_not_swallowed(open_page: Any, screenshots: Path) -> None:
    expect = _expect()
    page, problems = open_page("/")
    page.route(
        re.compile(r"/v1/search\?"),
        lambda route: route.fulfill(status=500, json={"detail": "the index is on fire"}),
    )
    page.locator("#q").fill("shoe")
    alert = page.locator("#error")
    expect(alert).to_contain_text("The service had a problem: the index is on fire")
    expect(alert).to_have_attribute("role", "alert")
    expect(page.locator("#status")).to_have_text("The search failed.")
    _settle(page)
    page.screenshot(path=str(screenshots / "error.png"))

    page.unroute(re.compile(r"/v1/search\?"))
    page.route(re.compile(r"/v1/search\?"), lambda route: route.abort("connectionrefused"))
    alert.get_by_role("button", name="Try again").click()
    expect(alert).to_contain_text("cannot be reached")

    page.unroute(re.compile(r"/v1/search\?"))
    alert.get_by_role("button", name="Try again").click()
    expect(page.locator("#status")).to_contain_text("Results")
    expect(alert).to_be_hidden()

    # A 4xx from the service shows its message (lexical search needs words; an image search has none).
    page.goto(page.url.split("?")[0] + "?like=teapot&mode=lexical&not=x")
    expect(page.locator("#error")).to_contain_text("lexical")
    problems.check(allow=("500", "ERR_CONNECTION_REFUSED", "422"))


@pytest.mark.slow
def test_phone_width_shows_results(open_page: Any, screenshots: Path) -> None:
    expect = _expect()
    page, problems = open_page("/?q=shoe", viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    expect(page.locator("#results .card").first).to_be_visible()
    expect(page.locator("#filters-panel")).not_to_have_attribute("open", "")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "the page scrolls sideways on a phone"
    box = page.locator("#results .card").first.bounding_box()
    assert box is not None and box["width"] >= 120
    page.locator("#results .card").first.locator(".card-link").click()
    expect(page.locator("#item-dialog .caption")).to_be_visible()
    _settle(page)
    page.screenshot(path=str(screenshots / "phone-item.png"))
    page.locator("#item-dialog .close").click()
    _settle(page)
    page.screenshot(path=str(screenshots / "phone.png"))
    problems.check()


_TIMINGS = """() => ({
    firstContentfulPaint: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
    results: performance.getEntriesByName("catalens:results")[0].startTime,
    pageBytes: performance.getEntriesByType("navigation")[0].decodedBodySize + performance.getEntriesByType("resource")
        .filter(r => !r.name.includes("/v1/")).reduce((n, r) => n + r.decodedBodySize, 0),
})"""


@pytest.mark.slow
def test_first_render_is_fast(open_page: Any, screenshots: Path) -> None:
    """Navigation start to the first paint and to the results grid, read from the Performance API.

    The first load (nothing cached) gives the page's size; the budget applies to the best of three reloads,
    since on a shared two-core machine noise only ever adds time.
    """
    page, problems = open_page("/?q=hat")
    page.wait_for_function("() => performance.getEntriesByName('catalens:results').length > 0")
    cold = page.evaluate(_TIMINGS)
    warm = []
    for _ in range(3):
        page.goto(page.url)
        page.wait_for_function("() => performance.getEntriesByName('catalens:results').length > 0")
        warm.append(page.evaluate(_TIMINGS))
    best = {name: min(t[name] for t in warm) for name in ("firstContentfulPaint", "results")}
    (screenshots / "timings.json").write_text(json.dumps({"cold": cold, "warm": warm, "best": best}, indent=2))
    assert cold["pageBytes"] < PAGE_BUDGET_BYTES, cold
    assert cold["firstContentfulPaint"] is not None and all(t["firstContentfulPaint"] is not None for t in warm)
    assert best["firstContentfulPaint"] < FIRST_RENDER_BUDGET_MS, warm
    assert best["results"] < FIRST_RENDER_BUDGET_MS, warm
    problems.check()


# -- the merchandiser's page -----------------------------------------------------------------------------


@pytest.mark.slow
def test_catalog_statistics_and_labelling_tool_with_csv_export(open_page: Any, screenshots: Path) -> None:
    expect = _expect()
    page, problems = open_page("/?view=catalog")

    def stat(name: str) -> Any:
        return page.locator("#catalog-stats .stat").filter(has=page.locator("dt").get_by_text(name, exact=True))

    expect(stat("Items indexed")).to_contain_text(str(len(CATALOG) + 1))
    expect(stat("Failed items")).to_contain_text("1")
    expect(stat("Index")).to_contain_text("Flat")
    expect(stat("Generation")).to_contain_text("1")
    expect(stat("Captions and OCR")).to_contain_text("caption attributes@")
    failed = page.locator("#catalog-failures tbody tr")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("broken")
    expect(failed).to_contain_text("file not found")

    page.locator("#label-labels").fill("sneaker, boot, sandal")
    page.locator("#set-category").check()
    page.locator("#label-category").select_option("shoes")
    page.locator("#label-form button[type=submit]").click()
    expect(page.locator("#label-status")).to_contain_text("Labelled 4 items with 3 labels")
    rows = page.locator("#label-table tbody tr")
    expect(rows).to_have_count(4)
    shown = [float(t.strip().rstrip("%")) for t in page.locator("#label-table td.confidence").all_inner_texts()]
    assert shown == sorted(shown), "lowest confidence first"
    _settle(page)
    page.screenshot(path=str(screenshots / "catalog.png"), full_page=True)

    with page.expect_download() as download_info:
        page.locator("#label-export").click()
    download = download_info.value
    assert download.suggested_filename == "catalens-labels.csv"
    table = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [r["id"] for r in table] == rows.evaluate_all("trs => trs.map(tr => tr.dataset.id)")
    assert {r["id"] for r in table} == {"shoe-trail", "boot-hiking", "shoe-flat", "shoe-heel"}
    assert all(r["category"] == "shoes" and r["predicted_label"] in {"sneaker", "boot", "sandal"} for r in table)
    confidences = [float(r["confidence"]) for r in table]
    assert confidences == sorted(confidences) and all(0 < c <= 1 for c in confidences)
    assert all(r["runner_up"] and float(r["runner_up_confidence"]) <= float(r["confidence"]) for r in table)

    # Highest first re-sorts the table; a query picks the items too; bad input is explained.
    page.locator("#label-sort").select_option("confidence-desc")
    first = page.locator("#label-table td.confidence").first.inner_text()
    assert float(first.strip().rstrip("%")) == max(shown)
    page.locator("#label-query").fill("hat")
    page.locator("#label-count").fill("2")
    page.locator("#label-form button[type=submit]").click()
    expect(page.locator("#label-status")).to_contain_text("Labelled 2 items")
    page.locator("#label-labels").fill("only-one")
    page.locator("#label-form button[type=submit]").click()
    expect(page.locator("#label-error")).to_contain_text("at least two labels")
    problems.check()

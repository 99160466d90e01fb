"""``catalens serve`` as a subprocess: refusing to expose open writes, ``--insecure-writes``, keys on every
interface, and the web page with keyed reads in a real browser (Debian's Chromium through Playwright)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalens.search.cli import main
from catalens.search.security import generate_key, hash_key
from tests.conftest import pattern_image
from tests.e2e.serving import REPO, start_serve, stop
from tests.e2e.test_web import CHROMIUM
from tests.integration.test_api import png

Serve = Callable[..., tuple[str, subprocess.Popen[str]]]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALENS_")}
    return {**env, "PYTHONPATH": str(REPO), "CATALENS_REFRESH_INTERVAL_S": "5", **extra}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_spec: str) -> Path:
    """A store of six generated images, indexed by the real CLI."""
    root = tmp_path_factory.mktemp("access")
    images = root / "images"
    images.mkdir()
    for n in range(6):
        pattern_image(n).save(images / f"item-{n}.png")
    path = root / "store"
    assert main(["index", str(images), "--store", str(path), "--model", tiny_spec, "--quiet", "--json"]) == 0
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (make sysdeps)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
    sync_api.expect.set_options(timeout=15_000)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--headless=new", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(store, *options, **env)``: a running `catalens serve` and its base URL on 127.0.0.1."""
    processes: list[subprocess.Popen[str]] = []

    def start(store: Path, *options: str, **env: str) -> tuple[str, subprocess.Popen[str]]:
        base, process = start_serve(store, *options, env=_env(**env))
        processes.append(process)
        return base, process

    yield start
    for process in processes:
        stop(process)


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=15)


@pytest.mark.slow
def test_serve_on_all_interfaces_without_keys_exits_with_a_message(store: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "catalens.search.cli", "serve", "--store", str(store), "--host", "0.0.0.0"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 without API keys" in done.stderr
    assert "--insecure-writes" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.slow
def test_insecure_writes_override_serves_open_writes_on_all_interfaces(store: Path, serve: Serve) -> None:
    base, process = serve(store, "--host", "0.0.0.0", "--insecure-writes")
    upload = {"image": ("a.png", png(5), "image/png")}
    assert httpx.post(f"{base}/v1/items", files=upload, data={"id": "open"}).status_code == 201
    assert httpx.delete(f"{base}/v1/items/open").status_code == 204
    out, err = _stop(process)
    assert "--insecure-writes: anyone who can reach 0.0.0.0 may add and delete items" in err
    assert "WRITES OPEN TO ANYONE" in out


@pytest.mark.slow
def test_the_page_sends_the_key_it_was_given(
    store: Path, serve: Serve, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import expect

    folder = os.environ.get("CATALENS_SCREENSHOTS")
    screenshots = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    key = generate_key()
    base, _ = serve(store, CATALENS_API_KEYS=f"read:{hash_key(key)}:shop", CATALENS_PUBLIC_READ="false")
    assert httpx.get(f"{base}/v1/search", params={"q": "pattern"}).status_code == 401

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        # Without a key: the service's message, and the key form.
        page.goto(f"{base}/?q=pattern")
        expect(page.locator("#error")).to_contain_text("needs an API key")
        expect(page.locator("#key-form")).to_be_visible()
        page.screenshot(path=str(screenshots / "key-needed.png"))
        # Entered once: kept for the tab, sent with every request, images included.
        page.fill("#api-key", key)
        page.click("#key-form button[type=submit]")
        expect(page.locator("#results .card").first).to_be_visible()
        expect(page.locator("#key-form")).to_be_hidden()
        first = page.locator("#results .card img").first
        expect(first).not_to_have_class("broken")
        page.wait_for_function(
            "() => { const i = document.querySelector('#results .card img'); "
            "return i && i.complete && i.naturalWidth > 0; }"
        )
        assert page.evaluate("sessionStorage.getItem('catalens.apiKey')") == key
        # Forgotten: asked for again.
        page.click("#forget-key")
        expect(page.locator("#key-form")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('catalens.apiKey')") is None

        # Given in the URL fragment: taken, and removed from the address at once.
        page = context.new_page()
        page.goto(f"{base}/?q=item#key={key}")
        expect(page.locator("#results .card").first).to_be_visible()
        assert key not in page.url and "#" not in page.url
        assert key not in page.content()
    finally:
        context.close()

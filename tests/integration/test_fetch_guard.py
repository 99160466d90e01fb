"""The URL guard through the fetcher, the HTTP API and the CLI indexer, against real servers on loopback.

Loopback is exactly what the guard refuses unless allowed, so these servers double as the "internal service"
an attacker would aim at: a refused URL must never reach them.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from catalens.indexer import fetch as fetch_module
from catalens.indexer import urlguard
from catalens.indexer.errors import FetchError
from catalens.indexer.fetch import Fetcher, FetchOptions
from catalens.indexer.urlguard import URLRefusedError, parse_allow
from catalens.search.cli import main
from catalens.search.settings import Settings
from tests.conftest import pattern_image
from tests.integration.test_engine import random_catalog

LOOPBACK = ("127.0.0.1",)


def png(seed: int = 1) -> bytes:
    buffer = io.BytesIO()
    pattern_image(seed).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Site:
    """A loopback server with a few behaviours; counts requests per path and the connections open at once."""

    port: int
    hits: dict[str, int] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def site() -> Iterator[Site]:
    """Paths: /png, /html, /octet (an image typed application/octet-stream), /trickle (one byte every 0.2 s,
    forever), /endless (a fast body that never ends), /hang (never answers), /to?url=U (302 to U),
    /loop (redirects to itself)."""
    state = Site(port=0)
    image = png()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = urlparse(self.path).path
            with state.lock:
                state.hits[path] = state.hits.get(path, 0) + 1
                state.hosts.append(self.headers.get("Host", ""))
                state.open_now += 1
                state.most_open = max(state.most_open, state.open_now)
            try:
                self._answer(path)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with state.lock:
                    state.open_now -= 1

        def _answer(self, path: str) -> None:
            if path == "/hang":
                time.sleep(30)
                return
            if path in ("/to", "/loop"):
                target = parse_qs(urlparse(self.path).query).get("url", [self.path])[0]
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            kinds = {"/png": "image/png", "/octet": "application/octet-stream", "/html": "text/html"}
            if path in kinds:
                body = b"<html></html>" if path == "/html" else image
                self.send_response(200)
                self.send_header("Content-Type", kinds[path])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if path in ("/trickle", "/endless"):
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                for _ in range(300):
                    self.wfile.write(image[:1] if path == "/trickle" else b"x" * 65536)
                    self.wfile.flush()
                    if path == "/trickle":
                        time.sleep(0.2)
                return
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Fake DNS for the guard: ``resolve["name"] = ["addr", ...]``; each lookup of a name is counted in
    ``resolve["calls:name"]``."""
    table: dict[str, list[str]] = {}
    real = urlguard.socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            table.setdefault(f"calls:{host}", []).append("x")
            out = []
            for address in table[host]:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                out.append((family, socket.SOCK_STREAM, 6, "", (address, port)))
            return out
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(urlguard.socket, "getaddrinfo", fake)
    return table


def fetch(url: str, **options: Any) -> bytes:
    defaults: dict[str, Any] = {"timeout_s": 5.0, "deadline_s": 5.0, "retries": 0}
    with Fetcher(FetchOptions(**{**defaults, **options})) as fetcher:
        return fetcher.read(url)


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("127.0.0.1", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[::ffff:7f00:1]", "loopback"),
        ("[::127.0.0.1]", "loopback"),
        ("2130706433", "loopback"),
        ("0x7f000001", "loopback"),
        ("017700000001", "loopback"),
        ("127.1", "loopback"),
        ("[::1]", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("[fe80::1]", "link-local"),
        ("10.0.0.7", "private"),
        ("192.168.1.1", "private"),
        ("[fd00::1]", "private"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"),
        ("[2002:7f00:1::]", "loopback"),  # 6to4 wrapping 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused_in_every_spelling(site: Site, host: str, rule: str) -> None:
    with pytest.raises(URLRefusedError, match=rf"\({rule}\)") as refused:
        fetch(site.url("/png", host))
    assert refused.value.rule == rule
    assert site.hits == {}  # refused before any connection


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://127.0.0.1:70/x"])
def test_only_http_and_https_are_fetched(url: str) -> None:
    with pytest.raises(URLRefusedError) as refused:
        fetch(url)
    assert refused.value.rule == "scheme"


def test_an_allowed_network_or_host_is_fetched(site: Site, resolve: dict[str, list[str]]) -> None:
    assert fetch(site.url("/png"), allow=("127.0.0.0/8",)) == png()
    assert fetch(site.url("/png", "[::ffff:127.0.0.1]"), allow=LOOPBACK) == png()  # same address, IPv6 spelling
    resolve["images.internal.test"] = ["127.0.0.1"]
    assert fetch(site.url("/png", "images.internal.test"), allow=(".internal.test",)) == png()
    with pytest.raises(URLRefusedError, match="images.internal.test resolves to 127.0.0.1"):
        fetch(site.url("/png", "images.internal.test"), allow=("other.test",))


def test_a_host_name_resolving_to_a_private_address_is_refused(site: Site, resolve: dict[str, list[str]]) -> None:
    resolve["metadata.test"] = ["169.254.169.254"]
    resolve["mixed.test"] = ["93.184.216.34", "10.1.2.3"]  # one bad answer is enough
    with pytest.raises(URLRefusedError, match="link-local"):
        fetch("http://metadata.test/latest/meta-data/")
    with pytest.raises(URLRefusedError, match="private"):
        fetch("http://mixed.test/a.png")


def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(
    site: Site, resolve: dict[str, list[str]]
) -> None:
    # DNS rebinding: the first answer passes the guard, later ones point at the metadata service.
    resolve["shop.test"] = ["127.0.0.1"]
    fetched = fetch(site.url("/png", "shop.test"), allow=LOOPBACK)
    resolve["shop.test"] = ["169.254.169.254"]
    assert fetched == png()
    assert len(resolve["calls:shop.test"]) == 1
    assert site.hosts == [f"shop.test:{site.port}"]  # the Host header keeps the name


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https_is_pinned_and_the_certificate_checked_against_the_host_name(
    tmp_path: Path, resolve: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
        + ["-days", "2", "-subj", "/CN=shop.test", "-addext", "subjectAltName=DNS:shop.test"],
        check=True,
        capture_output=True,
    )
    body = png()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Trust only this certificate, as the system store trusts a real CA's.
    monkeypatch.setattr(fetch_module.httpx, "create_ssl_context", lambda **_: ssl.create_default_context(cafile=cert))
    port = server.server_address[1]
    try:
        resolve["shop.test"] = ["127.0.0.1"]
        resolve["other.test"] = ["127.0.0.1"]
        assert fetch(f"https://shop.test:{port}/a.png", allow=LOOPBACK) == body
        with pytest.raises(FetchError, match="cannot connect"):  # same address, but the name is not the cert's
            fetch(f"https://other.test:{port}/a.png", allow=LOOPBACK)
    finally:
        server.shutdown()
        server.server_close()


def test_every_redirect_is_checked(site: Site, resolve: dict[str, list[str]]) -> None:
    resolve["cdn.test"] = ["127.0.0.1"]
    allowed = {"allow": ("cdn.test",)}
    assert fetch(site.url(f"/to?url={site.url('/png', 'cdn.test')}", "cdn.test"), **allowed) == png()

    for target, rule in [(site.url("/png"), "loopback"), ("http://169.254.169.254/latest/", "link-local")]:
        with pytest.raises(URLRefusedError, match="redirect to") as refused:
            fetch(site.url(f"/to?url={target}", "cdn.test"), **allowed)
        assert refused.value.rule == rule
    with pytest.raises(URLRefusedError, match="scheme"):
        fetch(site.url("/to?url=file:///etc/passwd", "cdn.test"), **allowed)
    assert site.hits["/png"] == 1  # only the allowed hop reached it

    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch(site.url("/loop", "cdn.test"), **allowed)
    assert site.hits["/loop"] == 6


def test_a_trickling_server_is_cut_off_at_the_total_deadline(site: Site) -> None:
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            fetch(site.url("/trickle"), allow=LOOPBACK, timeout_s=5.0, deadline_s=1.0)
        except BaseException as e:  # noqa: BLE001 (handed to the test thread)
            outcome.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    # Each byte arrives well inside the 5 s read timeout: only the total deadline can stop this fetch.
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert isinstance(outcome[0], FetchError) and "1 s deadline" in outcome[0].reason


def test_a_server_that_never_answers_is_cut_off_at_the_deadline(site: Site) -> None:
    with pytest.raises(FetchError, match="deadline"):
        fetch(site.url("/hang"), allow=LOOPBACK, timeout_s=5.0, deadline_s=0.5)


def test_an_endless_body_stops_at_the_size_cap(site: Site) -> None:
    with pytest.raises(FetchError, match="100000-byte limit"):
        fetch(site.url("/endless"), allow=LOOPBACK, max_bytes=100_000)


def test_content_type_is_checked(site: Site) -> None:
    with pytest.raises(FetchError, match=r"text/html, not one of the accepted types \(image/\*\)"):
        fetch(site.url("/html"), allow=LOOPBACK)
    assert fetch(site.url("/octet"), allow=LOOPBACK) == png()  # untyped bytes go on to the image decoder
    assert fetch(site.url("/html"), allow=LOOPBACK, content_types=("text/html",)).startswith(b"<html>")


def test_connection_failures_do_not_tell_which_ports_are_open() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    reasons = []
    for url, allow in [(f"http://127.0.0.1:{closed}/", LOOPBACK), ("http://10.255.255.1:22/", ("10.0.0.0/8",))]:
        with pytest.raises(FetchError) as failed:
            fetch(url, allow=allow)
        reasons.append(failed.value.reason)
    assert reasons == ["cannot connect (after 1 attempts)"] * 2


def test_allow_lists_are_validated() -> None:
    allow = parse_allow("cdn.example.com, .example.org,10.2.0.0/16 ,*.shop.test,[::1]")
    assert allow.allows_host("CDN.example.com.") and allow.allows_host("a.b.example.org")
    assert allow.allows_host("example.org") and allow.allows_host("x.shop.test")
    assert not allow.allows_host("example.com") and not allow.allows_host("evil-example.org")
    for bad in ["http://cdn.example.com", "10.2.0.0/33", "a b", "0177.1.1.1.1"]:
        with pytest.raises(ValueError, match="allow-list entry"):
            parse_allow(bad)
    with pytest.raises(ValidationError, match="allow-list entry"):
        Settings(store=Path("s"), fetch_allow="cdn.example.com,not a host")


# --- the HTTP API ---------------------------------------------------------------------------------------


@pytest.fixture
def service(vector_store: Any, open_service: Any) -> Callable[..., TestClient]:
    stores: list[Path] = []

    def start(**settings: Any) -> TestClient:
        stores.append(vector_store(random_catalog(20), name=f"s{len(stores)}"))
        client: TestClient = open_service(stores[-1], **settings)
        return client

    return start


def test_url_items_are_off_by_default(service: Any, site: Site) -> None:
    response = service().post("/v1/items", data={"id": "x", "image_url": site.url("/png")})
    assert response.status_code == 422 and "does not fetch images from URLs" in response.json()["detail"]
    assert site.hits == {}


def test_refused_image_urls_get_422_naming_the_rule_and_are_never_fetched(
    service: Any, site: Site, resolve: dict[str, list[str]]
) -> None:
    resolve["cdn.test"] = ["127.0.0.1"]
    client = service(allow_url_items=True, fetch_allow="cdn.test")
    cases = {
        site.url("/png"): "loopback",
        site.url("/png", "[::ffff:127.0.0.1]"): "loopback",
        site.url("/png", "2130706433"): "loopback",
        site.url("/png", "0x7f000001"): "loopback",
        site.url(f"/to?url={site.url('/png')}", "cdn.test"): "loopback",
        "http://169.254.169.254/latest/meta-data/": "link-local",
    }
    for url, rule in cases.items():
        response = client.post("/v1/items", data={"id": "x", "image_url": url})
        assert response.status_code == 422, (url, response.text)
        assert f"refused by the URL guard ({rule})" in response.json()["detail"]
    assert "/png" not in site.hits and client.get("/v1/items/x").status_code == 404
    allowed = client.post("/v1/items", data={"id": "x", "image_url": site.url("/png", "cdn.test")})
    assert allowed.status_code == 201, allowed.text


def test_slow_url_fetches_are_bounded_and_searches_keep_answering(service: Any, site: Site) -> None:
    client = service(allow_url_items=True, fetch_allow="127.0.0.1", max_url_fetches=2, fetch_deadline_s=3.0)
    results: list[Any] = []

    def post(i: int) -> None:
        results.append(client.post("/v1/items", data={"id": f"slow-{i}", "image_url": site.url("/trickle")}))

    posts = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for thread in posts:
        thread.start()
    while site.hits.get("/trickle", 0) < 2:
        time.sleep(0.05)
    # While the slow fetches hold their slots, the service still answers everything else.
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/search", params={"q": "shoe"}).status_code == 200
    for thread in posts:
        thread.join(timeout=60)
    statuses = sorted(r.status_code for r in results)
    busy = [r for r in results if r.status_code == 503]
    assert len(results) == 8 and set(statuses) <= {422, 503} and busy
    assert busy[0].headers["retry-after"] and "in flight" in busy[0].json()["detail"]
    assert all("deadline" in r.json()["detail"] for r in results if r.status_code == 422)
    assert site.most_open <= 2  # never more fetches at once than the bound


# --- the CLI indexer ------------------------------------------------------------------------------------


def test_the_indexer_gives_up_on_a_trickling_url_and_goes_on(
    tmp_path: Path, tiny_spec: str, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    pattern_image(3).save(tmp_path / "local.jpg")
    manifest = tmp_path / "catalog.csv"
    rows = [("local", "local.jpg"), ("slow", site.url("/trickle")), ("remote", site.url("/png"))]
    manifest.write_text("id,image\n" + "".join(f"{i},{image}\n" for i, image in rows))
    args = ["index", str(manifest), "--store", str(tmp_path / "store"), "--model", tiny_spec, "--quiet", "--json"]

    # The deadline leaves a loaded CI machine room to fetch the fast /png (a 1 s deadline once lost it there);
    # /trickle never finishes, so it fails whatever the deadline.
    assert main([*args, "--fetch-allow", "127.0.0.1", "--fetch-deadline", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["indexed_total"] == 2, report["failures"]
    assert [(f["id"], f["reason"]) for f in report["failures"]] == [
        ("slow", "no complete response within the 4 s deadline")
    ]

    # Without the allow list, the loopback URLs are refused (and recorded) without a connection.
    hits = dict(site.hits)
    assert main([*args, "--rebuild"]) == 0
    failures = {f["id"]: f["reason"] for f in json.loads(capsys.readouterr().out)["failures"]}
    assert set(failures) == {"slow", "remote"} and all("URL guard (loopback)" in r for r in failures.values())
    assert site.hits == hits

    with pytest.raises(SystemExit) as usage:
        main([*args, "--fetch-allow", "not a host"])
    assert usage.value.code == 2
    assert "allow-list entry" in capsys.readouterr().err

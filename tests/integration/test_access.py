"""Access control through HTTP: keys and scopes, public or keyed reads, the cross-site write check, CORS,
rate limits, the ``catalens keys`` commands, and ``catalens serve`` refusing to expose open writes."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalens.search.api import create_app
from catalens.search.cli import main
from catalens.search.security import Rate, RateLimiter, generate_key, hash_key
from catalens.search.settings import Settings
from tests.integration.test_api import png
from tests.integration.test_engine import random_catalog

Start = Callable[..., TestClient]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service(vector_store: Any, open_service: Any) -> Start:
    """``start(base_url, **settings)``: a TestClient on a small store (built once, then reused)."""
    paths: list[Path] = []

    def start(base_url: str = "http://testserver", **settings: Any) -> TestClient:
        if not paths:
            paths.append(vector_store(random_catalog(12), name="access-store"))
        client: TestClient = open_service(paths[0], base_url=base_url, **settings)
        return client

    return start


@pytest.fixture
def keys() -> dict[str, str]:
    """One read and one write key, and the ``CATALENS_API_KEYS`` value that accepts both."""
    read, write = generate_key(), generate_key()
    return {"read": read, "write": write, "env": f"read:{hash_key(read)}:reader,write:{hash_key(write)}:writer"}


def add(client: TestClient, item_id: str = "new", **headers: str) -> Any:
    return client.post(
        "/v1/items", files={"image": ("a.png", png(7), "image/png")}, data={"id": item_id}, headers=headers
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_without_keys_a_loopback_service_works_as_before(service: Start) -> None:
    client = service()
    assert client.get("/v1/search", params={"q": "shoe"}).status_code == 200
    assert client.get("/v1/info").status_code == 200
    assert add(client).status_code == 201
    assert client.delete("/v1/items/new").status_code == 204


def test_write_routes_need_a_write_key(service: Start, keys: dict[str, str]) -> None:
    client = service(api_keys=keys["env"])

    missing = add(client)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "needs an API key with write scope" in missing.json()["detail"]

    wrong = add(client, **bearer("clk_not-a-key"))
    assert wrong.status_code == 401 and wrong.json()["detail"] == "the API key is not valid"
    assert "WWW-Authenticate" in wrong.headers

    narrow = add(client, **bearer(keys["read"]))
    assert narrow.status_code == 403
    assert narrow.json()["detail"] == "the API key 'reader' has read scope; this route needs write"

    assert add(client, **bearer(keys["write"])).status_code == 201
    assert client.delete("/v1/items/new", headers={"X-API-Key": keys["read"]}).status_code == 403
    assert client.delete("/v1/items/new").status_code == 401
    assert client.delete("/v1/items/new", headers={"X-API-Key": keys["write"]}).status_code == 204


def test_reads_are_public_by_default_and_keyed_when_asked(service: Start, keys: dict[str, str]) -> None:
    public = service(api_keys=keys["env"])
    assert public.get("/v1/search", params={"q": "shoe"}).status_code == 200
    assert public.get("/v1/items/sku-0001/thumbnail").status_code == 200
    # A key that is sent must be valid, even where none is needed.
    assert public.get("/v1/search", params={"q": "shoe"}, headers=bearer("clk_stale")).status_code == 401

    keyed = service(api_keys=keys["env"], public_read=False)
    for path, params in [("/v1/search", {"q": "shoe"}), ("/v1/items/sku-0001", {}), ("/v1/info", {})]:
        refused = keyed.get(path, params=params)
        assert refused.status_code == 401, path
        assert "needs an API key with read scope" in refused.json()["detail"]
        assert keyed.get(path, params=params, headers=bearer(keys["read"])).status_code == 200, path
        assert keyed.get(path, params=params, headers={"X-API-Key": keys["write"]}).status_code == 200, path
    classify = {"ids": ["sku-0001"], "labels": ["shoe", "bag"]}
    assert keyed.post("/v1/classify", json=classify).status_code == 401
    assert keyed.post("/v1/classify", json=classify, headers=bearer(keys["read"])).status_code == 200
    # Liveness, readiness and the page itself stay open: they carry no catalog data.
    for path in ["/healthz", "/readyz", "/"]:
        assert keyed.get(path).status_code == 200, path


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "http://testserver:8080"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page.html"},
    ],
)
def test_cross_site_writes_are_refused_even_on_loopback_without_keys(service: Start, headers: dict[str, str]) -> None:
    client = service()
    refused = add(client, **headers)
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("cross-site write refused")
    assert client.delete("/v1/items/sku-0001", headers=headers).status_code == 403
    assert client.get("/v1/items/sku-0001").status_code == 200  # nothing was deleted
    # Reads are not writes: a cross-site page may search (but, without CORS, cannot read the answer).
    answer = client.get("/v1/search", params={"q": "shoe"}, headers=headers)
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_same_site_and_allowed_origins_may_write(service: Start, keys: dict[str, str]) -> None:
    client = service("http://localhost:8000", cors_origins="https://shop.example")
    assert add(client, "own", Origin="http://localhost:8000").status_code == 201
    assert add(client, "own-page", Referer="http://localhost:8000/?view=catalog").status_code == 201
    assert add(client, "shop", Origin="https://shop.example").status_code == 201
    assert add(client, "other", Origin="https://other.example").status_code == 403
    # A valid key does not make a cross-site write acceptable.
    keyed = service(api_keys=keys["env"])
    assert add(keyed, "k", Origin="https://evil.example", **bearer(keys["write"])).status_code == 403
    assert add(keyed, "k", Origin="http://testserver", **bearer(keys["write"])).status_code == 201


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000", "http://[::1]:8000", "http://localhost"])
def test_same_site_browser_writes_without_keys_are_served_at_loopback_names(service: Start, base_url: str) -> None:
    assert add(service(base_url), Origin=base_url).status_code == 201


def test_dns_rebinding_cannot_pass_for_same_site_without_keys(service: Start, keys: dict[str, str]) -> None:
    """evil.example rebound to 127.0.0.1: its page is "same origin" with the service it reaches by that name."""
    client = service("http://evil.example:8000")
    refused = add(client, Origin="http://evil.example:8000")
    assert refused.status_code == 403
    assert "only at a loopback address" in refused.json()["detail"]
    assert client.delete("/v1/items/sku-0001", headers={"Origin": "http://evil.example:8000"}).status_code == 403
    assert add(client).status_code == 201  # no Origin: not a browser, judged by keys (none configured)
    # With keys, a same-origin write under the service's real name is judged by its key.
    keyed = service("https://catalog.shop.example", api_keys=keys["env"])
    own = {"Origin": "https://catalog.shop.example", **bearer(keys["write"])}
    assert add(keyed, **own).status_code == 201


def test_cors_answers_allowed_origins_only(service: Start) -> None:
    client = service(cors_origins="https://shop.example, https://admin.shop.example:8443")
    preflight = client.options(
        "/v1/search/image",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    answer = client.get("/v1/search", params={"q": "x"}, headers={"Origin": "https://admin.shop.example:8443"})
    assert answer.headers["access-control-allow-origin"] == "https://admin.shop.example:8443"
    other = client.get("/v1/search", params={"q": "x"}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in service().get("/v1/search", params={"q": "x"}).headers


def test_expensive_routes_are_rate_limited_per_key_or_address(service: Start, keys: dict[str, str]) -> None:
    client = service(api_keys=keys["env"], rate_limit="2/minute")
    clock = FakeClock()
    client.app.state.rate_limiter = RateLimiter(Rate(2, 60.0), clock=clock)  # type: ignore[attr-defined]
    body = {"ids": ["sku-0001"], "labels": ["shoe", "bag"]}
    image = {"image": ("q.png", png(3), "image/png")}

    assert client.post("/v1/classify", json=body).status_code == 200
    assert client.post("/v1/search/image", files=image).status_code == 200
    limited = client.post("/v1/classify", json=body)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "30"
    assert "retry in 30 s" in limited.json()["detail"]
    assert client.post("/v1/search/image", files=image).status_code == 429
    # Cheap routes are not limited; another caller (a key) has its own bucket.
    assert client.get("/v1/search", params={"q": "shoe"}).status_code == 200
    assert client.post("/v1/classify", json=body, headers=bearer(keys["read"])).status_code == 200

    clock.now += 29.0
    assert client.post("/v1/classify", json=body).headers["Retry-After"] == "1"
    clock.now += 1.0
    assert client.post("/v1/classify", json=body).status_code == 200
    clock.now += 600.0  # a bucket refills to its size, no further
    assert [client.post("/v1/classify", json=body).status_code for _ in range(3)] == [200, 200, 429]


def test_rate_limits_are_set_from_settings(service: Start) -> None:
    assert service(rate_limit="off").app.state.rate_limiter is None  # type: ignore[attr-defined]
    limiter = service(rate_limit="5/second").app.state.rate_limiter  # type: ignore[attr-defined]
    assert limiter.rate == Rate(5, 1.0)
    with pytest.raises(ValueError, match="rate_limit"):
        Settings(store=Path("s"), rate_limit="fast")


def test_keys_are_compared_in_constant_time(
    service: Start, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = service(api_keys=keys["env"])
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert add(client, **bearer(keys["write"])).status_code == 201
    # Every stored hash is compared (no early exit on a match), and only hashes: never the key itself.
    assert len(calls) == 2
    assert all(keys["write"].encode() not in (a, b) for a, b in calls)
    calls.clear()
    assert add(client, **bearer("clk_guess")).status_code == 401
    assert len(calls) == 2


def test_keys_never_reach_logs_or_answers(
    service: Start, keys: dict[str, str], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    keys_file = tmp_path / "keys.json"
    client = service(api_keys=keys["env"], keys_file=keys_file)
    texts = [
        add(client, **bearer(keys["write"])).text,
        add(client, **bearer(keys["read"])).text,
        add(client, "x", **{"X-API-Key": keys["read"] + "x"}).text,
        client.get("/v1/search", params={"q": "x"}, headers=bearer(keys["read"])).text,
        client.get("/metrics").text,
    ]
    keys_file.write_text("{broken")  # a broken keys file is logged while the old keys stay in force
    texts.append(add(client, "y", **bearer(keys["write"])).text)
    assert "keeping the keys read before" in caplog.text
    for secret in (keys["read"], keys["write"]):
        assert secret not in caplog.text
        assert all(secret not in text for text in texts)
    assert keys["write"] not in repr(client.app.state.settings)  # type: ignore[attr-defined]


def test_keys_cli_round_trip(service: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "keyed"
    assert main(["keys", "list", "--store", str(store)]) == 0
    assert "No keys" in capsys.readouterr().out

    assert main(["keys", "add", "--store", str(store), "--scope", "write", "--name", "ci-bot"]) == 0
    lines = capsys.readouterr().out.splitlines()
    secret = lines[0]
    assert secret.startswith("clk_") and len(secret) > 40
    assert "only time" in lines[1]
    stored = json.loads((store / "keys.json").read_text())
    assert stored["schema_version"] == 1
    assert [(k["name"], k["scope"], k["sha256"]) for k in stored["keys"]] == [("ci-bot", "write", hash_key(secret))]
    assert secret not in (store / "keys.json").read_text()
    assert (store / "keys.json").stat().st_mode & 0o777 == 0o600  # readable by its owner only
    assert lines[2].endswith(f"write:{hash_key(secret)}:ci-bot")  # the CATALENS_API_KEYS form

    assert main(["keys", "add", "--store", str(store), "--scope", "read"]) == 0
    reader = capsys.readouterr().out.splitlines()[0]
    assert main(["keys", "list", "--store", str(store), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["name"], k["scope"]) for k in listed] == [("ci-bot", "write"), (f"read-{hash_key(reader)[:8]}", "read")]
    assert secret not in json.dumps(listed) and hash_key(secret) not in json.dumps(listed)

    client = service(keys_file=store / "keys.json")
    assert add(client).status_code == 401
    assert add(client, **bearer(reader)).status_code == 403
    assert add(client, **bearer(secret)).status_code == 201

    assert main(["keys", "add", "--store", str(store), "--scope", "write", "--name", "ci-bot"]) == 5
    assert "exists already" in capsys.readouterr().err
    assert main(["keys", "remove", "--store", str(store), "ci-bot"]) == 0
    assert "Removed write key 'ci-bot'" in capsys.readouterr().out
    # The running service re-reads the file: the removed key stops working at once.
    assert add(client, "again", **bearer(secret)).status_code == 401
    assert main(["keys", "remove", "--store", str(store), "ci-bot"]) == 5
    assert "no key named 'ci-bot'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{broken", "is not JSON"),
        ('{"schema_version": 99, "keys": []}', "schema version 99"),
        ('{"schema_version": 1, "keys": [{"name": "a", "scope": "admin", "sha256": "' + "0" * 64 + '"}]}', "scope"),
        ('{"schema_version": 1, "keys": [{"name": "a", "scope": "read", "sha256": "clk_plain"}]}', "SHA-256"),
    ],
)
def test_bad_keys_files_get_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    (tmp_path / "keys.json").write_text(content)
    assert main(["keys", "list", "--store", str(tmp_path)]) == 5
    err = capsys.readouterr().err
    assert err.startswith("catalens: keys file") and message in err
    assert main(["serve", "--store", str(tmp_path)]) == 5
    assert message in capsys.readouterr().err


def test_malformed_key_settings_are_refused(tmp_path: Path) -> None:
    from catalens.search.security import KeysError

    for value, message in [("admin:" + "0" * 64, "scope"), ("read:clk_plain", "SHA-256"), ("read", "SCOPE:SHA256")]:
        with pytest.raises(KeysError, match=message):
            create_app(Settings(store=tmp_path, api_keys=value))
    with pytest.raises(KeysError, match="CATALENS_CORS_ORIGINS"):
        create_app(Settings(store=tmp_path, cors_origins="shop.example"))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "shop-box"])
def test_serve_refuses_open_writes_beyond_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    assert main(["serve", "--store", str(tmp_path / "store"), "--host", host]) == 2
    err = capsys.readouterr().err
    assert f"refusing to serve on {host} without API keys" in err
    assert "--insecure-writes" in err and "catalens keys add" in err


def test_serve_with_keys_or_on_loopback_says_who_may_write(tmp_path: Path, keys: dict[str, str]) -> None:
    from catalens.search.cli.serve import describe_access

    keyed = Settings(store=tmp_path, api_keys=keys["env"])
    assert describe_access("0.0.0.0", keyed, insecure_writes=False) == (
        "2 API key(s); reads public; writes need a write key; rate limit 30/minute"
    )
    for host in ["127.0.0.1", "localhost", "::1", "127.0.0.2"]:
        described = describe_access(host, Settings(store=tmp_path, public_read=False), insecure_writes=False)
        assert described is not None and described.startswith("no API keys: reads need a key; writes open to this")
    assert describe_access("0.0.0.0", Settings(store=tmp_path), insecure_writes=False) is None

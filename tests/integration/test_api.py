"""The HTTP service through its public surface: every endpoint's success and failure cases."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from catalens.search.settings import Settings
from tests.conftest import pattern_image, unit
from tests.integration.test_engine import DIM, random_catalog


def png(seed: int = 1, size: tuple[int, int] = (96, 64), **save: Any) -> bytes:
    buffer = io.BytesIO()
    pattern_image(seed, size).save(buffer, format="PNG", **save)
    return buffer.getvalue()


@pytest.fixture
def service(vector_store: Any, open_service: Any) -> Callable[..., TestClient]:
    stores: list[Path] = []

    def start(items: dict[str, Any] | None = None, **settings: Any) -> TestClient:
        stores.append(vector_store(items or random_catalog(60), name=f"store{len(stores)}"))
        client: TestClient = open_service(stores[-1], **settings)
        return client

    return start


def test_text_search_get_and_post(service: Any) -> None:
    client = service()
    response = client.get("/v1/search", params={"q": "red shoe", "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert len(body["hits"]) == 5 and body["generation"] == 1 and body["k"] == 5
    hit = body["hits"][0]
    assert {"id", "score", "product_id", "title", "category", "price", "attributes", "source"} <= hit.keys()
    assert hit["image_url"] == f"/v1/items/{hit['id']}/image" and hit["thumbnail_url"].endswith("/thumbnail")
    posted = client.post("/v1/search", json={"query": "red shoe", "k": 5}).json()
    assert [h["id"] for h in posted["hits"]] == [h["id"] for h in body["hits"]]

    filtered = client.get(
        "/v1/search", params={"q": "x", "k": 5, "category": "rare", "attr": "color:blue", "price_max": 40}
    ).json()["hits"]
    # random_catalog(60): rare items are 0, 25 and 50; blue ones are even; 0 and 50 cost 0.
    assert sorted(h["id"] for h in filtered) == ["sku-0000", "sku-0050"]
    page2 = client.get("/v1/search", params={"q": "x", "k": 5, "offset": 5}).json()["hits"]
    both = client.get("/v1/search", params={"q": "x", "k": 10}).json()["hits"]
    assert [h["id"] for h in both[5:]] == [h["id"] for h in page2]


def test_combined_post_search_with_vectors_and_items(service: Any) -> None:
    client = service()
    target = client.get("/v1/items/sku-0003").json()
    assert target["id"] == "sku-0003"
    body = {"parts": [{"item_id": "sku-0003"}, {"vector": [0.0] * DIM, "weight": 0.0}], "k": 3}
    hits = client.post("/v1/search", json=body).json()["hits"]
    assert hits[0]["id"] == "sku-0003"
    away = {"parts": [{"vector": unit(np.ones(DIM)).tolist()}, {"item_id": "sku-0003", "weight": -5}], "k": 60}
    ranked = [h["id"] for h in client.post("/v1/search", json=away).json()["hits"]]
    assert ranked[-1] == "sku-0003"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"k": 5},
        {"query": "x", "k": 0},
        {"query": "x", "k": 100000},
        {"parts": [{"text": "a", "item_id": "b"}]},
        {"parts": [{"weight": 2}]},
        {"parts": [{"vector": [1.0, 2.0]}]},
        {"query": "x", "filters": {"price_min": 5, "price_max": 1}},
        {"query": "x", "unknown": 1},
        {"parts": [{"item_id": "sku-0001"}, {"item_id": "sku-0001", "weight": -1}]},
    ],
)
def test_invalid_search_bodies_get_422(service: Any, body: dict[str, Any]) -> None:
    response = service().post("/v1/search", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "x", "k": 0},
        {"q": "x", "k": "many"},
        {"q": "x", "offset": -1},
        {"q": "x", "attr": "nocolon"},
    ],
)
def test_invalid_search_params_get_422(service: Any, params: dict[str, Any]) -> None:
    assert service().get("/v1/search", params=params).status_code == 422


def test_a_json_body_that_is_not_utf8_gets_422_on_every_json_route(service: Any) -> None:
    client = service(random_catalog(3))
    body, headers = b"\n\xff\xfe", {"content-type": "application/json"}
    for path in ("/v1/search", "/v1/recommend", "/v1/embed", "/v1/classify", "/v1/items/item-0/tags"):
        answer = client.post(path, content=body, headers=headers)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["detail"].startswith("body:"), path


def test_image_search_with_words(service: Any, tiny_model: Any) -> None:
    image = pattern_image(5)
    client = service({"twin": (tiny_model.encode_images([image])[0], {}), **random_catalog(30)})
    files = {"image": ("query.png", png(5), "image/png")}
    hits = client.post("/v1/search/image", files=files, data={"k": "3"}).json()["hits"]
    assert hits[0]["id"] == "twin" and hits[0]["score"] > 0.99
    combined = client.post("/v1/search/image", files=files, data={"k": "3", "text": "red", "negative": "leather"})
    assert combined.status_code == 200 and combined.json()["hits"][0]["score"] < hits[0]["score"]
    filtered = client.post("/v1/search/image", files=files, data={"k": "3", "category": "rare"}).json()["hits"]
    assert {h["category"] for h in filtered} == {"rare"}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"", "empty"), (b"plain text, not an image", "contains text"), (png()[:60], "truncated")],
)
def test_bad_uploads_get_422_with_a_reason(service: Any, content: bytes, fragment: str) -> None:
    client = service()
    response = client.post("/v1/search/image", files={"image": ("x.png", content, "image/png")})
    assert response.status_code == 422 and fragment in response.json()["detail"]
    response = client.post("/v1/classify", files={"image": ("x.png", content, "image/png")}, data={"labels": "a,b"})
    assert response.status_code == 422 and fragment in response.json()["detail"]


def test_upload_size_limit_with_and_without_content_length(service: Any) -> None:
    client = service(max_upload_bytes=4000)
    noise = np.random.default_rng(0).integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    big = buffer.getvalue()
    assert len(big) > 4000
    response = client.post("/v1/search/image", files={"image": ("big.png", big, "image/png")})
    assert response.status_code == 413 and "4000" in response.json()["detail"]

    boundary = "catalensboundary"
    payload = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 1000):
            yield payload[start : start + 1000]

    response = client.post(
        "/v1/search/image", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 413
    small = client.post("/v1/search/image", files={"image": ("s.png", png(1, (20, 20)), "image/png")})
    assert small.status_code == 200


def test_items_similar_image_and_thumbnail(service: Any) -> None:
    client = service()
    item = client.get("/v1/items/sku-0002").json()
    assert item["status"] == "indexed" and item["category"] in ("rare", "common") and item["width"] == 96
    assert client.get("/v1/items/nope").status_code == 404
    similar = client.get("/v1/items/sku-0002/similar", params={"k": 4}).json()["hits"]
    assert len(similar) == 4 and "sku-0002" not in [h["id"] for h in similar]
    assert client.get("/v1/items/nope/similar").status_code == 404

    full = client.get("/v1/items/sku-0002/image")
    assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(full.content)).size == (96, 64)
    thumb = client.get("/v1/items/sku-0002/thumbnail", params={"size": 32})
    decoded = Image.open(io.BytesIO(thumb.content))
    assert max(decoded.size) == 32 and not decoded.getexif()
    cached = client.get(
        "/v1/items/sku-0002/thumbnail", params={"size": 32}, headers={"if-none-match": thumb.headers["etag"]}
    )
    assert cached.status_code == 304
    assert client.get("/v1/items/sku-0002/thumbnail", params={"size": 5000}).status_code == 422
    assert client.get("/v1/items/nope/thumbnail").status_code == 404


def test_add_search_and_delete_items(service: Any, http_server: Callable[..., str]) -> None:
    # URL items are off by default, and the test server's loopback address must be allowed explicitly.
    client = service(allow_url_items=True, fetch_allow="127.0.0.1")
    exif = Image.Exif()
    exif[0x0112] = 6
    created = client.post(
        "/v1/items",
        files={"image": ("new.png", png(42, exif=exif.tobytes()), "image/png")},
        data={
            "id": "new/item 1",
            "title": "New",
            "category": "fresh",
            "price": "12.5",
            "attributes": '{"color": "green"}',
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] == "new/item 1" and body["price"] == 12.5 and body["attributes"] == {"color": "green"}
    assert (body["width"], body["height"]) == (64, 96)  # EXIF rotation applied
    hits = client.post("/v1/search", json={"parts": [{"item_id": "new/item 1"}], "k": 1}).json()["hits"]
    assert hits[0]["id"] == "new/item 1"
    assert client.get(body["thumbnail_url"]).status_code == 200
    fresh = client.get("/v1/search", params={"q": "x", "category": "fresh"}).json()["hits"]
    assert [h["id"] for h in fresh] == ["new/item 1"]
    # Its words are in the full-text index as soon as the call returns (the attribute value too).
    by_words = client.get("/v1/search", params={"q": "green", "mode": "lexical"}).json()["hits"]
    assert [h["id"] for h in by_words] == ["new/item 1"]

    base = http_server({"/remote.png": (200, png(43))})
    by_url = client.post("/v1/items", data={"id": "remote", "image_url": f"{base}/remote.png"})
    assert by_url.status_code == 201 and by_url.json()["source"] == f"{base}/remote.png"
    assert client.get("/v1/items/remote/image").status_code == 200

    assert client.delete("/v1/items/new%2Fitem%201").status_code == 204
    assert client.get("/v1/items/new%2Fitem%201").status_code == 404
    fresh = client.get("/v1/search", params={"q": "x", "category": "fresh"}).json()["hits"]
    assert fresh == []
    assert client.get("/v1/search", params={"q": "green", "mode": "lexical"}).json()["hits"] == []
    assert client.delete("/v1/items/new%2Fitem%201").status_code == 404


@pytest.mark.parametrize(
    ("data", "files", "fragment"),
    [
        ({"id": "x"}, None, "exactly one"),
        ({"id": "x", "image_url": "http://127.0.0.1:9/a.png"}, {"image": ("a.png", png(), "image/png")}, "exactly one"),
        ({"id": "x", "attributes": "[1]"}, {"image": ("a.png", png(), "image/png")}, "JSON object"),
        ({"id": "x", "attributes": "{bad"}, {"image": ("a.png", png(), "image/png")}, "JSON object"),
        ({"id": "x"}, {"image": ("a.png", b"GIF89a broken", "image/gif")}, "image"),
        ({"id": "x", "image_url": "ftp://example.com/a.png"}, None, "pattern"),
        ({"id": "x", "image_url": "http://images.example.com/a.png"}, None, "cannot connect"),
        ({"id": "x", "price": "-3"}, {"image": ("a.png", png(), "image/png")}, "greater than or equal"),
    ],
)
def test_bad_item_posts_get_422(service: Any, data: dict[str, str], files: Any, fragment: str) -> None:
    response = service(allow_url_items=True).post("/v1/items", data=data, files=files)
    assert response.status_code == 422, response.text
    assert fragment in str(response.json()["detail"])


def test_classify_items_and_uploads(service: Any) -> None:
    client = service()
    response = client.post(
        "/v1/classify", json={"ids": ["sku-0001", "sku-0002"], "labels": ["shoe", "bag", "mug"], "top_k": 2}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == ["sku-0001", "sku-0002"] and all(len(r["predictions"]) == 2 for r in results)
    upload = client.post(
        "/v1/classify",
        files={"image": ("x.png", png(), "image/png")},
        data={"labels": "shoe, bag", "templates": "a product photo of a {}", "top_k": "5"},
    )
    assert upload.status_code == 200
    predictions = upload.json()["results"][0]["predictions"]
    assert {p["label"] for p in predictions} == {"shoe", "bag"}
    assert abs(sum(p["probability"] for p in predictions) - 1) < 1e-4
    assert client.post("/v1/classify", json={"ids": ["nope"], "labels": ["a"]}).status_code == 404
    for bad in (
        {"ids": [], "labels": ["a"]},
        {"ids": ["sku-0001"], "labels": ["a", "a"]},
        {"labels": ["a"]},
        "not json",
    ):
        kwargs = {"json": bad} if not isinstance(bad, str) else {"content": bad}
        assert client.post("/v1/classify", **kwargs).status_code == 422
    assert client.post("/v1/classify", files={"image": ("x.png", png(), "image/png")}).status_code == 422


def test_operations_endpoints(service: Any) -> None:
    client = service()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready == {"status": "ready", "generation": 1, "items": 60}
    client.get("/v1/search", params={"q": "x"})
    client.get("/v1/items/nope")
    metrics = client.get("/metrics").text
    assert 'catalens_requests_total{method="GET",route="/v1/search",status="200"} 1.0' in metrics
    assert 'route="/v1/items/{item_id:path}",status="404"' in metrics
    assert "catalens_request_duration_seconds_bucket" in metrics
    assert "catalens_index_items 60.0" in metrics and "catalens_index_generation 1.0" in metrics
    info = client.get("/v1/info").json()
    assert info["items"]["indexed"] == 60 and {f["value"] for f in info["facets"]["category"]} == {"rare", "common"}
    assert {f["value"] for f in info["facets"]["color"]} == {"red", "blue"}
    schema = client.get("/openapi.json").json()
    assert {"/v1/search", "/v1/search/image", "/v1/classify", "/v1/items"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "catalens" in page.text


def test_garbage_input_never_gives_a_500(service: Any) -> None:
    client = service()
    rng = np.random.default_rng(0)
    junk = ["", "%00", "\u2603", "-1", "1e309", "nan", "[]", "{}", "x" * 3000, "../../etc/passwd"]
    for _ in range(120):
        value = str(rng.choice(junk))
        requests = [
            ("GET", "/v1/search", {"params": {"q": value, "k": value}}),
            ("GET", "/v1/search", {"params": {"q": "x", "price_min": value, "category": value}}),
            ("GET", f"/v1/items/{value}", {}),
            ("GET", f"/v1/items/{value}/thumbnail", {"params": {"size": value}}),
            ("POST", "/v1/search", {"content": value, "headers": {"content-type": "application/json"}}),
            ("POST", "/v1/classify", {"content": value, "headers": {"content-type": "application/json"}}),
            (
                "POST",
                "/v1/search/image",
                {"files": {"image": ("x", value.encode(), "image/png")}, "data": {"k": value}},
            ),
            ("DELETE", f"/v1/items/{value}x", {}),
        ]
        method, url, kwargs = requests[int(rng.integers(len(requests)))]
        response = client.request(method, url, **kwargs)
        assert response.status_code < 500, (method, url, kwargs, response.text)


def test_path_traversal_ids_never_reach_files(service: Any, tmp_path: Path) -> None:
    client = service()
    for attempt in ("../../../../etc/passwd", "%2e%2e%2fmanifest.json", "/etc/passwd"):
        assert client.get(f"/v1/items/{attempt}/image").status_code == 404


def test_attr_filters_take_name_colon_value_and_name_equals_value_alike(service: Any) -> None:
    client = service()

    def ids(params: dict[str, Any]) -> list[str]:
        response = client.get("/v1/search", params={"q": "x", "k": 10, **params})
        assert response.status_code == 200, response.text
        return sorted(h["id"] for h in response.json()["hits"])

    # random_catalog(60): rare items are 0, 25 and 50; blue ones are even; 0 and 50 cost 0, 25 costs 25.
    expected = ["sku-0000", "sku-0050"]
    assert ids({"category": "rare", "attr": "color:blue", "price_max": 40}) == expected
    assert ids({"category": "rare", "attr": "color=blue", "price_max": 40}) == expected
    # attr takes the CLI's --filter syntax whole: category lists and price ranges too.
    assert ids({"attr": ["category=rare,none", "color:blue", "price:..40"]}) == expected
    assert ids({"attr": "category:rare", "price_min": 10}) == ["sku-0025"]
    # Every condition holds, so two bounds of one side combine to the tighter.
    assert ids({"attr": ["category:rare", "price=..30"], "price_max": 10}) == expected

    files = {"image": ("query.png", png(5), "image/png")}
    for attr in ("color:blue", "color=blue"):
        response = client.post("/v1/search/image", files=files, data={"k": "10", "category": "rare", "attr": attr})
        assert sorted(h["id"] for h in response.json()["hits"]) == expected

    for bad, fragment in [("nocolon", "NAME=VALUE or NAME:VALUE"), ("price:cheap", "price filters take numbers")]:
        response = client.get("/v1/search", params={"q": "x", "attr": bad})
        assert response.status_code == 422 and fragment in response.json()["detail"]
        response = client.post("/v1/search/image", files=files, data={"attr": bad})
        assert response.status_code == 422 and fragment in response.json()["detail"]


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ({"k": "0"}, "k: Input should be greater than or equal to 1"),
        ({"k": "many"}, "k: Input should be a valid integer"),
        ({"k": "500"}, "k must be at most 200"),
        ({"text": "x" * 1001}, "text: String should have at most 1000 characters"),
        ({"image_weight": "101"}, "image_weight: Input should be less than or equal to 100"),
        ({"mode": "fuzzy"}, "mode: Input should be 'vector', 'lexical' or 'hybrid'"),
        ({"price_min": "5", "price_max": "1"}, "price_min must not exceed price_max"),
    ],
)
def test_image_search_form_fields_are_validated_with_messages(service: Any, data: dict[str, str], detail: str) -> None:
    response = service().post("/v1/search/image", files={"image": ("q.png", png(), "image/png")}, data=data)
    assert response.status_code == 422 and detail in response.json()["detail"], response.text


def test_image_search_form_needs_the_image_and_keeps_its_field_names(service: Any) -> None:
    client = service()
    response = client.post("/v1/search/image", data={"k": "3"})
    assert response.status_code == 422 and response.json()["detail"] == "image: Field required"
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/search/image"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    form = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert list(form["properties"]) == [
        "image",
        "text",
        "negative",
        "image_weight",
        "text_weight",
        "k",
        "offset",
        "min_score",
        "collapse",
        "category",
        "price_min",
        "price_max",
        "attr",
        "mode",
        "explain",
        "dedupe",
    ]
    assert form["required"] == ["image"]


def test_settings_survive_a_round_trip_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.env_names():
        monkeypatch.delenv(name, raising=False)
    settings = Settings(
        store=tmp_path / "store",
        device="cpu",
        max_k=17,
        refresh_interval_s=0.25,
        allow_url_items=False,
        text_encoder="st:some-text-model",
        allow_unpaired_text_encoder=True,
        vector_weight=0.3,
        rrf_k=12.5,
    )
    env = settings.to_env()
    assert env["CATALENS_STORE"] == str(tmp_path / "store") and env["CATALENS_ALLOW_URL_ITEMS"] == "false"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings  # type: ignore[call-arg]  # store comes from CATALENS_STORE

    for name in Settings.env_names():
        monkeypatch.delenv(name, raising=False)
    defaults = Settings(store=tmp_path)
    assert "CATALENS_TEXT_ENCODER" not in defaults.to_env()  # None is left out
    for name, value in defaults.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings() == defaults  # type: ignore[call-arg]

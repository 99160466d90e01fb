"""``POST /v1/recommend``, ``POST /v1/embed`` and ``dedupe`` through the HTTP service.

One store and one app serve the whole module (the engine is read-only here). The ranking rules themselves
(strategies, MMR, caps, dedupe's effect) are tested on the engine in ``test_recommend.py``; these tests hold
the HTTP shapes, the JSON and multipart variants, the round trip of ``/v1/embed``'s vectors, and the 4xx
answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from catalens.search.api import create_app
from catalens.search.engine import SearchEngine
from catalens.search.settings import Settings
from tests.conftest import pattern_image, unit
from tests.integration.test_api import png

N_ITEMS = 40
BRANDS = ("acme", "bolt", "cora", "dune")
CATEGORIES = ("shoes", "bags", "hats")


def _vectors(dim: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {f"sku-{i:02d}": unit(rng.normal(size=dim)) for i in range(N_ITEMS)}


def build_store(root: Path, model: Any) -> Path:
    """``N_ITEMS`` items with known vectors, a brand, a category and a product, plus one item that failed."""
    from catalens.indexer.pipeline import reindex
    from catalens.indexer.records import ItemRecord
    from catalens.indexer.store import CatalogStore, EmbeddedItem, FailedItem

    path = root / "store"
    store = CatalogStore.create(path, model.spec, model.dim, "Flat")
    embedded = []
    for i, (item_id, vector) in enumerate(_vectors(model.dim).items()):
        image = root / f"{i}.png"
        pattern_image(i).save(image)
        record = ItemRecord(
            id=item_id,
            source=str(image),
            origin="test",
            title=f"item {i}",
            category=CATEGORIES[i % 3],
            product_id=f"p-{i // 2}",
            price=float(i),
            attributes={"brand": BRANDS[i % 4]},
        )
        embedded.append(EmbeddedItem(record, f"{i:032x}", 96, 64, vector))
    broken = ItemRecord(id="broken", source=str(root / "broken.jpg"), origin="test")
    with store.writer_lock():
        store.write_batch(embedded=embedded, failed=[(FailedItem("broken", broken.source, "unreadable"), broken)])
    store.close()
    reindex(path, "Flat")
    return path


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory, tiny_model: Any) -> Path:
    return build_store(tmp_path_factory.mktemp("recommend-api"), tiny_model)


@pytest.fixture(scope="module")
def engine(store_path: Path, tiny_model: Any) -> Iterator[SearchEngine]:
    opened = SearchEngine.open(store_path, encoder=tiny_model)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def client(store_path: Path, engine: SearchEngine) -> Iterator[TestClient]:
    settings = Settings(store=store_path, rate_limit="off", refresh_interval_s=3600)
    with TestClient(create_app(settings, engine)) as started:
        yield started


def recommend(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/recommend", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def ids(hits: list[dict[str, Any]]) -> list[str]:
    return [h["id"] for h in hits]


def test_recommend_skips_unknown_ids_and_never_returns_the_inputs(client: TestClient) -> None:
    examples = ["sku-01", {"id": "sku-02", "weight": 2}, "nope", "broken"]
    body = recommend(client, positive=examples, negative=["sku-03"], k=N_ITEMS)
    reasons = {s["id"]: s["reason"] for s in body["skipped"]}
    assert reasons.keys() == {"nope", "broken"} and reasons["nope"] == "not found"
    assert reasons["broken"].startswith("not indexed") and "unreadable" in reasons["broken"]
    assert not {"sku-01", "sku-02", "sku-03", "broken"} & set(ids(body["hits"]))
    assert len(body["hits"]) == N_ITEMS - 3 and body["groups"] is None
    assert (body["k"], body["offset"], body["generation"]) == (N_ITEMS, 0, 1)
    hit = body["hits"][0]  # serialised like a search hit
    searched = client.get("/v1/search", params={"q": "x", "k": 1}).json()["hits"][0]
    assert hit.keys() == searched.keys() and hit["image_url"] == f"/v1/items/{hit['id']}/image"

    kept = recommend(client, positive=["sku-01"], negative=["sku-03"], exclude_inputs=False, k=N_ITEMS)
    assert {"sku-01", "sku-03"} <= set(ids(kept["hits"])) and kept["skipped"] == []
    assert kept["hits"][0]["id"] == "sku-01"


def test_a_vector_example_ranks_like_the_item_it_came_from(client: TestClient, tiny_model: Any) -> None:
    vector = _vectors(tiny_model.dim)["sku-05"].tolist()
    by_vector = recommend(client, positive=[{"vector": vector}], k=8)["hits"]
    by_id = recommend(client, positive=["sku-05"], exclude_inputs=False, k=8)["hits"]
    assert ids(by_vector) == ids(by_id) and by_vector[0]["id"] == "sku-05"
    assert by_vector[0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_caps_groups_strategies_and_paging_shape_the_answer(client: TestClient) -> None:
    capped = recommend(client, positive=["sku-00", "sku-07"], max_per={"brand": 1}, k=10)["hits"]
    brands = [h["attributes"]["brand"] for h in capped]
    assert len(brands) == len(set(brands)) == len(BRANDS)

    grouped = recommend(client, positive=["sku-00"], group_by="category", group_size=2, k=2)
    assert grouped["hits"] == [] and grouped["k"] == 2 and len(grouped["groups"]) == 2
    for group in grouped["groups"]:
        assert 1 <= len(group["hits"]) <= 2 and {h["category"] for h in group["hits"]} == {group["value"]}
    second = recommend(client, positive=["sku-00"], group_by="category", group_size=2, k=1, offset=1)["groups"]
    assert [g["value"] for g in second] == [grouped["groups"][1]["value"]]

    whole = recommend(client, positive=["sku-04"], negative=["sku-09"], strategy="best_score", k=6)["hits"]
    pages = [
        recommend(client, positive=["sku-04"], negative=["sku-09"], strategy="best_score", k=3, offset=o)["hits"]
        for o in (0, 3)
    ]
    assert ids(whole) == ids(pages[0]) + ids(pages[1])
    diverse = recommend(
        client, positive=["sku-04"], diversity=0.5, candidates=20, filters={"categories": ["bags"]}, k=5
    )["hits"]
    assert len(diverse) == 5 and {h["category"] for h in diverse} == {"bags"}
    only_negative = recommend(client, negative=["sku-04"], k=3, explain=True)["hits"]
    assert len(only_negative) == 3 and "sku-04" not in ids(only_negative)


def test_dedupe_is_accepted_by_search_similar_and_recommend(client: TestClient) -> None:
    # The store has no duplicate groups, so dedupe changes nothing here; its effect is tested on the engine.
    image = {"image": ("q.png", png(3), "image/png")}
    for send in (
        lambda extra: client.get("/v1/search", params={"q": "red", "k": 5, **extra}),
        lambda extra: client.post("/v1/search", json={"query": "red", "k": 5, **extra}),
        lambda extra: client.get("/v1/items/sku-01/similar", params={"k": 5, **extra}),
        lambda extra: client.post("/v1/search/image", files=image, data={"k": "5", **extra}),
        lambda extra: client.post("/v1/recommend", json={"positive": ["sku-01"], "k": 5, **extra}),
    ):
        plain, deduped = send({}), send({"dedupe": True})
        assert plain.status_code == deduped.status_code == 200, deduped.text
        assert ids(deduped.json()["hits"]) == ids(plain.json()["hits"])
    assert client.get("/v1/search", params={"q": "red", "dedupe": "maybe"}).status_code == 422


def test_embedded_text_round_trips_through_search_and_recommend(client: TestClient, tiny_model: Any) -> None:
    answer = client.post("/v1/embed", json={"text": " red shoe "}).json()
    assert (answer["model"], answer["dim"], len(answer["vectors"])) == (tiny_model.spec, tiny_model.dim, 1)
    vector = answer["vectors"][0]
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    batch = client.post("/v1/embed", json={"texts": ["red shoe", "blue bag"]}).json()["vectors"]
    assert len(batch) == 2 and np.allclose(batch[0], vector, atol=1e-6) and not np.allclose(batch[1], vector)

    by_text = client.post("/v1/search", json={"query": "red shoe", "mode": "vector", "k": 8}).json()["hits"]
    by_vector = client.post("/v1/search", json={"parts": [{"vector": vector}], "mode": "vector", "k": 8}).json()
    assert ids(by_vector["hits"]) == ids(by_text)
    assert [h["score"] for h in by_vector["hits"]] == pytest.approx([h["score"] for h in by_text], abs=1e-5)
    assert ids(recommend(client, positive=[{"vector": vector}], k=8)["hits"]) == ids(by_text)


def test_embedded_image_round_trips_and_the_multipart_recommend_matches_json(client: TestClient) -> None:
    image = {"image": ("q.png", png(3), "image/png")}
    answer = client.post("/v1/embed", files=image).json()
    assert answer["dim"] == len(answer["vectors"][0]) and len(answer["vectors"]) == 1
    vector = answer["vectors"][0]

    uploaded = client.post("/v1/search/image", files=image, data={"k": "6", "mode": "vector"}).json()["hits"]
    sent = client.post("/v1/search", json={"parts": [{"vector": vector}], "mode": "vector", "k": 6}).json()["hits"]
    assert ids(sent) == ids(uploaded)

    request = {"negative": ["sku-01"], "positive": ["sku-02"], "k": 6, "max_per": {"brand": 2}}
    form = client.post("/v1/recommend", files=image, data={"request": json.dumps(request), "image_weight": "2"})
    assert form.status_code == 200, form.text
    as_json = recommend(client, **{**request, "positive": ["sku-02", {"vector": vector, "weight": 2}]})
    assert ids(form.json()["hits"]) == ids(as_json["hits"]) and len(as_json["hits"]) == 6
    image_only = client.post("/v1/recommend", files=image, data={"request": '{"k": 3}'}).json()["hits"]
    assert ids(image_only) == ids(uploaded)[:3]


def _unknown_ids_named(detail: str) -> bool:
    return "nope" in detail and "gone" in detail


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "example"),
        ({"positive": ["nope", "gone"]}, _unknown_ids_named),
        ({"positive": ["sku-01"], "strategy": "magic"}, "strategy"),
        ({"positive": ["sku-01"], "diversity": 1.5}, "diversity"),
        ({"positive": ["sku-01"], "diversity": -0.1}, "diversity"),
        ({"positive": ["sku-01"], "max_per": {"brand": 0}}, "max_per"),
        ({"positive": ["sku-01"], "max_per": {"": 1}}, "max_per"),
        ({"positive": ["sku-01"], "candidates": 0}, "candidates"),
        ({"positive": ["sku-01"], "group_by": "category", "group_size": 0}, "group_size"),
        ({"positive": ["sku-01"], "k": 100000}, "k must be at most"),
        ({"positive": ["sku-01"], "group_by": "brand", "k": 100, "group_size": 3}, "k x group_size"),
        ({"positive": [{"id": "sku-01", "vector": [1.0]}]}, "exactly one"),
        ({"positive": [{"id": "sku-01", "weight": 0}]}, "weight"),
        ({"positive": [{"vector": [1.0, 2.0]}]}, "dimensions"),
        ({"positive": [{"vector": [0.0] * 32}]}, ""),
        ({"positive": ["sku-01"], "filters": {"price_min": 5, "price_max": 1}}, "price"),
        ({"positive": ["sku-01"], "unknown": 1}, "unknown"),
        ({"positive": "sku-01"}, "positive"),
    ],
)
def test_bad_recommendations_get_422_with_a_message(client: TestClient, body: dict[str, Any], fragment: Any) -> None:
    response = client.post("/v1/recommend", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail and (fragment(detail) if callable(fragment) else fragment in detail), detail


def test_bad_embeds_and_forms_get_422_with_a_message(client: TestClient) -> None:
    image = {"image": ("q.png", png(3), "image/png")}
    broken = {"image": ("q.png", b"this is no picture", "image/png")}
    cases = [
        client.post("/v1/embed", json={}),
        client.post("/v1/embed", json={"text": "a", "texts": ["b"]}),
        client.post("/v1/embed", json={"text": "   "}),
        client.post("/v1/embed", json={"texts": []}),
        client.post("/v1/embed", json={"texts": ["a"] * 65}),
        client.post("/v1/embed", json={"text": "x" * 1001}),
        client.post("/v1/embed", content=b"{not json", headers={"content-type": "application/json"}),
        client.post("/v1/recommend", content=b'{"positive": ["\xff"]}', headers={"content-type": "application/json"}),
        client.post("/v1/embed", files={"other": ("q.png", png(3), "image/png")}),
        client.post("/v1/recommend", files=image, data={"request": "not json"}),
        client.post("/v1/recommend", files=image, data={"request": '{"k": 0}'}),
        client.post("/v1/recommend", files=image, data={"image_weight": "heavy"}),
        client.post("/v1/recommend", files=image, data={"image_weight": "0"}),
        client.post("/v1/recommend", files={**image, "request": ("r.json", b"{}", "application/json")}),
        client.post("/v1/recommend", data={"request": '{"positive": ["sku-01"]}'}),
    ]
    for response in cases:
        assert response.status_code == 422 and response.json()["detail"], response.text
    for route in ("/v1/embed", "/v1/recommend"):
        refused = client.post(route, files=broken)
        assert refused.status_code == 422 and "not an image" in refused.json()["detail"], refused.text


def test_image_uploads_and_embeddings_are_rate_limited(store_path: Path, engine: SearchEngine) -> None:
    settings = Settings(store=store_path, rate_limit="2/minute", refresh_interval_s=3600)
    image = {"image": ("q.png", png(3), "image/png")}
    with TestClient(create_app(settings, engine)) as limited:
        for _ in range(3):  # reading stored vectors is not limited, like POST /v1/search
            assert limited.post("/v1/recommend", json={"positive": ["sku-01"]}).status_code == 200
        assert limited.post("/v1/embed", json={"text": "red"}).status_code == 200
        assert limited.post("/v1/recommend", files=image).status_code == 200
        assert limited.post("/v1/embed", files=image).status_code == 429
        assert limited.post("/v1/recommend", files=image).status_code == 429
        assert limited.post("/v1/recommend", json={"positive": ["sku-01"]}).status_code == 200


def test_openapi_documents_both_media_types_and_dedupe(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path in ("/v1/recommend", "/v1/embed"):
        operation = document["paths"][path]["post"]
        content = operation["requestBody"]["content"]
        assert set(content) == {"application/json", "multipart/form-data"}
        assert "$defs" not in json.dumps(content)  # inlined: no reference dangling from the document root
        assert content["multipart/form-data"]["schema"]["required"] == ["image"]
        assert {"200", "413", "422", "429"} <= set(operation["responses"])
    recommend_body = document["paths"]["/v1/recommend"]["post"]["requestBody"]["content"]["application/json"]
    assert {"positive", "negative", "strategy", "max_per", "group_by", "dedupe"} <= set(
        recommend_body["schema"]["properties"]
    )
    assert "skipped" in document["components"]["schemas"]["RecommendResponse"]["properties"]
    for path in ("/v1/search", "/v1/items/{item_id}/similar"):
        assert "dedupe" in {p["name"] for p in document["paths"][path]["get"]["parameters"]}
    assert "dedupe" in document["components"]["schemas"]["SearchRequest"]["properties"]

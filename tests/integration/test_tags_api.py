"""Tags over HTTP: the review queue, a person's decisions, tags on items and their counts in ``/v1/info``.

Tags are written through the store's tag table (as a tagging run does), then read and decided through the
service's public routes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient

from catalens.indexer.store.tags import ModelTag
from catalens.indexer.tagging.taxonomy import parse_taxonomy
from catalens.search.engine import SearchEngine
from catalens.search.security import generate_key, hash_key
from tests.integration.test_engine import DIM

TAXONOMY = {
    "attributes": {
        "colour": {"values": ["red", "blue", "green"]},
        "style": {"values": ["plain", "striped", "dotted"], "multi_label": True},
    }
}
SLASHED = "shop/a b/sku-2"  # an id with slashes and a space
ODD = "odd/tags"  # an id that ends like the decision route
IDS = ["sku-0", "sku-1", SLASHED, "sku-3", "sku-4", ODD]

# (item id, attribute, value, confidence, decision, runner-up, its confidence)
MODEL_TAGS = [
    ("sku-0", "colour", "red", 0.55, "review", "blue", 0.30),
    ("sku-1", "colour", "blue", 0.95, "accept", "red", 0.03),
    (SLASHED, "colour", "green", 0.40, "review", "red", 0.35),
    ("sku-3", "style", "striped", 0.60, "review", None, None),
    ("sku-3", "style", "dotted", 0.50, "review", None, None),
    ("sku-4", "colour", "red", 0.10, "reject", "green", 0.09),
]
Start = Callable[..., TestClient]


def _catalog() -> dict[str, tuple[Any, dict[str, Any]]]:
    rng = np.random.default_rng(3)
    return {
        item_id: (rng.normal(size=DIM), {"title": f"Item {n}", "category": "things", "attributes": {"size": "m"}})
        for n, item_id in enumerate(IDS)
    }


def _write_tags(engine: SearchEngine) -> None:
    """One finished tagging run with MODEL_TAGS, written as the tagging job writes them."""
    store = engine.store
    taxonomy = parse_taxonomy(json.dumps(TAXONOMY), fmt="json")
    by_item: dict[str, list[ModelTag]] = {}
    for item_id, attribute, value, confidence, decision, runner_up, runner_conf in MODEL_TAGS:
        by_item.setdefault(item_id, []).append(
            ModelTag(attribute, value, confidence, decision, runner_up=runner_up, runner_up_confidence=runner_conf)
        )
    with store.writer_lock():
        run = store.tags.start_run("sig-1", taxonomy.fingerprint, taxonomy.to_json(), "tiny", None)
        results = []
        for item_id, tags in by_item.items():
            item = store.get_item(item_id)
            assert item is not None
            results.append((item.key, sorted({t.attribute for t in tags}), tags))
        store.tags.write(run, "sig-1", results)
        store.tags.finish_run(run, {})


@pytest.fixture
def service(vector_store: Any, tiny_model: Any, open_service: Any) -> Start:
    """``start(tagged=True, **settings)``: a client of a small store, with MODEL_TAGS written unless told not."""
    stores: list[Path] = []

    def start(tagged: bool = True, **settings: Any) -> TestClient:
        stores.append(vector_store(_catalog(), name=f"tags{len(stores)}"))
        engine = SearchEngine.open(stores[-1], encoder=tiny_model)
        try:
            if tagged:
                _write_tags(engine)
        except BaseException:
            engine.close()
            raise
        client: TestClient = open_service(stores[-1], engine=engine, **settings)
        return client

    return start


def _tags_url(item_id: str) -> str:
    return f"/v1/items/{quote(item_id, safe='')}/tags"


def _queue(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/tags/review", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _tags(client: TestClient, item_id: str) -> set[tuple[str, str, str, str]]:
    response = client.get(f"/v1/items/{quote(item_id, safe='')}")
    assert response.status_code == 200, response.text
    return {(t["attribute"], t["value"], t["decision"], t["source"]) for t in response.json()["tags"]}


# -- reading ---------------------------------------------------------------------------------------------


def test_review_queue_lists_suggestions_least_confident_first_with_their_choices(service: Start) -> None:
    client = service()
    queue = _queue(client)
    assert queue["total"] == 4
    assert [(e["id"], e["value"]) for e in queue["items"]] == [
        (SLASHED, "green"),
        ("sku-3", "dotted"),
        ("sku-0", "red"),
        ("sku-3", "striped"),
    ]
    first = queue["items"][0]
    assert first["attribute"] == "colour" and first["confidence"] == pytest.approx(0.40)
    assert first["runner_up"] == "red" and first["runner_up_confidence"] == pytest.approx(0.35)
    assert first["values"] == ["red", "blue", "green"] and first["multi_label"] is False
    assert first["title"] == "Item 2"
    assert first["image_url"] == f"/v1/items/{quote(SLASHED, safe='')}/image"
    assert client.get(first["image_url"]).status_code == 200
    assert queue["items"][1]["multi_label"] is True and queue["items"][1]["values"] == ["plain", "striped", "dotted"]

    colour = _queue(client, attribute="colour")
    assert colour["total"] == 2 and [e["id"] for e in colour["items"]] == [SLASHED, "sku-0"]
    page = _queue(client, limit=2, offset=1)
    assert page["total"] == 4 and [e["value"] for e in page["items"]] == ["dotted", "red"]
    assert _queue(client, offset=10) == {"total": 4, "items": []}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"attribute": "flavour"}, "flavour"),
        ({"limit": 0}, "limit"),
        ({"limit": 100000}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_review_queue_refuses_bad_parameters(service: Start, params: dict[str, Any], named: str) -> None:
    response = service().get("/v1/tags/review", params=params)
    assert response.status_code == 422
    assert named in response.json()["detail"]


def test_items_show_their_tags_of_every_decision(service: Start) -> None:
    client = service()
    assert _tags(client, "sku-3") == {("style", "striped", "review", "model"), ("style", "dotted", "review", "model")}
    assert _tags(client, "sku-4") == {("colour", "red", "reject", "model")}
    assert _tags(client, SLASHED) == {("colour", "green", "review", "model")}
    tag = client.get("/v1/items/sku-1").json()["tags"][0]
    assert tag["confidence"] == pytest.approx(0.95) and tag["runner_up"] == "red" and tag["run_id"] is not None
    assert tag["decided_by"] is None and tag["updated_at"]
    # An id ending in /tags is still an item to GET (the decision route only takes POST).
    assert client.get(f"/v1/items/{ODD}").json()["id"] == ODD
    assert client.get("/v1/items/sku-2").status_code == 404


def test_info_counts_tags_per_attribute_and_decision(service: Start) -> None:
    tags = service().get("/v1/info").json()["tags"]
    assert tags == {"colour": {"accept": 1, "review": 2, "reject": 1}, "style": {"accept": 0, "review": 2, "reject": 0}}


def test_a_store_never_tagged_has_an_empty_queue_and_refuses_decisions(service: Start) -> None:
    client = service(tagged=False)
    assert _queue(client) == {"total": 0, "items": []}
    assert client.get("/v1/info").json()["tags"] == {}
    assert client.get("/v1/items/sku-0").json()["tags"] == []
    response = client.post(_tags_url("sku-0"), json={"attribute": "colour", "action": "accept", "value": "red"})
    assert response.status_code == 422 and "run" in response.json()["detail"]


# -- deciding --------------------------------------------------------------------------------------------


def test_accepting_a_suggestion_of_an_id_with_slashes(service: Start) -> None:
    client = service()
    before = client.get("/v1/info").json()["tags"]["colour"]
    response = client.post(_tags_url(SLASHED), json={"attribute": "colour", "action": "accept", "value": "green"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == SLASHED
    [tag] = body["tags"]
    assert (tag["attribute"], tag["value"], tag["decision"], tag["source"]) == ("colour", "green", "accept", "person")
    assert tag["decided_by"] == "api"
    # The unquoted path reaches the same item.
    again = client.post(f"/v1/items/{SLASHED}/tags", json={"attribute": "colour", "action": "accept", "value": "green"})
    assert again.status_code == 200 and again.json()["id"] == SLASHED

    assert _tags(client, SLASHED) == {("colour", "green", "accept", "person")}
    assert [e["id"] for e in _queue(client)["items"]] == ["sku-3", "sku-0", "sku-3"]
    after = client.get("/v1/info").json()["tags"]["colour"]
    assert after == {**before, "accept": before["accept"] + 1, "review": before["review"] - 1}
    # An accepted tag is an attribute for filtering and facets.
    hits = client.get("/v1/search", params={"q": "x", "attr": "colour:green", "mode": "vector"}).json()["hits"]
    assert [h["id"] for h in hits] == [SLASHED]


def test_correcting_a_single_label_suggestion_keeps_only_the_chosen_value(service: Start) -> None:
    client = service()
    response = client.post(_tags_url("sku-0"), json={"attribute": "colour", "action": "correct", "value": "blue"})
    assert response.status_code == 200, response.text
    assert _tags(client, "sku-0") == {("colour", "blue", "accept", "person")}
    assert "sku-0" not in [e["id"] for e in _queue(client)["items"]]


def test_multi_label_decisions_apply_to_one_value_each(service: Start) -> None:
    client = service()
    rejected = client.post(_tags_url("sku-3"), json={"attribute": "style", "action": "reject", "value": "dotted"})
    assert rejected.status_code == 200, rejected.text
    assert _tags(client, "sku-3") == {("style", "striped", "review", "model"), ("style", "dotted", "reject", "person")}
    chosen = client.post(_tags_url("sku-3"), json={"attribute": "style", "action": "correct", "value": "plain"})
    assert chosen.status_code == 200
    assert ("style", "plain", "accept", "person") in _tags(client, "sku-3")
    assert [e["value"] for e in _queue(client, attribute="style")["items"]] == ["striped"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"attribute": "flavour", "action": "accept", "value": "red"}, "flavour"),
        ({"attribute": "colour", "action": "accept", "value": "mauve"}, "mauve"),
        ({"attribute": "colour", "action": "approve", "value": "red"}, "action"),
        ({"attribute": "colour", "value": "red"}, "action"),
        ({"attribute": "colour", "action": "accept"}, "value"),
        ({"attribute": "", "action": "accept", "value": "red"}, "attribute"),
        ({"attribute": "colour", "action": "accept", "value": "red", "extra": 1}, "extra"),
        ({"attribute": "colour", "action": "accept", "value": 3}, "value"),
    ],
)
def test_bad_decisions_get_422_naming_the_problem(service: Start, body: dict[str, Any], named: str) -> None:
    client = service()
    response = client.post(_tags_url("sku-0"), json=body)
    assert response.status_code == 422, response.text
    assert named in response.json()["detail"]
    assert _tags(client, "sku-0") == {("colour", "red", "review", "model")}


def test_a_body_that_is_not_json_gets_422(service: Start) -> None:
    response = service().post(_tags_url("sku-0"), content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"]


def test_unknown_items_get_404(service: Start) -> None:
    client = service()
    body = {"attribute": "colour", "action": "accept", "value": "red"}
    response = client.post(_tags_url("no/such item"), json=body)
    assert response.status_code == 404 and "no/such item" in response.json()["detail"]


def test_decisions_need_write_scope_and_the_queue_read_scope(service: Start) -> None:
    read, write = generate_key(), generate_key()
    keys = f"read:{hash_key(read)}:reader,write:{hash_key(write)}:writer"
    client = service(api_keys=keys, public_read=False)
    body = {"attribute": "colour", "action": "accept", "value": "red"}
    assert client.post(_tags_url("sku-0"), json=body).status_code == 401
    assert client.get("/v1/tags/review").status_code == 401
    narrow = client.post(_tags_url("sku-0"), json=body, headers={"Authorization": f"Bearer {read}"})
    assert narrow.status_code == 403 and "write" in narrow.json()["detail"]
    assert client.get("/v1/tags/review", headers={"X-API-Key": read}).json()["total"] == 4
    done = client.post(_tags_url("sku-0"), json=body, headers={"X-API-Key": write})
    assert done.status_code == 200
    assert done.json()["tags"][0]["decided_by"] == "api:writer"
    assert client.get("/v1/tags/review", headers={"X-API-Key": read}).json()["total"] == 3


def test_the_routes_are_documented(service: Start) -> None:
    paths = service().get("/openapi.json").json()["paths"]
    assert "get" in paths["/v1/tags/review"]
    decision = paths["/v1/items/{item_id}/tags"]["post"]
    assert {"200", "404", "409", "422"} <= decision["responses"].keys()

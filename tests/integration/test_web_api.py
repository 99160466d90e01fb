"""What the web page needs from ``GET /v1/info``: failures with reasons, the price range, facets for every
attribute the items share, pass counts and the service's limits, kept in step with the store."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from catalens.indexer.store import CatalogStore, FailedItem
from tests.conftest import pattern_image
from tests.integration.test_engine import DIM


def _items() -> dict[str, tuple[Any, dict[str, Any]]]:
    rng = np.random.default_rng(7)
    colors = ["red", "blue", "red", "blue", "red", "green"]
    prices = [5.5, 19.0, 120.0, None, 42.0, 0.0]
    return {
        f"sku-{i}": (
            rng.normal(size=DIM),
            {
                "category": "shoes" if i < 4 else "hats",
                "price": prices[i],
                "attributes": {
                    "color": colors[i],
                    "size": "M" if i % 2 else "L",
                    "sku_code": f"X-{i}",  # unique per item: no use as a filter
                    "dims": {"w": i},  # not a scalar: not a facet
                    **({"fabric": "wool"} if i == 0 else {}),  # set on one item only: one value, still shown
                },
            },
        )
        for i in range(6)
    }


@pytest.fixture
def client(vector_store: Any, open_service: Any) -> Callable[..., TestClient]:
    stores: list[Path] = []

    def start(items: dict[str, Any], failures: Sequence[FailedItem] = (), **settings: Any) -> TestClient:
        path = vector_store(items, name=f"store{len(stores)}")
        stores.append(path)
        if failures:
            store = CatalogStore.open(path)
            with store.writer_lock():
                store.write_batch(failed=[(failure, None) for failure in failures])
            store.close()
        test_client: TestClient = open_service(path, **settings)
        return test_client

    return start


def test_info_has_failures_price_range_attribute_facets_and_limits(client: Callable[..., TestClient]) -> None:
    failures = [
        FailedItem("bad-1", "/catalog/bad-1.jpg", "not an image: the file contains text"),
        FailedItem("bad-2", "/catalog/bad-2.jpg", "file not found"),
    ]
    service = client(_items(), failures, max_k=50, max_upload_bytes=1_000_000)
    info = service.get("/v1/info").json()

    assert info["items"] == {"indexed": 6, "failed": 2}
    assert info["index_count"] == 6 and info["generation"] == 1
    assert info["price_range"] == {"min": 0.0, "max": 120.0}  # a price of 0 counts; a missing one does not
    assert {"max_k": 50, "max_upload_bytes": 1_000_000}.items() <= info["limits"].items()
    assert info["limits"]["classify"]["max_prompts"] == 4096 and info["index_problem"] is None
    assert info["passes"] == {}
    assert sorted(info["failures"], key=lambda f: f["id"]) == [
        {"id": "bad-1", "source": "/catalog/bad-1.jpg", "reason": "not an image: the file contains text"},
        {"id": "bad-2", "source": "/catalog/bad-2.jpg", "reason": "file not found"},
    ]
    # Every attribute the items share is a facet, the most widely set first; unique and nested ones are not.
    assert list(info["facets"]) == ["category", "color", "size", "fabric"]
    assert info["facets"]["color"] == [
        {"value": "red", "count": 3},
        {"value": "blue", "count": 2},
        {"value": "green", "count": 1},
    ]
    assert info["facets"]["fabric"] == [{"value": "wool", "count": 1}]

    assert len(service.get("/v1/info", params={"failures": 1}).json()["failures"]) == 1
    assert service.get("/v1/info", params={"failures": 0}).json()["failures"] == []
    assert service.get("/v1/info", params={"failures": 1001}).status_code == 422
    schema = service.get("/openapi.json").json()["components"]["schemas"]["InfoOut"]["properties"]
    assert {"failures", "price_range", "passes", "limits", "index_count"} <= set(schema)


def test_info_follows_items_added_and_deleted_through_the_service(client: Callable[..., TestClient]) -> None:
    service = client(_items())
    assert service.get("/v1/info").json()["price_range"]["max"] == 120.0
    image = io.BytesIO()
    pattern_image(3).save(image, format="PNG")
    for n in range(2):
        added = service.post(
            "/v1/items",
            data={"id": f"new-{n}", "price": "999.5", "attributes": '{"pattern": "striped"}'},
            files={"image": ("new.png", image.getvalue(), "image/png")},
        )
        assert added.status_code == 201, added.text
    info = service.get("/v1/info").json()
    assert info["price_range"] == {"min": 0.0, "max": 999.5}
    assert info["facets"]["pattern"] == [{"value": "striped", "count": 2}]

    for n in range(2):
        assert service.delete(f"/v1/items/new-{n}").status_code == 204
    info = service.get("/v1/info").json()
    assert info["price_range"]["max"] == 120.0 and "pattern" not in info["facets"]


def test_the_page_and_its_files_are_served(client: Callable[..., TestClient]) -> None:
    service = client(_items())
    page = service.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    referenced = re.findall(r'(?:src|href)="(static/[^"]+)"', page.text)
    assert "static/app.js" in referenced and "static/style.css" in referenced
    for path in referenced:
        answer = service.get(f"/{path}")
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == "no-cache"
    script = service.get("/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")  # module scripts need a JavaScript type
    assert service.get("/static/app.js", headers={"if-none-match": script.headers["etag"]}).status_code == 304


def test_info_without_prices_or_attributes(client: Callable[..., TestClient]) -> None:
    rng = np.random.default_rng(1)
    service = client({f"plain-{i}": (rng.normal(size=DIM), {}) for i in range(3)})
    info = service.get("/v1/info").json()
    assert info["price_range"] is None
    assert info["facets"] == {"category": []} and info["failures"] == []

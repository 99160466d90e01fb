"""``GET /v1/info`` reuses its store facts until the database changes, whoever changes it."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, FailedItem
from tests.integration.test_web_api import _items, client  # noqa: F401  (the fixture)


def test_info_follows_a_write_by_another_process(client: Callable[..., TestClient]) -> None:  # noqa: F811
    service = client(_items())
    first = service.get("/v1/info").json()
    assert first == service.get("/v1/info").json()  # served again from the cache: the same answer
    assert first["items"] == {"indexed": 6, "failed": 0} and "pattern" not in first["facets"]

    path = service.app.state.engine.store.path  # type: ignore[attr-defined]
    with CatalogStore.open(path) as other, other.writer_lock():  # another connection, as another process has
        other.write_batch(
            failed=[(FailedItem("bad", "/bad.jpg", "unreadable"), ItemRecord(id="bad", source="/bad.jpg", origin=""))]
        )

    info = service.get("/v1/info").json()
    assert info["items"] == {"indexed": 6, "failed": 1}
    assert info["failures"] == [{"id": "bad", "source": "/bad.jpg", "reason": "unreadable"}]
    assert service.get("/v1/info", params={"failures": 0}).json()["failures"] == []


def test_info_reports_the_index_measured_recall(client: Callable[..., TestClient]) -> None:  # noqa: F811
    index = client(_items()).get("/v1/info").json()["index"]
    assert index["factory"] == "Flat" and index["recall_at_10"] == 1.0 and index["target_met"]
    assert index["search_params"] == {"rerank": 0} and index["bytes_per_vector"] > 0

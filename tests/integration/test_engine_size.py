"""The engine's size (searchable items, on ``/readyz`` and ``/v1/info``) stays exact while it is kept between
calls: writes through the engine's own connection, commits by another process's connection, failures that drop
a vector and a switch of model that drops them all show at once."""

from __future__ import annotations

from typing import Any

import numpy as np

from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, EmbeddedItem, FailedItem
from catalens.search.engine import SearchEngine


def _embedded(item_id: str, dim: int) -> EmbeddedItem:
    return EmbeddedItem(ItemRecord(id=item_id, source=f"/{item_id}.png", origin="test"), "0" * 32, 8, 8, np.ones(dim))


def test_size_follows_every_change_of_the_store(vector_store: Any, tiny_model: Any) -> None:
    rng = np.random.default_rng(0)
    path = vector_store({f"sku-{i}": (rng.normal(size=tiny_model.dim), {}) for i in range(12)})
    with SearchEngine.open(path, encoder=tiny_model) as engine:
        assert engine.size == 12 and engine.size == 12
        # Another connection (as the indexer in another process) commits: the engine's count follows.
        with CatalogStore.open(path) as other:
            other.write_batch(embedded=[_embedded("new-1", tiny_model.dim), _embedded("new-2", tiny_model.dim)])
            assert engine.size == 14
            other.write_batch(failed=[(FailedItem("sku-3", "/3.png", "unreadable"), None)])
            assert engine.size == 13
            other.delete_items(["sku-4"])
            assert engine.size == 12
        # The engine's own connection writes.
        engine.store.write_batch(embedded=[_embedded("new-3", tiny_model.dim)])
        assert engine.size == 13
        engine.store.delete_items(["new-3", "sku-5"])
        assert engine.size == 11
        engine.store.reset_model(tiny_model.spec, tiny_model.dim)
        assert engine.size == 0

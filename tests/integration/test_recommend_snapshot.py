"""Recommendations read candidate vectors from the snapshot (index storage, delta) and whole rows for the page only.

Checked against brute force over the store's live items: items embedded after the index was built (the
delta), items deleted by another connection after the snapshot was taken (still in the index, gone from the
store), an HNSW index (vectors from its storage) and an IVF one (vectors from the store).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens import RecommendOptions
from catalens.indexer.pipeline import reindex
from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, EmbeddedItem
from catalens.search.engine import SearchEngine, SearchOptions
from tests.conftest import pattern_image, unit

BRANDS = [f"brand-{b}" for b in range(6)]


def embedded(dim: int, image: Path, first: int, count: int) -> list[EmbeddedItem]:
    rng = np.random.default_rng(first)
    axes = [unit(np.random.default_rng(100 + b).normal(size=dim)) for b in range(len(BRANDS))]
    out = []
    for n in range(first, first + count):
        b = n % len(BRANDS)
        vector = unit(axes[b] + 0.7 * unit(rng.normal(size=dim)))
        record = ItemRecord(id=f"item-{n}", source=str(image), origin="test", attributes={"brand": BRANDS[b]})
        out.append(EmbeddedItem(record, f"{n:032x}", 8, 8, vector))
    return out


@pytest.fixture(params=["Flat", "HNSW16", "IVF4,Flat"])
def engine(request: pytest.FixtureRequest, tiny_model: Any, tmp_path: Path) -> Iterator[SearchEngine]:
    image = tmp_path / "item.png"
    pattern_image(1).save(image)
    store = CatalogStore.create(tmp_path / "store", tiny_model.spec, tiny_model.dim, request.param)
    with store.writer_lock():
        store.write_batch(embedded=embedded(tiny_model.dim, image, 0, 120))
    store.close()
    reindex(tmp_path / "store", request.param)
    with CatalogStore.open(tmp_path / "store") as writer, writer.writer_lock():  # after the index: the delta
        writer.write_batch(embedded=embedded(tiny_model.dim, image, 120, 12))
    with SearchEngine.open(tmp_path / "store", encoder=tiny_model) as opened:
        yield opened


def live_vectors(engine: SearchEngine) -> dict[str, np.ndarray]:
    with CatalogStore.open(engine.store.path) as store:
        keys, vectors = store.vectors_for(range(1, 1000))
        items = store.get_items(keys.tolist())
    return {items[int(k)].id: v for k, v in zip(keys.tolist(), vectors, strict=True) if int(k) in items}


def brute_force(engine: SearchEngine, query: str, k: int, max_per: int | None = None) -> list[str]:
    vectors = live_vectors(engine)
    target = vectors[query]
    ranked = sorted((i for i in vectors if i != query), key=lambda i: -float(vectors[i] @ target))
    if max_per is None:
        return ranked[:k]
    counts: dict[str, int] = {}
    walked = []
    for item_id in ranked:
        brand = BRANDS[int(item_id.split("-")[1]) % len(BRANDS)]
        if counts.get(brand, 0) < max_per:
            walked.append(item_id)
            counts[brand] = counts.get(brand, 0) + 1
    return walked[:k]


def test_candidates_come_from_the_index_and_the_delta(engine: SearchEngine) -> None:
    for query in ("item-3", "item-125"):  # one indexed, one embedded after the index was built
        got = engine.recommend([query], options=SearchOptions(k=8)).hits
        assert [h.id for h in got] == brute_force(engine, query, 8)
        assert all(h.source and h.attributes["brand"] for h in got)  # whole rows for the page
        capped = engine.recommend([query], options=SearchOptions(k=8), recommend=RecommendOptions(max_per={"brand": 2}))
        assert [h.id for h in capped.hits] == brute_force(engine, query, 8, max_per=2)
        diverse = engine.recommend([query], options=SearchOptions(k=8), recommend=RecommendOptions(diversity=0.5))
        assert len(diverse.hits) == 8 and diverse.hits[0].id == brute_force(engine, query, 1)[0]


def test_items_deleted_after_the_snapshot_are_never_returned(engine: SearchEngine) -> None:
    query = "item-3"
    before = [h.id for h in engine.recommend([query], options=SearchOptions(k=6)).hits]
    gone = before[:3]
    with CatalogStore.open(engine.store.path) as writer, writer.writer_lock():  # another connection
        writer.delete_items(gone)
    for settings in (
        RecommendOptions(),
        RecommendOptions(diversity=0.3),
        RecommendOptions(max_per={"brand": 2}),
        RecommendOptions(strategy="best_score"),
    ):
        got = [h.id for h in engine.recommend([query], options=SearchOptions(k=6), recommend=settings).hits]
        assert len(got) == 6 and not set(got) & set(gone)
    plain = [h.id for h in engine.recommend([query], options=SearchOptions(k=6)).hits]
    assert plain == brute_force(engine, query, 6)

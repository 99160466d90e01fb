"""The query engine through its Python API, on stores whose vectors are known."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens.indexer.pipeline import reindex
from catalens.indexer.store import ItemFilter
from catalens.search.catalog_writer import CatalogWriter, NewItem
from catalens.search.engine import QueryPart, SearchEngine, SearchOptions
from catalens.search.errors import ItemNotFoundError, QueryError
from tests.conftest import pattern_image, unit

DIM = 32


def basis(*weights: tuple[int, float]) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    for axis, weight in weights:
        vector[axis] = weight
    return vector


def random_catalog(n: int, seed: int = 0, rare_every: int = 25) -> dict[str, tuple[Any, dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    return {
        f"sku-{i:04d}": (
            rng.normal(size=DIM),
            {
                "category": "rare" if i % rare_every == 0 else "common",
                "price": float(i % 50),
                "product_id": f"p-{i // 3}",
                "attributes": {"color": "red" if i % 2 else "blue"},
            },
        )
        for i in range(n)
    }


@pytest.fixture
def open_engine(tiny_model: Any) -> Any:
    engines: list[SearchEngine] = []

    def open_(path: Path, **kwargs: Any) -> SearchEngine:
        engine = SearchEngine.open(path, encoder=tiny_model)
        if kwargs:
            engine = SearchEngine(engine.store, tiny_model, **kwargs)
        engines.append(engine)
        return engine

    yield open_
    for engine in engines:
        engine.close()


def test_combined_query_moves_results_in_the_expected_direction(vector_store: Any, open_engine: Any) -> None:
    path = vector_store(
        {
            "plain-dress": (basis((0, 1.0)), {"title": "dress"}),
            "red-dress": (basis((0, 1.0), (1, 1.0)), {"title": "red dress"}),
            "leather-dress": (basis((0, 1.0), (2, 1.0)), {"title": "leather dress"}),
            "red-leather-dress": (basis((0, 1.0), (1, 1.0), (2, 1.0)), {"title": "red leather dress"}),
            "red-paint": (basis((1, 1.0)), {"title": "red paint"}),
        }
    )
    engine = open_engine(path)
    photo, red, leather = basis((0, 1.0)), basis((1, 1.0)), basis((2, 1.0))

    def ranking(*parts: QueryPart) -> list[str]:
        return [hit.id for hit in engine.search(list(parts), SearchOptions(k=5)).hits]

    assert ranking(QueryPart(vector=photo))[0] == "plain-dress"
    like_but_red = ranking(QueryPart(vector=photo), QueryPart(vector=red))
    assert like_but_red[0] == "red-dress"
    not_leather = ranking(QueryPart(vector=photo), QueryPart(vector=red), QueryPart(vector=leather, weight=-1))
    assert not_leather[0] == "red-dress" and not_leather[-1] == "leather-dress"
    heavier_red = ranking(QueryPart(vector=photo), QueryPart(vector=red, weight=3))
    assert heavier_red.index("red-paint") < like_but_red.index("red-paint")
    with pytest.raises(QueryError, match="cancel"):
        engine.search([QueryPart(vector=red), QueryPart(vector=red, weight=-1)])


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF4,Flat"])
@pytest.mark.parametrize("exact_limit", [0, 20_000])
def test_selective_filters_still_return_k(vector_store: Any, open_engine: Any, factory: str, exact_limit: int) -> None:
    engine = open_engine(vector_store(random_catalog(400), factory=factory), exact_filter_limit=exact_limit)
    query = unit(np.random.default_rng(9).normal(size=DIM))
    rare = engine.search_vector(query, SearchOptions(k=10, where=ItemFilter(categories=("rare",))))
    assert len(rare.hits) == 10 and {h.category for h in rare.hits} == {"rare"}
    narrow = ItemFilter(categories=("rare",), price_min=10, price_max=30, attributes=(("color", "blue"),))
    hits = engine.search_vector(query, SearchOptions(k=10, where=narrow)).hits
    expected = [i for i in range(400) if i % 25 == 0 and 10 <= i % 50 <= 30 and i % 2 == 0]
    assert sorted(h.id for h in hits) == sorted(f"sku-{i:04d}" for i in expected)[:10]
    assert all(h.attributes["color"] == "blue" and 10 <= (h.price or 0) <= 30 for h in hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_pagination_is_stable_and_complete(vector_store: Any, open_engine: Any) -> None:
    engine = open_engine(vector_store(random_catalog(120)))
    query = unit(np.ones(DIM))
    whole = [h.id for h in engine.search_vector(query, SearchOptions(k=30)).hits]
    pages = [
        h.id for offset in (0, 10, 20) for h in engine.search_vector(query, SearchOptions(k=10, offset=offset)).hits
    ]
    assert pages == whole and len(set(pages)) == 30
    assert engine.search_vector(query, SearchOptions(k=10, offset=115)).hits[-1].id == (
        engine.search_vector(query, SearchOptions(k=120)).hits[-1].id
    )


def test_min_score_collapse_and_similar(vector_store: Any, open_engine: Any) -> None:
    engine = open_engine(vector_store(random_catalog(60)))
    query = engine.item_vector("sku-0007")
    everything = engine.search_vector(query, SearchOptions(k=60)).hits
    threshold = everything[5].score
    assert [h.id for h in engine.search_vector(query, SearchOptions(k=60, min_score=threshold)).hits] == [
        h.id for h in everything if h.score >= threshold
    ]
    collapsed = engine.search_vector(query, SearchOptions(k=15, collapse_by_product=True)).hits
    assert len(collapsed) == 15 and len({h.product_id for h in collapsed}) == 15
    best_of_product = {}
    for hit in everything:
        best_of_product.setdefault(hit.product_id, hit.id)
    assert all(best_of_product[h.product_id] == h.id for h in collapsed)
    similar = engine.similar("sku-0007", SearchOptions(k=5)).hits
    assert "sku-0007" not in [h.id for h in similar] and len(similar) == 5
    assert [h.id for h in similar] == [h.id for h in everything[1:6]]
    with pytest.raises(ItemNotFoundError):
        engine.similar("nope")


def test_zero_shot_classification(vector_store: Any, open_engine: Any, tiny_model: Any) -> None:
    labels = ["shoe", "bag", "mug"]
    label_vectors = tiny_model.encode_texts([f"a photo of a {label}." for label in labels])
    # Items that are exactly a label's prompt embedding must be classified as that label.
    path = vector_store({label: (vector, {}) for label, vector in zip(labels, label_vectors, strict=True)})
    engine = open_engine(path)
    results = engine.classify_items(labels, labels, templates=["a photo of a {}."], top_k=3)
    for label, result in zip(labels, results, strict=True):
        assert result.predictions[0].label == label
        assert abs(sum(p.probability for p in result.predictions) - 1) < 1e-5
        assert [p.probability for p in result.predictions] == sorted(
            (p.probability for p in result.predictions), reverse=True
        )
    assert engine.label_vectors(labels) is engine.label_vectors(labels)  # cached per label set
    single = engine.classify_image(pattern_image(1), labels, top_k=1)
    assert single.id is None and len(single.predictions) == 1
    for bad in ([], ["a", "a"], ["a", " "]):
        with pytest.raises(QueryError):
            engine.classify_items(["shoe"], bad)
    with pytest.raises(QueryError, match="placeholder"):
        engine.classify_items(["shoe"], labels, templates=["no placeholder"])
    with pytest.raises(ItemNotFoundError):
        engine.classify_items(["nope"], labels)


def test_added_and_deleted_items_are_seen_at_once(vector_store: Any, open_engine: Any) -> None:
    path = vector_store(random_catalog(50))
    engine = open_engine(path)
    writer = CatalogWriter(engine)
    import io

    buffer = io.BytesIO()
    pattern_image(77).save(buffer, format="PNG")
    stored = writer.add(NewItem(id="fresh", title="Fresh", category="new"), data=buffer.getvalue())
    assert stored.status == "indexed" and stored.width == 96
    query = engine.item_vector("fresh")
    assert engine.search_vector(query, SearchOptions(k=1)).hits[0].id == "fresh"
    assert [
        h.id for h in engine.search_vector(query, SearchOptions(k=5, where=ItemFilter(categories=("new",)))).hits
    ] == ["fresh"]
    writer.delete("sku-0001")
    assert "sku-0001" not in [h.id for h in engine.search_vector(unit(np.ones(DIM)), SearchOptions(k=60)).hits]
    with pytest.raises(ItemNotFoundError):
        writer.delete("sku-0001")
    # A new generation that includes the changes replaces the delta without changing results.
    before = [h.id for h in engine.search_vector(query, SearchOptions(k=10)).hits]
    reindex(path)
    assert engine.refresh() and engine.generation == 2
    assert [h.id for h in engine.search_vector(query, SearchOptions(k=10)).hits] == before


def test_generation_swap_during_queries_fails_nothing(vector_store: Any, open_engine: Any) -> None:
    path = vector_store(random_catalog(300))
    engine = open_engine(path)
    errors: list[BaseException] = []
    answered = [0]
    stop = threading.Event()
    query = unit(np.ones(DIM))

    def ask() -> None:
        while not stop.is_set():
            try:
                hits = engine.search_vector(query, SearchOptions(k=10, where=ItemFilter(categories=("common",)))).hits
                assert len(hits) == 10
                answered[0] += 1
            except BaseException as e:  # noqa: BLE001 - any failure is what this test looks for
                errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for factory in ("HNSW16", "Flat", "IVF4,Flat", "Flat"):
            reindex(path, factory)
            assert engine.refresh()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors and answered[0] > 0 and engine.generation == 5


def test_text_and_image_queries_use_the_model(vector_store: Any, open_engine: Any, tiny_model: Any) -> None:
    image = pattern_image(3)
    path = vector_store(
        {
            "image-twin": (tiny_model.encode_images([image])[0], {}),
            "text-twin": (tiny_model.encode_texts(["a blue bag"])[0], {}),
            **{k: v for k, v in list(random_catalog(20).items())},
        }
    )
    engine = open_engine(path)
    # Vector mode: the words "blue" also match half the catalog's colour attributes, which hybrid would reward.
    assert engine.search_text("a blue bag", SearchOptions(k=1, mode="vector")).hits[0].id == "text-twin"
    assert engine.search([QueryPart(image=image)], SearchOptions(k=1)).hits[0].id == "image-twin"
    assert engine.search([QueryPart(item_id="image-twin")], SearchOptions(k=1)).hits[0].id == "image-twin"


def test_engine_refuses_a_model_other_than_the_stores(vector_store: Any, tiny_model: Any, other_tiny_spec: str) -> None:
    from catalens.models import load_model

    path = vector_store(random_catalog(5))
    with pytest.raises(QueryError, match="holds"):
        SearchEngine.open(path, encoder=load_model(other_tiny_spec))


def test_refresh_refuses_a_store_rebuilt_with_another_model(
    vector_store: Any, open_engine: Any, other_tiny_spec: str, make_catalog: Any
) -> None:
    from catalens.indexer.pipeline import IndexOptions, index_catalog

    path = vector_store(random_catalog(10))
    engine = open_engine(path)
    index_catalog(make_catalog(3), path, IndexOptions(model=other_tiny_spec, rebuild=True))
    with pytest.raises(QueryError, match="restart the service"):
        engine.refresh()
    # The engine keeps answering from the generation it holds instead of failing every query.
    assert engine.generation == 1
    assert engine.search_vector(unit(np.ones(DIM)), SearchOptions(k=3)).generation == 1


def test_a_backend_prefixed_factory_answers_like_the_bare_one(vector_store: Any, open_engine: Any) -> None:
    catalog = random_catalog(200)
    bare = open_engine(vector_store(catalog, factory="IVF4,Flat", name="bare"))
    prefixed = open_engine(vector_store(catalog, factory="faiss:IVF4,Flat", name="prefixed"))
    assert prefixed.store.manifest.index_factory == "faiss:IVF4,Flat"
    query = unit(np.random.default_rng(4).normal(size=DIM))
    for where in (ItemFilter(), ItemFilter(categories=("rare",))):
        options = SearchOptions(k=12, where=where)
        expected = [(h.id, h.score) for h in bare.search_vector(query, options).hits]
        assert [(h.id, h.score) for h in prefixed.search_vector(query, options).hits] == expected

"""Recommendations through the Python API, on one small catalog-like store with known vectors.

The store: 12 brands x 4 categories x 5 items, each vector a brand direction plus a category direction plus
noise, so an item's neighbours are mostly its brand (the caps have something to do); products pair items up;
three near-duplicate copies of one item are stored as a duplicate group; one item failed to index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from catalens import Example, Recommendation, RecommendOptions
from catalens.indexer.pipeline import reindex
from catalens.indexer.records import ItemRecord
from catalens.indexer.store import (
    CatalogStore,
    DuplicateGroup,
    DuplicateMember,
    DuplicateRun,
    EmbeddedItem,
    FailedItem,
    ItemFilter,
)
from catalens.search.engine import QueryPart, SearchEngine, SearchOptions
from catalens.search.errors import QueryError
from tests.conftest import pattern_image, unit

BRANDS = [f"brand-{b:02d}" for b in range(12)]
CATEGORIES = ["tops", "shoes", "bags", "hats"]
COPIES = ["b00-tops-0-copy1", "b00-tops-0-copy2", "b00-tops-0-copy3"]
FAILED = "broken-photo"
ALL_ITEMS = len(BRANDS) * len(CATEGORIES) * 5 + len(COPIES)


def catalog(dim: int) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    rng = np.random.default_rng(7)
    brand_axis = {b: unit(rng.normal(size=dim)) for b in BRANDS}
    category_axis = {c: unit(rng.normal(size=dim)) for c in CATEGORIES}
    items: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
    for b, brand in enumerate(BRANDS):
        for category in CATEGORIES:
            for n in range(5):
                vector = brand_axis[brand] + 0.6 * category_axis[category] + 0.5 * unit(rng.normal(size=dim))
                fields = {
                    "title": f"{brand} {category} number {n}",
                    "category": category,
                    "price": float(10 + n),
                    "product_id": f"{brand}-{category}-{n // 2}",
                    "attributes": {"brand": brand},
                }
                items[f"b{b:02d}-{category}-{n}"] = (unit(vector), fields)
    original, fields = items["b00-tops-0"]
    for copy in COPIES:
        items[copy] = (unit(original + 0.01 * rng.normal(size=dim)), {**fields, "product_id": None})
    return items


@pytest.fixture(scope="module")
def engine(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchEngine]:
    """One store for the whole module (built once: the suite's time is short)."""
    root = tmp_path_factory.mktemp("recommend")
    store = CatalogStore.create(root / "store", tiny_model.spec, tiny_model.dim, "Flat")
    image = root / "item.png"
    pattern_image(0).save(image)
    embedded = [
        EmbeddedItem(ItemRecord(id=item_id, source=str(image), origin="test", **fields), f"{n:032x}", 96, 64, vector)
        for n, (item_id, (vector, fields)) in enumerate(catalog(tiny_model.dim).items())
    ]
    failed = (FailedItem(FAILED, str(image), "truncated JPEG"), ItemRecord(id=FAILED, source=str(image), origin="test"))
    with store.writer_lock():
        store.write_batch(embedded=embedded, failed=[failed])
        by_id = store.get_items_by_id(["b00-tops-0", *COPIES])
        members = [DuplicateMember(by_id[i].key, i, 0.99, False) for i in ["b00-tops-0", *COPIES]]
        group = DuplicateGroup(min(m.key for m in members), members)
        store.duplicates.replace([group], DuplicateRun(0.95, tiny_model.spec, None, len(embedded), 1, "t0", "t1"))
    store.close()
    reindex(root / "store", "Flat")
    with SearchEngine.open(root / "store", encoder=tiny_model) as opened:
        yield opened


def ids(result: Recommendation) -> list[str]:
    return [h.id for h in result.hits]


def brand(item_id: str) -> str:
    return BRANDS[int(item_id[1:3])]


def intra_list_similarity(engine: SearchEngine, item_ids: list[str]) -> float:
    vectors = np.stack([engine.item_vector(i) for i in item_ids])
    sims = vectors @ vectors.T
    n = len(item_ids)
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


@pytest.mark.parametrize("strategy", ["average", "best_score"])
def test_inputs_are_never_returned(engine: SearchEngine, strategy: str) -> None:
    inputs = ["b01-tops-0", "b01-tops-1", "b01-shoes-2"]
    settings = RecommendOptions(strategy=strategy)  # type: ignore[arg-type]
    result = engine.recommend(inputs[:2], [inputs[2]], SearchOptions(k=100), settings)
    assert len(result.hits) == 100 and not set(inputs) & set(ids(result))
    kept = engine.recommend(
        ["b01-tops-0"], options=SearchOptions(k=3), recommend=RecommendOptions(exclude_inputs=False)
    )
    assert ids(kept)[0] == "b01-tops-0"


@pytest.mark.parametrize("strategy", ["average", "best_score"])
def test_a_negative_example_moves_its_look_alikes_down(engine: SearchEngine, strategy: str) -> None:
    settings = RecommendOptions(strategy=strategy)  # type: ignore[arg-type]
    options = SearchOptions(k=40)
    plain = ids(engine.recommend(["b02-tops-0"], options=options, recommend=settings))
    pushed = ids(engine.recommend(["b02-tops-0"], ["b02-shoes-0"], options, settings))

    def shoes_in(ranking: list[str], top: int) -> int:
        return sum(i.startswith("b02-shoes") for i in ranking[:top])

    assert shoes_in(plain, 15) >= 2
    assert shoes_in(pushed, 15) < shoes_in(plain, 15)
    assert sum(i.startswith("b02-tops") for i in pushed[:5]) >= 3  # still like the positive


def test_best_score_follows_the_qdrant_rule_and_works_with_negatives_only(engine: SearchEngine) -> None:
    every = [f"b{b:02d}-{c}-{n}" for b in range(12) for c in CATEGORIES for n in range(5)] + COPIES
    vectors = np.stack([engine.item_vector(i) for i in every])
    positives, negative = ["b03-tops-0", "b07-bags-1"], "b03-tops-4"
    weights = np.array([1.0, 0.5])  # divided by the largest weight (1.0): as given
    pos = (vectors @ np.stack([engine.item_vector(p) for p in positives]).T * weights).max(axis=1)
    neg = vectors @ engine.item_vector(negative)
    expected_scores = np.where(pos > neg, pos, -(neg**2))
    expected = [every[i] for i in np.argsort(-expected_scores, kind="stable") if every[i] not in (*positives, negative)]
    examples = [Example(item_id=positives[0]), Example(item_id=positives[1], weight=0.5)]
    result = engine.recommend(
        examples, [negative], SearchOptions(k=15), RecommendOptions(strategy="best_score", exclude_inputs=True)
    )
    assert ids(result) == expected[:15]
    by_id = dict(zip(every, expected_scores.tolist(), strict=True))
    assert all(abs(h.score - by_id[h.id]) < 1e-5 for h in result.hits)

    unlike = engine.recommend([], [negative], SearchOptions(k=10), RecommendOptions(strategy="best_score"))
    farthest = [every[i] for i in np.argsort(neg, kind="stable")][:10]
    assert ids(unlike) == farthest and all(
        abs(h.score + by_id_neg) < 1e-5 for h, by_id_neg in zip(unlike.hits, np.sort(neg)[:10].tolist(), strict=True)
    )
    average = engine.recommend([], [negative], SearchOptions(k=10))
    assert ids(average) == farthest


@pytest.mark.parametrize("strategy", ["average", "best_score"])
def test_weights_matter(engine: SearchEngine, strategy: str) -> None:
    settings = RecommendOptions(strategy=strategy)  # type: ignore[arg-type]

    def brand_05(weight: float) -> int:
        examples = [Example(item_id="b04-hats-0"), Example(item_id="b05-hats-0", weight=weight)]
        return sum(brand(i) == "brand-05" for i in ids(engine.recommend(examples, [], SearchOptions(k=12), settings)))

    assert brand_05(0.2) < brand_05(1.0) < brand_05(5.0)


def test_raw_vector_and_image_examples(engine: SearchEngine) -> None:
    like_item = engine.recommend([Example(vector=engine.item_vector("b06-bags-3") * 3)], options=SearchOptions(k=5))
    assert ids(like_item)[0] == "b06-bags-3"  # a raw vector is no input item: it is not excluded
    assert len(engine.recommend([Example(image=pattern_image(3))], options=SearchOptions(k=5)).hits) == 5


def test_unusable_example_ids_are_skipped_and_reported(engine: SearchEngine) -> None:
    result = engine.recommend(["nope", FAILED, "b08-tops-1"], ["also-nope"], SearchOptions(k=5))
    assert len(result.hits) == 5 and ids(result)[0].startswith("b08")
    assert [(s.item_id, s.reason) for s in result.skipped] == [
        ("nope", "not found"),
        (FAILED, "not indexed: truncated JPEG"),
        ("also-nope", "not found"),
    ]
    with pytest.raises(QueryError, match="'nope' \\(not found\\).*'broken-photo'"):
        engine.recommend(["nope"], [FAILED])


def settings_of(strategy: str, **kwargs: Any) -> RecommendOptions:
    return RecommendOptions(strategy=strategy, **kwargs)  # type: ignore[arg-type]


def pages(engine: SearchEngine, settings: RecommendOptions, k: int, count: int) -> tuple[Recommendation, list[Any]]:
    whole = engine.recommend(["b09-tops-0", "b10-shoes-1"], [], SearchOptions(k=k * count), settings)
    parts: list[Any] = []
    for page in range(count):
        result = engine.recommend(["b09-tops-0", "b10-shoes-1"], [], SearchOptions(k=k, offset=page * k), settings)
        parts.extend(result.groups if settings.group_by else result.hits)
    return whole, parts


@pytest.mark.parametrize("diversity", [0.0, 0.4])
@pytest.mark.parametrize("strategy", ["average", "best_score"])
def test_max_per_holds_on_every_page(engine: SearchEngine, strategy: str, diversity: float) -> None:
    settings = RecommendOptions(
        strategy=strategy,  # type: ignore[arg-type]
        diversity=diversity,
        candidates=60,
        max_per={"brand": 2, "category": 7},
    )
    whole, parts = pages(engine, settings, k=6, count=3)
    assert [h.id for h in parts] == ids(whole) and len(parts) == 18
    assert max(Counter(h.attributes["brand"] for h in parts).values()) == 2
    assert max(Counter(h.category for h in parts).values()) <= 7
    uncapped = engine.recommend(["b09-tops-0", "b10-shoes-1"], [], SearchOptions(k=ALL_ITEMS), settings_of(strategy))
    assert max(Counter(h.attributes["brand"] for h in uncapped.hits[:18]).values()) > 2
    if diversity == 0:  # the caps are a walk down the whole relevance list, however far it has to go
        walked: list[str] = []
        counts: Counter[tuple[str, str]] = Counter()
        for hit in uncapped.hits:
            values = [("brand", hit.attributes["brand"]), ("category", str(hit.category))]
            if counts[values[0]] < 2 and counts[values[1]] < 7:
                walked.append(hit.id)
                counts.update(values)
        assert [h.id for h in parts] == walked[:18]


def test_group_by_holds_on_every_page(engine: SearchEngine) -> None:
    settings = RecommendOptions(group_by="category", group_size=2, max_per={"brand": 1})
    whole, parts = pages(engine, settings, k=1, count=4)
    assert whole.hits == [] and whole.groups is not None
    assert [(g.value, [h.id for h in g.hits]) for g in parts] == [
        (g.value, [h.id for h in g.hits]) for g in whole.groups
    ]
    assert sorted(g.value for g in parts) == sorted(CATEGORIES)
    for g in parts:
        assert len(g.hits) == 2 and {h.category for h in g.hits} == {g.value}
    every_hit = [h for g in parts for h in g.hits]
    assert len({h.attributes["brand"] for h in every_hit}) == len(every_hit)  # max_per applies across groups
    look = engine.recommend(
        ["b11-tops-2"],
        options=SearchOptions(k=5, where=ItemFilter(categories=("shoes", "bags"))),
        recommend=RecommendOptions(group_by="category", group_size=3),
    )
    assert look.groups is not None and sorted(g.value for g in look.groups) == ["bags", "shoes"]
    assert all(h.attributes["brand"] == "brand-11" for g in look.groups for h in g.hits)


def test_mmr_lowers_intra_list_similarity(engine: SearchEngine) -> None:
    options = SearchOptions(k=10)
    relevance = engine.recommend(["b05-bags-2"], options=options, recommend=RecommendOptions(diversity=0.0))
    by_vector = replace(options, mode="vector")  # recommend ranks by vectors; similar's default adds words
    assert ids(relevance) == [h.id for h in engine.similar("b05-bags-2", by_vector).hits]
    similarity = [intra_list_similarity(engine, ids(relevance))]
    for diversity in (0.3, 0.7):
        diverse = engine.recommend(["b05-bags-2"], options=options, recommend=RecommendOptions(diversity=diversity))
        assert len(diverse.hits) == 10 and ids(diverse)[0] == ids(relevance)[0]
        similarity.append(intra_list_similarity(engine, ids(diverse)))
    assert similarity[0] > similarity[1] > similarity[2]


def test_dedupe_hides_near_duplicate_copies(engine: SearchEngine) -> None:
    group = {"b00-tops-0", *COPIES}
    query = engine.item_vector("b00-tops-0")
    plain = engine.search_vector(query, SearchOptions(k=10)).hits
    assert {h.id for h in plain[:4]} == group
    deduped = engine.search_vector(query, SearchOptions(k=10, dedupe=True)).hits
    assert len(deduped) == 10 and deduped[0].id in group and not group & {h.id for h in deduped[1:]}
    for mode in ("lexical", "hybrid"):
        words = engine.search([QueryPart(text="brand-00 tops number 0")], SearchOptions(k=8, mode=mode, dedupe=True))  # type: ignore[arg-type]
        assert len(group & {h.id for h in words.hits}) == 1
    for mode in ("vector", "hybrid", "lexical"):  # similar: no copy of the item itself, by picture or by words
        similar = engine.similar("b00-tops-0", SearchOptions(k=10, dedupe=True, mode=mode)).hits  # type: ignore[arg-type]
        assert len(similar) == 10 and not group & {h.id for h in similar}, mode
        assert group & {h.id for h in engine.similar("b00-tops-0", SearchOptions(k=10, mode=mode)).hits}  # type: ignore[arg-type]
    for strategy in ("average", "best_score"):
        settings = RecommendOptions(strategy=strategy)  # type: ignore[arg-type]
        copies = engine.recommend(["b00-tops-0"], options=SearchOptions(k=10), recommend=settings)
        assert set(COPIES) <= set(ids(copies))
        clean = engine.recommend(["b00-tops-0"], options=SearchOptions(k=10, dedupe=True), recommend=settings)
        assert len(clean.hits) == 10 and not group & set(ids(clean))
        kept = RecommendOptions(strategy=strategy, exclude_inputs=False)  # type: ignore[arg-type]
        one = engine.recommend(["b00-tops-0"], options=SearchOptions(k=10, dedupe=True), recommend=kept)
        assert ids(one)[0] == "b00-tops-0" and not set(COPIES) & set(ids(one))


@pytest.mark.parametrize("strategy", ["average", "best_score"])
def test_filters_collapse_min_score_and_exclusions(engine: SearchEngine, strategy: str) -> None:
    settings = RecommendOptions(strategy=strategy, diversity=0.2)  # type: ignore[arg-type]
    positive = ["b06-tops-1", "b06-hats-3"]
    shoes = engine.recommend(positive, [], SearchOptions(k=10, where=ItemFilter(categories=("shoes",))), settings)
    assert len(shoes.hits) == 10 and {h.category for h in shoes.hits} == {"shoes"}
    collapsed = engine.recommend(positive, [], SearchOptions(k=20, collapse_by_product=True), settings)
    assert len(collapsed.hits) == 20 and len({h.product_id for h in collapsed.hits}) == 20
    everything = engine.recommend(positive, [], SearchOptions(k=40), RecommendOptions(strategy=strategy))  # type: ignore[arg-type]
    threshold = everything.hits[7].score
    cut = engine.recommend(positive, [], SearchOptions(k=40, min_score=threshold), settings)
    assert cut.hits and all(h.score >= threshold for h in cut.hits)
    assert {h.id for h in cut.hits} == {h.id for h in everything.hits if h.score >= threshold}
    excluded = [h.id for h in everything.hits[:3]]
    rest = engine.recommend(positive, [], SearchOptions(k=10, exclude_ids=tuple(excluded)), settings)
    assert not set(excluded) & set(ids(rest))
    explained = engine.recommend(positive, [], SearchOptions(k=3, explain=True), settings)
    assert all(h.explanation is not None and h.explanation.vector_score == h.score for h in explained.hits)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RecommendOptions(diversity=1.5), "diversity"),
        (lambda: RecommendOptions(diversity=float("nan")), "diversity"),
        (lambda: RecommendOptions(candidates=0), "candidates"),
        (lambda: RecommendOptions(candidates=10_001), "candidates"),
        (lambda: RecommendOptions(max_per={"brand": 0}), "max_per"),
        (lambda: RecommendOptions(max_per={"": 2}), "max_per"),
        (lambda: RecommendOptions(group_size=0), "group_size"),
        (lambda: RecommendOptions(group_by=" "), "group_by"),
        (lambda: RecommendOptions(strategy="nearest"), "strategy"),  # type: ignore[arg-type]
        (lambda: Example(item_id="x", weight=0), "weight"),
        (lambda: Example(item_id="x", weight=-1), "weight"),
        (lambda: Example(item_id="x", weight=float("inf")), "weight"),
        (lambda: Example(), "exactly one"),
        (lambda: Example(item_id="x", vector=np.ones(3)), "exactly one"),
    ],
)
def test_bad_options_raise_query_errors(make: Any, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        make()


def test_bad_queries_raise_query_errors(engine: SearchEngine) -> None:
    with pytest.raises(QueryError, match="at least one"):
        engine.recommend([])
    with pytest.raises(QueryError, match="dimensions"):
        engine.recommend([Example(vector=np.ones(3))])
    with pytest.raises(QueryError, match="cancel"):
        vector = engine.item_vector("b01-tops-0")
        engine.recommend([Example(vector=vector), Example(vector=-vector)])
    with pytest.raises(QueryError, match="k must be"):
        engine.recommend(["b01-tops-0"], options=SearchOptions(k=0))

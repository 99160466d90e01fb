"""The bounded lexical leg: queries with words matching more than ``COMMON_ROWS`` rows rank a bounded set.

The catalog here is built so that "black" and "shoe" are common (each matches over 500 of its 1,500 rows,
under half, so their IDF stays positive, as FTS5 floors it for words in more than half the rows), while
"kestrel" matches three items: what a shop query such as "kestrel black shoes" meets at scale. The
expected orders follow from BM25's definition (a rarer word weighs more; more matched words rank higher),
and with no common word the ranking must be FTS5's exhaustive BM25 ranking, score for score.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens.indexer.lexical import FIELDS, match_expression
from catalens.indexer.pipeline import reindex
from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, EmbeddedItem, Enrichment, ItemFilter, vector_caption_spec
from catalens.indexer.store.fulltext import COMMON_ROWS, exhaustive_search, lexical_search
from catalens.search.engine import SearchEngine, SearchOptions

N = 1500
KESTRELS = {"sku-0100": "kestrel black shoe", "sku-0101": "kestrel red boot", "sku-0102": "kestrel black boot"}


def title(i: int) -> str:
    """600 black, 600 blue and 300 red items; 562 shoes and 938 boots (the kestrels aside)."""
    item_id = f"sku-{i:04d}"
    if item_id in KESTRELS:
        return KESTRELS[item_id]
    colour = {1: "black", 2: "black", 3: "red"}.get(i % 5, "blue")
    kind = "shoe" if i % 8 in (1, 2, 3) else "boot"
    return f"{colour} {kind} model {i}"


@pytest.fixture(scope="module")
def built_store(tmp_path_factory: pytest.TempPathFactory, tiny_model: Any) -> Path:
    """The catalog, written straight into a store (no images are needed to search it)."""
    root = tmp_path_factory.mktemp("bounded") / "store"
    rng = np.random.default_rng(5)
    store = CatalogStore.create(root, tiny_model.spec, tiny_model.dim, "Flat")
    items = []
    for i in range(N):
        vector = rng.standard_normal(tiny_model.dim).astype(np.float32)
        record = ItemRecord(
            id=f"sku-{i:04d}",
            source=f"/nowhere/{i}.jpg",
            origin="test",
            title=title(i),
            category="even" if i % 2 == 0 else "odd",
            attributes={"lot": str(i % 10)},
        )
        items.append(EmbeddedItem(record, f"{i:032x}", 96, 64, vector / np.linalg.norm(vector)))
    with store.writer_lock():
        store.write_batch(embedded=items)
    store.close()
    reindex(root)
    return root


@pytest.fixture
def common_store(built_store: Path, tmp_path: Path) -> Path:
    """A copy of the built store for one test (some tests write to it)."""
    copy = tmp_path / "store"
    shutil.copytree(built_store, copy)
    return copy


def words_of(item_title: str) -> set[str]:
    return {w.removesuffix("s") for w in item_title.split()}


def test_the_catalog_really_has_common_words(common_store: Path) -> None:
    for word in ("black", "shoe"):
        assert COMMON_ROWS < sum(word in title(i) for i in range(N)) < N / 2
    assert sum("red" in title(i) for i in range(N)) < COMMON_ROWS


def test_rare_word_matches_come_first_then_rows_matching_more_common_words(common_store: Path, tiny_model: Any) -> None:
    with SearchEngine.open(common_store, encoder=tiny_model) as engine:
        hits = engine.search_text("kestrel black shoes", SearchOptions(k=30, mode="lexical")).hits
    ids = [h.id for h in hits]
    assert len(ids) == 30 and len(set(ids)) == 30
    # The three kestrels first, the one matching every word first of all.
    assert ids[0] == "sku-0100" and set(ids[:3]) == set(KESTRELS)
    # Then rows matching both common words, before any row matching only one of them.
    rest = [words_of(h.title or "") for h in hits[3:]]
    both = [{"black", "shoe"} <= words for words in rest]
    assert all(both)  # 225 rows match both: they fill the list
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_only_common_words_still_rank_rows_matching_all_of_them_first(common_store: Path, tiny_model: Any) -> None:
    with SearchEngine.open(common_store, encoder=tiny_model) as engine:
        hits = engine.search_text("black shoe", SearchOptions(k=600, mode="lexical")).hits
    matched = [words_of(h.title or "") for h in hits]
    both = sum(1 for i in range(N) if {"black", "shoe"} <= words_of(title(i)))
    assert 100 < both < 400 and len(hits) == 600
    assert all({"black", "shoe"} <= m for m in matched[:both])
    assert all(len({"black", "shoe"} & m) == 1 for m in matched[both:])  # then rows with one of the words
    # "shoe" (562 rows) is rarer than "black" (600): rows with only "shoe" come before rows with only "black".
    tail = ["shoe" in m for m in matched[both:]]
    assert tail == sorted(tail, reverse=True) and any(tail) and not all(tail)


def test_filters_and_exclusions_apply_to_the_bounded_list(common_store: Path, tiny_model: Any) -> None:
    with SearchEngine.open(common_store, encoder=tiny_model) as engine:
        options = SearchOptions(k=20, mode="lexical", where=ItemFilter(categories=("odd",)))
        hits = engine.search_text("kestrel black shoes", options).hits
        assert hits[0].id == "sku-0101"  # the only odd kestrel, though it matches neither common word
        assert all(h.category == "odd" for h in hits) and len(hits) == 20
        lot = SearchOptions(k=20, mode="lexical", where=ItemFilter(attributes=(("lot", "3"),)))
        assert all(int(h.id[4:]) % 10 == 3 for h in engine.search_text("black shoe", lot).hits)
        excluded = SearchOptions(k=5, mode="lexical", exclude_ids=("sku-0100",))
        ids = [h.id for h in engine.search_text("kestrel black shoes", excluded).hits]
        assert "sku-0100" not in ids and len(ids) == 5 and set(ids[:2]) == {"sku-0101", "sku-0102"}


def test_hybrid_explanations_still_show_the_matched_fields(common_store: Path, tiny_model: Any) -> None:
    with SearchEngine.open(common_store, encoder=tiny_model) as engine:
        hits = engine.search_text("kestrel black shoes", SearchOptions(k=10, explain=True)).hits
    kestrel = next(h for h in hits if h.id == "sku-0100")
    assert kestrel.explanation is not None and kestrel.explanation.lexical_rank == 1
    assert "title" in kestrel.explanation.matched_fields


@pytest.mark.parametrize("text", ["kestrel", "kestrel red", "1499", "red kestrel 5"])
def test_without_common_words_the_ranking_is_exhaustive_bm25(common_store: Path, text: str) -> None:
    match = match_expression(text)
    assert match is not None
    with CatalogStore.open(common_store) as store:
        bounded = store.lexical_search(match, ItemFilter(), 50)
    db = sqlite3.connect(common_store / "catalog.sqlite3")
    try:
        exhaustive = exhaustive_search(db, match, ItemFilter(), 50)
        assert lexical_search(db, match, ItemFilter(), 50) == exhaustive
    finally:
        db.close()
    assert bounded == exhaustive and bounded


def test_common_word_counts_follow_deletes(common_store: Path, tiny_model: Any) -> None:
    """After most "black" rows are deleted the word is no longer common and ranks exhaustively again."""
    with SearchEngine.open(common_store, encoder=tiny_model) as engine:
        before = [h.id for h in engine.search_text("black", SearchOptions(k=10, mode="lexical")).hits]
        assert len(before) == 10
        with engine.store.writer_lock():
            engine.store.delete_items([f"sku-{i:04d}" for i in range(N) if i >= 200])
        engine.apply_changes()
        after = engine.search_text("black", SearchOptions(k=200, mode="lexical")).hits
    expected = sum("black" in title(i) for i in range(200))
    assert len(after) == expected and all(int(h.id[4:]) < 200 for h in after)


def test_a_long_query_of_common_words_still_fills_the_list(common_store: Path, tiny_model: Any) -> None:
    """Five common words have 31 combinations, more than are read; the rest of the list still fills up."""
    with SearchEngine.open(common_store, encoder=tiny_model) as engine:
        hits = engine.search_text("black blue shoe boot model", SearchOptions(k=200, mode="lexical")).hits
    assert len({h.id for h in hits}) == 200
    assert all(words_of(h.title or "") & {"black", "blue", "shoe", "boot", "model"} for h in hits)


@pytest.mark.parametrize("text", ["kestrel black shoes", "black shoe", "kestrel", "red kestrel 5", "model"])
def test_matching_some_columns_leaves_the_others_out_on_either_path(
    built_store: Path, common_store: Path, text: str
) -> None:
    """Captions "kestrel black shoe" on 900 rows make "kestrel" common in every column but rare in the others.
    Matched without the caption column, a query finds exactly the rows the store without captions finds, the
    title kestrels first. (Scores differ a little: FTS5's BM25 normalises by a row's length over all columns.)"""
    match = match_expression(text)
    assert match is not None
    columns = [f for f in FIELDS if f != "caption"]
    with CatalogStore.open(built_store) as plain:
        expected = plain.lexical_search(match, ItemFilter(), N)
    with CatalogStore.open(common_store) as store:
        spec = vector_caption_spec("attributes", store.manifest.model_key)
        items = [store.get_item(f"sku-{i:04d}") for i in range(200, 1100)]
        with store.writer_lock():
            store.write_enrichments(
                (item.key, Enrichment("caption", spec, item.content_hash, "kestrel black shoe", {}))
                for item in items
                if item is not None
            )
        with_captions = store.lexical_search(match, ItemFilter(), N)
        without = store.lexical_search(match, ItemFilter(), N, columns=columns)
        top = store.lexical_search(match, ItemFilter(), 3, columns=columns)
        kestrels = {item.key for item in map(store.get_item, KESTRELS) if item is not None}
    assert {m.key for m in without} == {m.key for m in expected} and expected
    assert {m.key for m in top} == {m.key for m in expected[:3]}
    if "kestrel" in text:
        assert {m.key for m in top} == kestrels  # the title kestrels first, as without captions
    if text != "model":
        assert {m.key for m in with_captions} != {m.key for m in expected}  # the captions do change the matches


def test_an_unknown_column_is_refused(common_store: Path) -> None:
    with CatalogStore.open(common_store) as store, pytest.raises(ValueError, match="full-text columns"):
        store.lexical_search('"kestrel"', ItemFilter(), 5, columns=["price"])

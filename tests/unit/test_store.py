"""The catalog store on its own: rows written and deleted, the full-text rows beside them, schema upgrades,
index generations, and the catalog fields every item type shares.

No model and no images: vectors are given directly (dimension 4) and every effect is checked in the SQLite
file itself, the way a second process would see it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
import pytest

from catalens.indexer.errors import StoreCorruptError, StoreNotFoundError, StoreVersionError
from catalens.indexer.lexical import FIELDS, match_expression
from catalens.indexer.records import CATALOG_FIELDS, CatalogFields, ItemRecord, catalog_fields_of
from catalens.indexer.store import (
    DB_NAME,
    KEEP_GENERATIONS,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    CatalogStore,
    EmbeddedItem,
    Enrichment,
    FailedItem,
    ItemFilter,
    ItemState,
    StoredItem,
)
from catalens.indexer.store.sql import in_chunks

DIM = 4
MODEL = "test-model"


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def record(item_id: str, **catalog: Any) -> ItemRecord:
    return ItemRecord(id=item_id, source=f"/images/{item_id}.jpg", origin="shop", stat="1:1", **catalog)


def embedded(item_id: str, seed: int = 0, content_hash: str | None = None, **catalog: Any) -> EmbeddedItem:
    return EmbeddedItem(record(item_id, **catalog), content_hash or f"hash-{item_id}", 40, 30, vector(seed))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    with CatalogStore.create(tmp_path / "store", MODEL, DIM) as opened:
        yield opened


def sql(store: CatalogStore, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows as another connection sees them (only committed data)."""
    db = sqlite3.connect(store.path / DB_NAME)
    try:
        return [tuple(row) for row in db.execute(query, params).fetchall()]
    finally:
        db.close()


def fts_rows(store: CatalogStore) -> dict[int, dict[str, str]]:
    return {row[0]: dict(zip(FIELDS, row[1:], strict=True)) for row in sql(store, "SELECT rowid, * FROM items_fts")}


def key_of(store: CatalogStore, item_id: str) -> int:
    item = store.get_item(item_id)
    assert item is not None
    return item.key


# -- creating and opening --------------------------------------------------------------------------------


def test_a_new_store_has_a_manifest_and_the_current_schema(tmp_path: Path) -> None:
    with CatalogStore.create(tmp_path / "s", MODEL, DIM, "HNSW32") as store:
        assert CatalogStore.exists(store.path)
    manifest = json.loads((tmp_path / "s" / MANIFEST_NAME).read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["model"] == MODEL
    assert manifest["dim"] == DIM and manifest["index_factory"] == "HNSW32" and manifest["index"] is None
    assert sql(store, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert sql(store, "PRAGMA journal_mode") == [("wal",)]
    with CatalogStore.open(tmp_path / "s") as reopened:
        assert reopened.manifest == store.manifest


def test_opening_refuses_what_is_not_a_current_store(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError):
        CatalogStore.open(tmp_path / "nothing")

    with CatalogStore.create(tmp_path / "future", MODEL, DIM):
        pass
    manifest_path = tmp_path / "future" / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(StoreVersionError):
        CatalogStore.open(tmp_path / "future")

    manifest_path.write_text("{not json")
    with pytest.raises(StoreCorruptError, match=MANIFEST_NAME):
        CatalogStore.open(tmp_path / "future")

    with CatalogStore.create(tmp_path / "broken", MODEL, DIM):
        pass
    (tmp_path / "broken" / DB_NAME).write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / "broken" / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreCorruptError, match=DB_NAME):
        CatalogStore.open(tmp_path / "broken")


def test_a_database_from_a_newer_catalens_is_refused(tmp_path: Path) -> None:
    with CatalogStore.create(tmp_path / "s", MODEL, DIM) as store:
        pass
    db = sqlite3.connect(store.path / DB_NAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreVersionError):
        CatalogStore.open(tmp_path / "s")


# -- writes ----------------------------------------------------------------------------------------------


def test_written_items_read_back_with_their_catalog_fields_and_vectors(store: CatalogStore) -> None:
    attributes = {"colour": "red", "sizes": [38, 39]}
    store.write_batch(
        embedded=[embedded("a", 1, title="Red shoe", price=12.5, category="shoes", attributes=attributes)]
    )
    item = store.get_item("a")
    assert item is not None
    assert (item.title, item.price, item.category, item.attributes) == ("Red shoe", 12.5, "shoes", attributes)
    assert (item.status, item.error, item.width, item.height) == ("indexed", None, 40, 30)
    assert (item.source, item.origin, item.content_hash) == ("/images/a.jpg", "shop", "hash-a")
    expected = CatalogFields(title="Red shoe", category="shoes", price=12.5, attributes=attributes)
    assert catalog_fields_of(item) == expected
    keys, vectors = store.vectors_for([item.key])
    assert keys.tolist() == [item.key]
    np.testing.assert_array_equal(vectors[0], vector(1))
    assert sql(store, "SELECT attributes FROM items") == [('{"colour":"red","sizes":[38,39]}',)]


def test_rewriting_an_item_keeps_its_key_and_each_batch_advances_the_sequence(store: CatalogStore) -> None:
    store.write_batch(embedded=[embedded("a", 1), embedded("b", 2)])
    first_key, seq = key_of(store, "a"), store.current_seq()
    store.write_batch(embedded=[embedded("a", 3, content_hash="hash-a2", title="New")])
    assert key_of(store, "a") == first_key and store.current_seq() == seq + 1
    keys, vectors, removed = store.changes_since(seq)
    assert keys.tolist() == [first_key] and removed.tolist() == []
    np.testing.assert_array_equal(vectors[0], vector(3))
    assert store.vector_count() == 2 and store.status_counts() == {"indexed": 2, "failed": 0}


def test_a_failure_drops_the_vector_and_logs_the_removal(store: CatalogStore) -> None:
    store.write_batch(embedded=[embedded("a", 1, title="Kestrel boot")])
    key, seq = key_of(store, "a"), store.current_seq()
    store.write_batch(failed=[(FailedItem("a", "/images/a.jpg", "cannot decode"), record("a"))])
    item = store.get_item("a")
    assert item is not None and (item.status, item.error, item.key) == ("failed", "cannot decode", key)
    assert store.vector_count() == 0 and store.changes_since(seq)[2].tolist() == [key]
    assert store.failures() == [FailedItem("a", "/images/a.jpg", "cannot decode")]
    assert fts_rows(store) == {}  # only indexed items are searchable by words

    # A failure the source could not describe is still stored, with an empty origin.
    store.write_batch(failed=[(FailedItem("ghost", "/x.jpg", "no such file"), None)])
    ghost = store.get_item("ghost")
    assert ghost is not None and ghost.origin == "" and ghost.status == "failed"


def test_touched_items_change_metadata_and_words_but_not_vectors(store: CatalogStore) -> None:
    store.write_batch(embedded=[embedded("a", 1, title="Plain mug")])
    key, seq = key_of(store, "a"), store.current_seq()
    store.write_batch(touched=[record("a", title="Kestrel mug", attributes={"brand": "Kestrel"})])
    item = store.get_item("a")
    assert item is not None and item.title == "Kestrel mug" and item.attributes == {"brand": "Kestrel"}
    assert fts_rows(store)[key]["title"] == "Kestrel mug" and fts_rows(store)[key]["attributes"] == "brand Kestrel"
    keys, _, removed = store.changes_since(seq)
    assert keys.tolist() == [] and removed.tolist() == []  # the vector did not change
    store.write_batch(touched=[record("unknown")])  # a touched id the store lacks is ignored
    assert store.get_item("unknown") is None


def test_a_batch_that_fails_half_way_writes_nothing(store: CatalogStore) -> None:
    store.write_batch(embedded=[embedded("a", 1, title="Kestrel boot")])
    before = (sql(store, "SELECT * FROM items"), fts_rows(store), store.current_seq())

    def items_then_error() -> Iterator[EmbeddedItem]:
        yield embedded("b", 2, title="Marigold dress")
        yield embedded("a", 3, content_hash="hash-a2", title="Changed")
        raise RuntimeError("the encoder died")

    with pytest.raises(RuntimeError, match="encoder died"):
        store.write_batch(embedded=items_then_error())
    assert (sql(store, "SELECT * FROM items"), fts_rows(store), store.current_seq()) == before


def test_deleting_removes_rows_vectors_enrichments_and_words(store: CatalogStore) -> None:
    store.write_batch(embedded=[embedded(f"i{n}", n, title=f"Kestrel {n}") for n in range(3)])
    key = key_of(store, "i1")
    store.write_enrichments([(key, Enrichment("caption", "cap", "hash-i1", "a red boot", {}))])
    seq = store.current_seq()
    assert store.delete_items(["i1", "missing"]) == 1
    assert store.get_item("i1") is None and store.vector_count() == 2
    assert sql(store, "SELECT COUNT(*) FROM enrichments") == [(0,)]
    assert key not in fts_rows(store) and len(fts_rows(store)) == 2
    assert store.changes_since(seq)[2].tolist() == [key]
    assert store.delete_items([]) == 0


def test_lookups_and_deletes_of_more_ids_than_one_sql_list_holds(store: CatalogStore) -> None:
    ids = [f"sku-{n:04d}" for n in range(1203)]
    store.write_batch(embedded=[embedded(item_id, n) for n, item_id in enumerate(ids)])
    by_id = store.get_items_by_id([*ids, "missing", ids[0]])
    assert sorted(by_id) == ids
    by_key = store.get_items([item.key for item in by_id.values()])
    assert len(by_key) == 1203 and all(by_key[item.key] == item for item in by_id.values())
    assert len(store.vectors_for(by_key)[0]) == 1203
    assert store.delete_items(ids[:1001]) == 1001 and store.status_counts()["indexed"] == 202
    assert len(fts_rows(store)) == 202


def test_in_chunks_splits_a_list_with_its_placeholders() -> None:
    chunks = list(in_chunks(range(7), size=3))
    assert chunks == [("?,?,?", [0, 1, 2]), ("?,?,?", [3, 4, 5]), ("?", [6])]
    assert list(in_chunks([])) == []


# -- the full-text rows ---------------------------------------------------------------------------------


def test_full_text_rows_hold_fields_captions_and_ocr_text(store: CatalogStore) -> None:
    store.write_batch(
        embedded=[embedded("a", 1, title="Trail shoe", description="Light", attributes={"brand": "Kestrel"})]
    )
    key = key_of(store, "a")
    assert fts_rows(store) == {
        key: {"title": "Trail shoe", "description": "Light", "caption": "", "ocr": "", "attributes": "brand Kestrel"}
    }
    stored = store.write_enrichments(
        [
            (key, Enrichment("caption", "cap", "hash-a", "a red shoe", {"tags": {"colour": "red"}})),
            (key, Enrichment("ocr", "ocr", "hash-a", "KESTREL", {"words": []})),
            (key, Enrichment("ocr", "ocr", "another-image", "stale", {})),  # the image changed since: dropped
        ]
    )
    assert stored == 2
    assert fts_rows(store)[key]["caption"] == "a red shoe" and fts_rows(store)[key]["ocr"] == "KESTREL"
    assert store.enrichments_for([key])[key]["caption"].data == {"tags": {"colour": "red"}}

    # A new image makes the old caption and OCR text describe pixels that are gone.
    store.write_batch(embedded=[embedded("a", 2, content_hash="hash-a2", title="Trail shoe")])
    assert store.enrichments_for([key]) == {}
    assert fts_rows(store)[key]["caption"] == "" and fts_rows(store)[key]["ocr"] == ""


def test_lexical_search_ranks_and_filters_over_the_full_text_rows(store: CatalogStore) -> None:
    store.write_batch(
        embedded=[
            embedded("boot", 1, title="Kestrel boot", category="shoes", price=90.0),
            embedded("jacket", 2, title="Rain jacket", description="by Kestrel", category="coats", price=120.0),
            embedded("mug", 3, title="Plain mug", category="home"),
        ]
    )
    match = match_expression("kestrel")
    assert match is not None
    found = store.lexical_search(match, ItemFilter(), 10)
    assert [m.key for m in found] == [key_of(store, "boot"), key_of(store, "jacket")]  # a title word counts more
    assert found[0].score > found[1].score > 0
    coats = store.lexical_search(match, ItemFilter(categories=("coats",)), 10)
    assert [m.key for m in coats] == [key_of(store, "jacket")]
    snippets = store.lexical_snippets(match, [key_of(store, "jacket")])
    assert list(snippets[key_of(store, "jacket")]) == ["description"]


def test_filters_and_facets(store: CatalogStore) -> None:
    store.write_batch(
        embedded=[
            embedded("a", 1, category="shoes", price=10.0, attributes={"colour": "red"}),
            embedded("b", 2, category="shoes", price=30.0, attributes={"colour": "blue", "size": 40}),
            embedded("c", 3, category="bags"),
        ],
        failed=[(FailedItem("d", "/d.jpg", "bad"), record("d", category="shoes"))],
    )
    keys = {item_id: key_of(store, item_id) for item_id in "abc"}
    assert store.matching_keys(ItemFilter()).tolist() == sorted(keys.values())
    assert store.matching_keys(ItemFilter(categories=("shoes",), price_max=20)).tolist() == [keys["a"]]
    assert store.matching_keys(ItemFilter(attributes=(("size", "40"),))).tolist() == [keys["b"]]
    assert store.facet_counts("category") == [("shoes", 2), ("bags", 1)]
    assert store.facet_counts("colour") == [("blue", 1), ("red", 1)]
    assert store.attribute_names() == [("colour", 2), ("size", 1)]
    assert store.price_range() == (10.0, 30.0)


# -- the skip decision ----------------------------------------------------------------------------------


def test_item_states_name_the_stored_metadata(store: CatalogStore) -> None:
    original = record("a", title="Mug", price=4.0, attributes={"b": 1, "a": "x"})
    store.write_batch(embedded=[EmbeddedItem(original, "hash-a", 1, 1, vector(1))])
    state = store.item_states("shop")["a"]
    assert isinstance(state, ItemState) and state.has_vector and state.status == "indexed"
    assert state.source == original.source and len(state.metadata) == 16  # a digest of the stored columns
    assert state.same_metadata(record("a", title="Mug", price=4, attributes={"b": 1, "a": "x"}))  # 4 is 4.0
    assert state.same_metadata(record("a", title="Mug", price=4.0, attributes={"a": "x", "b": 1}))
    assert not state.same_metadata(record("a", title="Mug", price=5.0, attributes={"a": "x", "b": 1}))
    assert not state.same_metadata(record("a", title="Mug", price=4.0, attributes={"a": "x", "b": True}))
    moved = ItemRecord(
        id="a", source="https://cdn/a.jpg", origin="shop", title="Mug", price=4.0, attributes=original.attributes
    )
    assert not state.same_metadata(moved)
    assert store.item_states("elsewhere") == {}


# -- schema upgrades ------------------------------------------------------------------------------------


def test_a_version_1_store_is_upgraded_in_place_with_its_full_text_rows(tmp_path: Path) -> None:
    with CatalogStore.create(tmp_path / "old", MODEL, DIM) as store:
        store.write_batch(
            embedded=[embedded("a", 1, title="Kestrel boot", attributes={"colour": "red"})],
            failed=[(FailedItem("b", "/b.jpg", "bad"), record("b", title="Kestrel broken"))],
        )
        key = key_of(store, "a")
    db = sqlite3.connect(tmp_path / "old" / DB_NAME)
    db.executescript("DROP TABLE enrichments; DROP TABLE items_fts; PRAGMA user_version = 1;")
    db.close()
    manifest_path = tmp_path / "old" / MANIFEST_NAME
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "schema_version": 1}))

    with CatalogStore.open(tmp_path / "old") as upgraded:
        assert upgraded.manifest.schema_version == SCHEMA_VERSION
        assert sql(upgraded, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        assert fts_rows(upgraded) == {
            key: {"title": "Kestrel boot", "description": "", "caption": "", "ocr": "", "attributes": "colour red"}
        }
        assert sql(upgraded, "SELECT COUNT(*) FROM enrichments") == [(0,)]
    assert json.loads(manifest_path.read_text())["schema_version"] == SCHEMA_VERSION
    with CatalogStore.open(tmp_path / "old") as again:  # opening an upgraded store changes nothing
        assert len(fts_rows(again)) == 1


# -- index generations ----------------------------------------------------------------------------------


def test_publishing_generations_keeps_the_newest_two_and_trims_the_removals_log(store: CatalogStore) -> None:
    store.write_batch(embedded=[embedded(f"i{n}", n) for n in range(4)])
    assert store.index_path() is None
    (store.path / "index" / ".gen-000009.faiss.tmp").write_bytes(b"left by a dead writer")
    states = []
    for n in range(3):
        store.delete_items([f"i{n}"])
        seq = store.current_seq()
        states.append(
            store.publish_index(lambda path, n=n: path.write_bytes(f"index {n}".encode()), "Flat", 3 - n, seq)
        )
    assert [s.generation for s in states] == [1, 2, 3]
    assert states[-1].file == "index/gen-000003.faiss" and states[-1].count == 1
    files = sorted(p.name for p in (store.path / "index").iterdir())
    assert files == [f"gen-{g:06d}.faiss" for g in range(4 - KEEP_GENERATIONS, 4)]
    current = store.index_path()
    assert current == store.path / "index" / "gen-000003.faiss" and current.read_bytes() == b"index 2"
    published = json.loads((store.path / MANIFEST_NAME).read_text())["index"]
    assert published["generation"] == 3 and published["seq"] == states[-1].seq
    assert store.read_published_manifest() == store.manifest
    # Removals a reader of the older kept generation may still ask for survive; older ones are gone.
    assert [row[1] for row in sql(store, "SELECT key, seq FROM removals ORDER BY seq")] == [states[-1].seq]
    assert store.changes_since(states[-2].seq)[2].tolist() == [key for key, _ in sql(store, "SELECT * FROM removals")]


def test_another_handle_sees_a_publish_through_the_manifest(store: CatalogStore) -> None:
    with CatalogStore.open(store.path) as reader:
        stamp = reader.manifest_stamp()
        store.publish_index(lambda path: path.write_bytes(b"x"), "Flat", 0, store.current_seq())
        assert reader.manifest.index is None and reader.read_published_manifest().index is not None
        assert reader.manifest_stamp() != stamp
        assert reader.reload_manifest().index == store.manifest.index


def test_switching_models_drops_every_vector(store: CatalogStore) -> None:
    store.write_batch(embedded=[embedded("a", 1)])
    store.reset_model("other-model", 8)
    assert store.vector_count() == 0 and store.manifest.model == "other-model" and store.manifest.dim == 8
    assert store.item_states()["a"].has_vector is False


# -- the catalog fields, declared once ------------------------------------------------------------------


def test_item_types_compose_the_catalog_fields_and_keep_their_constructors() -> None:
    assert CATALOG_FIELDS == ("product_id", "title", "description", "category", "price", "attributes")
    for kind in (ItemRecord, StoredItem):
        assert issubclass(kind, CatalogFields)
    item = StoredItem(
        1, "sku", "o", "/x.jpg", "p1", "Red", None, "shoes", 10.0, {}, 1, 2, "indexed", None, None, "", ""
    )
    assert (item.key, item.source, item.product_id, item.price, item.height) == (1, "/x.jpg", "p1", 10.0, 2)
    scanned = ItemRecord("sku", "/x.jpg", "shop", "1:2", "p1", "Red")
    assert (scanned.stat, scanned.product_id, scanned.title, scanned.attributes) == ("1:2", "p1", "Red", {})


def test_the_query_and_http_types_carry_the_same_catalog_fields() -> None:
    from catalens.search.catalog_writer import NewItem
    from catalens.search.engine import Hit
    from catalens.search.schemas import CatalogItemOut

    declared = get_type_hints(CatalogFields)
    for kind in (Hit, NewItem):
        types = get_type_hints(kind)
        assert {name: types.get(name) for name in CATALOG_FIELDS} == declared, kind.__name__
    schema = {name: CatalogItemOut.model_fields[name].annotation for name in CATALOG_FIELDS}
    assert schema == declared, "CatalogItemOut's catalog fields drifted from indexer.records.CatalogFields"

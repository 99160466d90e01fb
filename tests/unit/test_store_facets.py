"""The facet counts the schema's triggers keep match a scan of the items, through writes, failures and deletes,
and a version-2 store gets them when it is upgraded in place; a new database's pages hold its vectors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, EmbeddedItem, FailedItem
from catalens.indexer.store.schema import DB_NAME, SCHEMA_VERSION

MODEL, DIM = "test-model", 4


def _item(item_id: str, **fields: object) -> EmbeddedItem:
    record = ItemRecord(id=item_id, source=f"/{item_id}.jpg", origin="shop", **fields)  # type: ignore[arg-type]
    return EmbeddedItem(record, f"hash-{item_id}", 1, 1, np.ones(DIM, dtype=np.float32) / 2)


def _scanned(store: CatalogStore) -> dict[str, object]:
    """What the facets say, computed the slow way from the items."""
    db = sqlite3.connect(store.path / DB_NAME)
    try:
        status = dict(db.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall())
        category = db.execute(
            "SELECT category, COUNT(*) FROM items WHERE status = 'indexed' AND category IS NOT NULL "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
        names = db.execute(
            "SELECT a.key, COUNT(*) FROM items i, json_each(i.attributes) a WHERE i.status = 'indexed' "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
        colour = db.execute(
            "SELECT CAST(json_extract(attributes, '$.colour') AS TEXT) v, COUNT(*) FROM items "
            "WHERE status = 'indexed' AND v IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
    finally:
        db.close()
    return {"status": {"indexed": 0, "failed": 0, **status}, "category": category, "names": names, "colour": colour}


def _kept(store: CatalogStore) -> dict[str, object]:
    return {
        "status": store.status_counts(),
        "category": store.facet_counts("category"),
        "names": store.attribute_names(),
        "colour": store.facet_counts("colour"),
    }


def test_facet_counts_follow_every_write(tmp_path: Path) -> None:
    with CatalogStore.create(tmp_path / "s", MODEL, DIM) as store:
        store.write_batch(
            embedded=[
                _item("a", category="mugs", price=3.0, attributes={"colour": "red", "large": True}),
                _item("b", category="mugs", price=9.5, attributes={"colour": "blue"}),
                _item("c", category="lamps", attributes={"colour": "red", "size": None}),
            ]
        )
        assert _kept(store) == _scanned(store) and store.facet_counts("colour") == [("red", 2), ("blue", 1)]
        assert store.facet_counts("large") == [("1", 1)] and store.price_range() == (3.0, 9.5)
        store.write_batch(embedded=[_item("b", category="lamps", price=1.0, attributes={"colour": "green"})])
        store.write_batch(failed=[(FailedItem("a", "/a.jpg", "unreadable"), None)])
        assert _kept(store) == _scanned(store)
        assert store.status_counts() == {"indexed": 2, "failed": 1} and store.price_range() == (1.0, 1.0)
        assert [f.id for f in store.failures()] == ["a"]
        store.delete_items(["c", "a"])
        assert _kept(store) == _scanned(store) and store.facet_counts("colour") == [("green", 1)]


def test_a_version_2_store_gets_its_facet_counts_when_upgraded(tmp_path: Path) -> None:
    with CatalogStore.create(tmp_path / "old", MODEL, DIM) as store:
        store.write_batch(embedded=[_item("a", category="mugs", attributes={"colour": "red"}), _item("b")])
    db = sqlite3.connect(tmp_path / "old" / DB_NAME)
    db.executescript(
        "DROP TABLE facets; DROP INDEX items_failed; DROP INDEX items_indexed_price; PRAGMA user_version = 2;"
    )
    db.close()
    with CatalogStore.open(tmp_path / "old") as upgraded:
        assert upgraded.manifest.schema_version == SCHEMA_VERSION
        assert _kept(upgraded) == _scanned(upgraded) and upgraded.facet_counts("category") == [("mugs", 1)]
        upgraded.write_batch(embedded=[_item("c", category="mugs")])  # the triggers are there too
        assert upgraded.facet_counts("category") == [("mugs", 2)]


def test_a_new_store_uses_pages_that_hold_its_vectors_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    old = tmp_path / "old" / DB_NAME
    old.parent.mkdir()
    sqlite3.connect(old).executescript("PRAGMA page_size = 4096; CREATE TABLE t (x); DROP TABLE t;")
    for path in (tmp_path / "new", tmp_path / "old"):
        with CatalogStore.create(path, MODEL, DIM) as store:
            store.write_batch(embedded=[_item("a", category="mugs")])
            assert store.vectors_for([1])[1].shape == (1, DIM)
    sizes = [
        sqlite3.connect(p / DB_NAME).execute("PRAGMA page_size").fetchone()[0] for p in (tmp_path / "new", old.parent)
    ]
    assert sizes == [16384, 4096]

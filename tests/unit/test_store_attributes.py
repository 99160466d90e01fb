"""The per-item attribute rows the schema's triggers keep match the indexed items' JSON through inserts, attribute
changes and removals, failures and deletes; attribute filters read them and answer exactly as the JSON scan they
replace, whatever the values' types; stores made before the table get it filled."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, EmbeddedItem, FailedItem, ItemFilter
from catalens.indexer.store.schema import DB_NAME

MODEL, DIM = "test-model", 4

#: Values of every JSON type, and strings that look like other types' text or differ only in case.
MIXED: dict[str, dict[str, Any]] = {
    "a": {"colour": "Red", "size": 7, "weight": 7.5, "new": True, "tags": ["x", "y"], "dims": {"w": 1}},
    "b": {"colour": "red", "size": "7", "weight": 7.0, "new": False, "note": None, "käse": "grün"},
    "c": {"colour": "red ", "size": 7.0, "weight": "7.5", "new": "true", "odd key.with $": "1"},
    "d": {"colour": "", "size": -0.0, "weight": 1e20, "new": 1, "big": 2**62, "tags": '["x","y"]'},
    "e": {},
}
#: Filter values asked for besides every value stored: near misses of the stored ones.
CANDIDATES = ("7", "7.0", "7.5", "1", "0", "true", "True", "red", "RED", "null", "", "1.0e+20", "1e+20", "-0.0")


def _item(item_id: str, attributes: dict[str, Any]) -> EmbeddedItem:
    record = ItemRecord(id=item_id, source=f"/{item_id}.jpg", origin="shop", attributes=attributes)
    return EmbeddedItem(record, f"hash-{item_id}", 1, 1, np.ones(DIM, dtype=np.float32) / 2)


def _query(store: CatalogStore, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(store.path / DB_NAME)
    try:
        return [tuple(row) for row in db.execute(sql, params)]
    finally:
        db.close()


def _kept_rows(store: CatalogStore) -> list[tuple[Any, ...]]:
    return _query(store, "SELECT name, value, item_key FROM item_attributes ORDER BY 1, 2, 3")


def _scanned_rows(store: CatalogStore) -> list[tuple[Any, ...]]:
    """What the table should hold, computed the slow way: each indexed item's attributes as filters compare them."""
    return _query(
        store,
        "SELECT a.key, CAST(json_extract(i.attributes, '$.\"' || a.key || '\"') AS TEXT) v, i.key FROM items i, "
        "json_each(i.attributes) a WHERE i.status = 'indexed' AND v IS NOT NULL ORDER BY 1, 2, 3",
    )


def _scan_filter(store: CatalogStore, name: str, value: str) -> list[int]:
    """The keys the JSON-scan filter (the one the table replaced) returns for ``name=value``."""
    rows = _query(
        store,
        "SELECT key FROM items WHERE status = 'indexed' AND CAST(json_extract(attributes, ?) AS TEXT) = ? ORDER BY key",
        (f'$."{name}"', value),
    )
    return [int(row[0]) for row in rows]


def test_attribute_rows_follow_inserts_updates_failures_and_deletes(tmp_path: Path) -> None:
    with CatalogStore.create(tmp_path / "s", MODEL, DIM) as store:
        store.write_batch(embedded=[_item(item_id, attributes) for item_id, attributes in MIXED.items()])
        assert _kept_rows(store) == _scanned_rows(store) and len(_kept_rows(store)) == 22
        keys = {item.id: item.key for item in store.get_items_by_id(MIXED).values()}
        red = ItemFilter(attributes=(("colour", "red"),))
        assert store.matching_keys(red).tolist() == [keys["b"]]
        # b's colour changes, its size goes, a gains a colour value; e's attributes stay as they were.
        store.write_batch(
            embedded=[
                _item("b", {"colour": "blue", "weight": 7.0, "new": False}),
                _item("a", {**MIXED["a"], "colour": "red"}),
                _item("e", {}),
            ]
        )
        assert _kept_rows(store) == _scanned_rows(store)
        assert store.matching_keys(red).tolist() == [keys["a"]]
        assert store.matching_keys(ItemFilter(attributes=(("size", "7"),))).tolist() == [keys["a"]]
        # A failed item has no rows (filters skip it), whether or not its record still gives attributes.
        failed_a = ItemRecord("a", "/a.jpg", "shop", attributes={"colour": "red", "size": 8})
        store.write_batch(failed=[(FailedItem("a", "/a.jpg", "unreadable"), failed_a)])
        store.write_batch(failed=[(FailedItem("c", "/c.jpg", "unreadable"), None)])
        assert _kept_rows(store) == _scanned_rows(store)
        assert {row[2] for row in _kept_rows(store)} == {keys["b"], keys["d"]}
        assert store.matching_keys(red).size == 0
        # Indexed again, with the same attributes: its rows are back.
        store.write_batch(embedded=[_item("a", {"colour": "red", "size": 8})])
        assert _kept_rows(store) == _scanned_rows(store) and store.matching_keys(red).tolist() == [keys["a"]]
        store.delete_items(["a", "b", "e"])
        assert _kept_rows(store) == _scanned_rows(store) and {row[2] for row in _kept_rows(store)} == {keys["d"]}
        store.delete_items(["c", "d"])
        assert _kept_rows(store) == []


def test_attribute_filters_answer_as_the_json_scan_for_every_type(tmp_path: Path) -> None:
    with CatalogStore.create(tmp_path / "s", MODEL, DIM) as store:
        store.write_batch(embedded=[_item(item_id, attributes) for item_id, attributes in MIXED.items()])
        store.write_batch(
            failed=[(FailedItem("f", "/f.jpg", "bad"), ItemRecord("f", "/f.jpg", "shop", attributes={"colour": "red"}))]
        )
        names = {name for attributes in MIXED.values() for name in attributes} | {"absent"}
        values = {value for _, value, _ in _kept_rows(store)} | set(CANDIDATES)
        answered = 0
        for name in sorted(names):
            for value in sorted(values):
                kept = store.matching_keys(ItemFilter(attributes=((name, value),))).tolist()
                assert kept == _scan_filter(store, name, value), (name, value)
                answered += bool(kept)
        assert answered >= 15  # most pairs match something: the comparison is not vacuous
        both = ItemFilter(attributes=(("colour", "red"), ("size", "7")))
        assert store.matching_keys(both).tolist() == sorted(
            set(_scan_filter(store, "colour", "red")) & set(_scan_filter(store, "size", "7"))
        )
        assert store.matching_keys(ItemFilter(categories=("none",), attributes=(("colour", "red"),))).size == 0


def test_stores_made_before_the_table_get_it_filled(tmp_path: Path) -> None:
    for version, old in ((2, tmp_path / "v2"), (3, tmp_path / "v3")):
        with CatalogStore.create(old, MODEL, DIM) as store:
            store.write_batch(embedded=[_item(item_id, attributes) for item_id, attributes in MIXED.items()])
        db = sqlite3.connect(old / DB_NAME)
        db.executescript(
            "DROP TRIGGER items_attributes_insert; DROP TRIGGER items_attributes_delete; "
            f"DROP TRIGGER items_attributes_update; DROP TABLE item_attributes; PRAGMA user_version = {version};"
        )
        db.close()
        with CatalogStore.open(old) as upgraded:
            assert _kept_rows(upgraded) == _scanned_rows(upgraded) and len(_kept_rows(upgraded)) == 22
            upgraded.write_batch(embedded=[_item("g", {"colour": "red"})])  # the triggers are there too
            assert _kept_rows(upgraded) == _scanned_rows(upgraded)
            assert len(upgraded.matching_keys(ItemFilter(attributes=(("colour", "red"),)))) == 2

"""Duplicate groups in the store: a run replaces every group at once, members leave with their item (deleted, or
its image changed), groups left with one member are not listed, and a version-4 store is upgraded in place."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from catalens.indexer.records import ItemRecord
from catalens.indexer.store import (
    SCHEMA_VERSION,
    CatalogStore,
    DuplicateGroup,
    DuplicateMember,
    DuplicateRun,
    EmbeddedItem,
    FailedItem,
)
from catalens.indexer.store.manifest import MANIFEST_NAME
from catalens.indexer.store.schema import DB_NAME

MODEL, DIM = "test-model", 4


def _item(item_id: str, image: str = "1") -> EmbeddedItem:
    record = ItemRecord(id=item_id, source=f"/{item_id}.jpg", origin="shop")
    return EmbeddedItem(record, f"hash-{item_id}-{image}", 1, 1, np.ones(DIM, dtype=np.float32) / 2)


def _run(groups: int, threshold: float = 0.95) -> DuplicateRun:
    return DuplicateRun(threshold, MODEL, 3, 6, groups, "2026-11-26T00:00:00Z", "2026-11-26T00:00:01Z")


def _group(store: CatalogStore, *ids: str, exact: tuple[str, ...] = ()) -> DuplicateGroup:
    found = store.get_items_by_id(ids)
    members = [DuplicateMember(found[i].key, i, 1.0 - n / 100, i in exact) for n, i in enumerate(ids)]
    return DuplicateGroup(min(m.key for m in members), members)


@pytest.fixture
def store(tmp_path: Path) -> CatalogStore:
    with CatalogStore.create(tmp_path / "store", MODEL, DIM) as opened:
        opened.write_batch(embedded=[_item(i) for i in "abcdef"])
        yield opened


def _listed(store: CatalogStore) -> list[list[str]]:
    return [[m.item_id for m in g.members] for g in store.duplicates.groups()]


def test_a_run_replaces_every_group_and_is_recorded(store: CatalogStore) -> None:
    table = store.duplicates
    assert table.groups() == [] and table.last_run() is None and table.group_of([1, 2]) == {}
    first = [_group(store, "a", "b", "c", exact=("c",)), _group(store, "d", "e")]
    table.replace(first, _run(2))
    assert table.groups() == first and table.count() == 2
    assert table.groups(limit=1, offset=1) == [first[1]]
    keys = {i: it.key for i, it in store.get_items_by_id("abcdef").items()}
    assert table.group_of(keys.values()) == {keys[i]: keys[g] for i, g in zip("abcde", "aaadd", strict=True)}
    assert table.last_run() == _run(2)
    second = [_group(store, "e", "f")]
    table.replace(second, _run(1, 0.9))
    assert _listed(store) == [["e", "f"]] and table.last_run() == _run(1, 0.9)
    assert table.group_of([keys["a"], keys["e"]]) == {keys["e"]: keys["e"]}


def test_members_leave_with_their_item_and_lone_members_are_not_listed(store: CatalogStore) -> None:
    store.duplicates.replace([_group(store, "a", "b", "c"), _group(store, "d", "e")], _run(2))
    assert store.delete_items(["b", "d"]) == 2
    assert _listed(store) == [["a", "c"]] and store.duplicates.count() == 1
    store.write_batch(embedded=[_item("a", image="2")])  # a new image: its similarity no longer holds
    store.write_batch(embedded=[_item("c")])  # the same image again: still a member
    assert store.duplicates.group_of(k.key for k in store.get_items_by_id("ac").values()) == {
        store.get_items_by_id(["c"])["c"].key: store.get_items_by_id(["a"])["a"].key
    }
    store.write_batch(failed=[(FailedItem("c", "/c.jpg", "broken"), None)])
    assert store.duplicates.group_of([store.get_items_by_id(["c"])["c"].key]) == {}


def test_a_member_deleted_while_the_run_ran_is_dropped(store: CatalogStore) -> None:
    group = _group(store, "a", "b", "c")
    store.delete_items(["c"])
    store.duplicates.replace([group], _run(1))
    assert _listed(store) == [["a", "b"]]


def test_a_version_4_store_is_upgraded_in_place(tmp_path: Path) -> None:
    with CatalogStore.create(tmp_path / "old", MODEL, DIM) as created:
        created.write_batch(embedded=[_item("a"), _item("b")])
    db = sqlite3.connect(tmp_path / "old" / DB_NAME)
    db.executescript(
        "DROP TRIGGER items_duplicates_update; DROP TABLE duplicate_members; DROP TABLE duplicate_runs; "
        "PRAGMA user_version = 4;"
    )
    db.close()
    manifest = tmp_path / "old" / MANIFEST_NAME
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": 4}))
    with CatalogStore.open(tmp_path / "old") as upgraded:
        assert upgraded.manifest.schema_version == SCHEMA_VERSION == 6
        upgraded.duplicates.replace([_group(upgraded, "a", "b")], _run(1))
        assert _listed(upgraded) == [["a", "b"]]
    assert json.loads(manifest.read_text())["schema_version"] == SCHEMA_VERSION
    with CatalogStore.open(tmp_path / "old", read_only=True) as again:
        assert _listed(again) == [["a", "b"]] and again.duplicates.last_run() == _run(1)


def test_items_sharing_their_image_bytes_are_listed_by_content_hash(store: CatalogStore) -> None:
    copies = [EmbeddedItem(ItemRecord(id=i, source=f"/{i}.jpg", origin="shop"), "same", 1, 1, _item(i).vector)
              for i in ("g", "h", "k")]  # fmt: skip
    store.write_batch(embedded=copies)
    store.write_batch(failed=[(FailedItem("k", "/k.jpg", "broken"), None)])  # a failed item is no copy
    keys = store.get_items_by_id("gh")
    assert store.duplicates.same_content() == [[keys["g"].key, keys["h"].key]]

"""Tags in the store: a model's writes never override people, accepted tags filter and count as attributes, the
counts the triggers keep stay exact through every change, ``pending`` finds what a run must tag, and a version-3
store is upgraded in place."""

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
    EmbeddedItem,
    FailedItem,
    ItemFilter,
    ModelTag,
    ReviewEntry,
    TagRow,
)
from catalens.indexer.store import filters as store_filters
from catalens.indexer.store.manifest import MANIFEST_NAME
from catalens.indexer.store.schema import DB_NAME
from catalens.indexer.tagging.errors import TagDecisionError

MODEL, DIM = "test-model", 4
TAXONOMY = json.dumps(
    {
        "attributes": {
            "colour": {"values": ["red", "blue", "green"]},
            "style": {"values": ["plain", "striped", "dotted"], "multi_label": True},
        }
    }
)


def _item(item_id: str, image: str = "1", **fields: object) -> EmbeddedItem:
    record = ItemRecord(id=item_id, source=f"/{item_id}.jpg", origin="shop", title=f"thing {item_id}", **fields)  # type: ignore[arg-type]
    return EmbeddedItem(record, f"hash-{item_id}-{image}", 1, 1, np.ones(DIM, dtype=np.float32) / 2)


def _keys(store: CatalogStore, *ids: str) -> list[int]:
    found = store.get_items_by_id(ids)
    return [found[i].key for i in ids]


def _run(store: CatalogStore, signature: str = "sig-1") -> int:
    return store.tags.start_run(signature, "tax-hash", TAXONOMY, MODEL, "cal-1")


def _tag(attribute: str, value: str, confidence: float, decision: str, runner_up: str | None = None) -> ModelTag:
    return ModelTag(attribute, value, confidence, decision, runner_up, 0.1 if runner_up else None)


@pytest.fixture
def store(tmp_path: Path) -> CatalogStore:
    opened = CatalogStore.create(tmp_path / "s", MODEL, DIM)
    opened.write_batch(
        embedded=[
            _item("a", category="mugs", attributes={"colour": "red"}),
            _item("b", category="mugs"),
            _item("c", category="lamps", attributes={"colour": "blue"}),
            _item("d", category="lamps"),
        ]
    )
    return opened


def _recount(store: CatalogStore) -> dict[str, dict[str, int]]:
    """The decision counts, computed the slow way from the rows."""
    db = sqlite3.connect(store.path / DB_NAME)
    try:
        rows = db.execute(
            "SELECT t.attribute, t.decision, COUNT(*) FROM tags t JOIN items i ON i.key = t.item_key "
            "WHERE i.status = 'indexed' GROUP BY 1, 2"
        ).fetchall()
    finally:
        db.close()
    counts: dict[str, dict[str, int]] = {}
    for attribute, decision, n in rows:
        counts.setdefault(attribute, {"accept": 0, "review": 0, "reject": 0})[decision] = n
    return counts


def _filtered(store: CatalogStore, name: str) -> list[tuple[str, int]]:
    """What ``facet_counts(name)`` must say: how many items the filter on each value matches."""
    values = ("red", "blue", "green", "plain", "striped", "dotted")
    sizes = [(v, len(store.matching_keys(ItemFilter(attributes=((name, v),))))) for v in values]
    return sorted(((v, n) for v, n in sizes if n), key=lambda p: (-p[1], p[0]))


def _assert_exact(store: CatalogStore) -> None:
    assert store.tags.counts() == _recount(store)
    assert store.facet_counts("colour") == _filtered(store, "colour")
    assert store.facet_counts("style") == _filtered(store, "style")


def test_accepted_tags_filter_and_count_as_attributes(store: CatalogStore) -> None:
    a, b, c, d = _keys(store, "a", "b", "c", "d")
    run = _run(store)
    store.tags.write(
        run,
        "sig-1",
        [
            (a, ["colour"], [_tag("colour", "red", 0.95, "accept", "blue")]),  # the catalog says red too
            (b, ["colour"], [_tag("colour", "red", 0.9, "accept")]),
            (c, ["colour"], [_tag("colour", "red", 0.5, "review", "blue")]),  # not accepted: no attribute
            (d, ["colour", "style"], [_tag("colour", "green", 0.2, "reject"), _tag("style", "plain", 0.9, "accept")]),
        ],
    )
    red = ItemFilter(attributes=(("colour", "red"),))
    assert store.matching_keys(red).tolist() == [a, b]  # a once, although both the catalog and a tag say red
    assert store.matching_keys(ItemFilter(categories=("mugs",), attributes=(("colour", "red"),))).tolist() == [a, b]
    both = ItemFilter(attributes=(("style", "plain"), ("colour", "green")))
    assert store.matching_keys(both).tolist() == []
    assert store.matching_keys(ItemFilter(attributes=(("style", "plain"),))).tolist() == [d]
    hits = store.lexical_search('"thing"', red, 10)  # the SQL clause of lexical search and the engine
    assert sorted(h.key for h in hits) == [a, b]
    assert store.facet_counts("colour") == [("red", 2), ("blue", 1)]
    assert dict(store.attribute_names())["colour"] == 3 and dict(store.attribute_names())["style"] == 1
    assert store.facet_counts("category") == [("lamps", 2), ("mugs", 2)]  # the catalog column only
    assert store.tags.counts() == {
        "colour": {"accept": 2, "review": 1, "reject": 1},
        "style": {"accept": 1, "review": 0, "reject": 0},
    }
    _assert_exact(store)


def test_counts_stay_exact_through_rewrites_people_failures_and_deletes(store: CatalogStore) -> None:
    a, b, c, d = _keys(store, "a", "b", "c", "d")
    run = _run(store)
    store.tags.write(run, "sig-1", [(k, ["colour"], [_tag("colour", "green", 0.9, "accept")]) for k in (a, b, c, d)])
    _assert_exact(store)
    # A re-run changes decisions and values; a scored attribute without tags loses its model rows.
    store.tags.write(
        run,
        "sig-1",
        [
            (a, ["colour"], [_tag("colour", "green", 0.6, "review")]),
            (b, ["colour"], [_tag("colour", "blue", 0.9, "accept")]),
            (c, ["colour"], []),
        ],
    )
    _assert_exact(store)
    assert store.tags.counts()["colour"] == {"accept": 2, "review": 1, "reject": 0}
    store.tags.set_by_person("a", "colour", "Blue", "correct", who="ana")  # values match case-insensitively
    store.tags.set_by_person("d", "colour", "green", "reject")
    _assert_exact(store)
    assert store.facet_counts("colour") == [("blue", 3), ("red", 1)]  # a: the catalog says red, a person blue
    # The catalog changes under the tags: c now says blue itself, b fails on re-indexing, a is deleted.
    store.write_batch(embedded=[_item("c", category="lamps", attributes={"colour": "green"})])
    store.write_batch(failed=[(FailedItem("b", "/b.jpg", "unreadable"), None)])
    _assert_exact(store)
    assert store.matching_keys(ItemFilter(attributes=(("colour", "blue"),))).tolist() == [a]
    store.delete_items(["a"])
    _assert_exact(store)
    assert store.tags.for_items([a]) == {}
    store.write_batch(embedded=[_item("b", attributes={"colour": "blue"})])  # indexed again: its tags count again
    _assert_exact(store)
    assert store.facet_counts("colour") == [("blue", 1), ("green", 1)]


def test_a_model_run_never_overrides_a_person(store: CatalogStore) -> None:
    a, b = _keys(store, "a", "b")
    run = _run(store)
    store.tags.write(
        run,
        "sig-1",
        [
            (a, ["colour", "style"], [_tag("colour", "red", 0.7, "review"), _tag("style", "plain", 0.5, "review")]),
            (b, ["colour"], [_tag("colour", "blue", 0.9, "accept")]),
        ],
    )
    after = store.tags.set_by_person("a", "colour", "green", "accept", who="ana")
    assert [(t.value, t.decision, t.source, t.decided_by) for t in after if t.attribute == "colour"] == [
        ("green", "accept", "person", "ana")
    ]
    store.tags.set_by_person("a", "style", "dotted", "accept")
    store.tags.set_by_person("b", "colour", "blue", "reject")
    rerun = _run(store, "sig-2")
    store.tags.write(
        rerun,
        "sig-2",
        [
            (a, ["colour", "style"], [_tag("colour", "red", 0.99, "accept"), _tag("style", "striped", 0.9, "accept")]),
            (b, ["colour"], [_tag("colour", "blue", 0.99, "accept"), _tag("colour", "green", 0.3, "review")]),
        ],
    )
    tags = store.tags.for_items([a, b])
    # Single-label colour keeps the person's value alone; multi-label style gets the model's other values.
    assert [(t.attribute, t.value, t.source) for t in tags[a]] == [
        ("colour", "green", "person"),
        ("style", "dotted", "person"),
        ("style", "striped", "model"),
    ]
    # A rejected value is never proposed again; other values still are.
    assert [(t.value, t.decision, t.source) for t in tags[b]] == [
        ("green", "review", "model"),
        ("blue", "reject", "person"),
    ]
    assert store.tags.person_labels() == [("a", "colour", "green"), ("a", "style", "dotted")]
    _assert_exact(store)


def test_person_decisions_are_checked_against_the_last_runs_taxonomy(store: CatalogStore) -> None:
    with pytest.raises(TagDecisionError, match="no tagging run"):
        store.tags.set_by_person("a", "colour", "red", "accept")
    _run(store)
    with pytest.raises(TagDecisionError, match="unknown item 'zzz'"):
        store.tags.set_by_person("zzz", "colour", "red", "accept")
    with pytest.raises(TagDecisionError, match="unknown attribute 'size'.*colour, style"):
        store.tags.set_by_person("a", "size", "red", "accept")
    with pytest.raises(TagDecisionError, match="unknown value 'purple'.*red, blue, green"):
        store.tags.set_by_person("a", "colour", "purple", "accept")
    with pytest.raises(TagDecisionError, match="unknown action"):
        store.tags.set_by_person("a", "colour", "red", "maybe")
    assert store.tags.for_items(_keys(store, "a")) == {}


def test_pending_lists_what_a_run_has_not_tagged_as_it_is_now(store: CatalogStore) -> None:
    a, b, c, d = _keys(store, "a", "b", "c", "d")
    assert store.tags.pending("sig-1").tolist() == [a, b, c, d]
    assert store.tags.pending("sig-1", ItemFilter(categories=("lamps",))).tolist() == [c, d]
    run = _run(store)
    store.delete_items(["d"])  # deleted while the run scored it: skipped
    store.tags.write(run, "sig-1", [(k, ["colour"], [_tag("colour", "red", 0.9, "accept")]) for k in (a, b, c, d)])
    assert store.tags.pending("sig-1").tolist() == []
    assert store.tags.pending("sig-2").tolist() == [a, b, c]  # another taxonomy, model or calibration
    store.write_batch(embedded=[_item("b", image="2", category="mugs")])  # a new image
    store.write_batch(failed=[(FailedItem("c", "/c.jpg", "gone"), None)])
    store.write_batch(embedded=[_item("e")])
    assert store.tags.pending("sig-1").tolist() == [b, _keys(store, "e")[0]]


def test_review_queue_is_least_confident_first_with_the_total(store: CatalogStore) -> None:
    a, b, c, d = _keys(store, "a", "b", "c", "d")
    run = _run(store)
    store.tags.write(
        run,
        "sig-1",
        [
            (a, ["colour"], [_tag("colour", "red", 0.55, "review", "blue")]),
            (b, ["colour", "style"], [_tag("colour", "blue", 0.45, "review"), _tag("style", "plain", 0.5, "review")]),
            (c, ["colour"], [_tag("colour", "red", 0.95, "accept")]),
            (d, ["colour"], [_tag("colour", "green", 0.65, "review")]),
        ],
    )
    entries, total = store.tags.review_queue()
    assert total == 4 and [(e.item_id, e.attribute) for e in entries] == [
        ("b", "colour"),
        ("b", "style"),
        ("a", "colour"),
        ("d", "colour"),
    ]
    assert entries[2] == ReviewEntry("a", "colour", "red", 0.55, "blue", 0.1)
    page, total = store.tags.review_queue("colour", limit=1, offset=1)
    assert total == 3 and [e.item_id for e in page] == ["a"]
    store.tags.set_by_person("a", "colour", "red", "accept")
    store.delete_items(["d"])
    assert [e.item_id for e in store.tags.review_queue("colour")[0]] == ["b"]
    assert store.tags.review_queue("colour")[1] == 1


def test_rows_carry_their_items_and_runs_for_export(store: CatalogStore) -> None:
    a, b = _keys(store, "a", "b")
    assert store.tags.last_run() is None
    run = _run(store)
    store.tags.write(
        run, "sig-1", [(k, ["colour"], [_tag("colour", "red", 0.9, "accept"), _tag("colour", "red", 0.1, "reject")])
                       for k in (a, b)]
    )  # fmt: skip
    store.tags.set_by_person("b", "colour", "blue", "reject", who="ana")
    store.tags.finish_run(run, {"items": 2})
    last = store.tags.last_run()
    assert last is not None and last.id == run and last.summary == {"items": 2} and last.finished_at
    rows = list(store.tags.rows())
    assert [(r.item_id, r.value, r.decision, r.source) for r in rows] == [
        ("a", "red", "accept", "model"),  # a value given twice keeps its first tag
        ("b", "blue", "reject", "person"),
        ("b", "red", "accept", "model"),
    ]
    assert isinstance(rows[0], TagRow) and (rows[0].model, rows[0].taxonomy, rows[0].calibration) == (
        MODEL,
        "tax-hash",
        "cal-1",
    )
    assert rows[1].model is None and rows[1].decided_by == "ana"
    assert [r.item_id for r in store.tags.rows(decision="reject")] == ["b"]
    assert list(store.tags.rows(attribute="style")) == []


def test_attribute_filters_over_tags_read_indexes_not_the_tags_table(store: CatalogStore) -> None:
    db = sqlite3.connect(store.path / DB_NAME)
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    store_filters.matching_keys(db, ItemFilter(attributes=(("colour", "red"), ("style", "plain"))))
    clauses, params = store_filters.filter_clauses(ItemFilter(attributes=(("colour", "red"),)), "i.")
    plans = [
        db.execute("EXPLAIN QUERY PLAN " + statements[0].replace("'red'", "?").replace("'plain'", "?")
                   .replace("'colour'", "?").replace("'style'", "?"), ["x"] * 8).fetchall(),
        db.execute(f"EXPLAIN QUERY PLAN SELECT i.key FROM items i WHERE {' AND '.join(clauses)}", params).fetchall(),
    ]  # fmt: skip
    details = [row[3] for plan in plans for row in plan]
    assert any("tags_accepted" in d for d in details)
    assert not [d for d in details if d.startswith("SCAN") and ("tags" in d or "item_attributes" in d)]
    db.close()


def _as_version_3(path: Path) -> None:
    db = sqlite3.connect(path / DB_NAME)
    db.executescript(
        "DROP TRIGGER items_tags_update; DROP TRIGGER items_tags_delete; DROP TABLE tags; DROP TABLE tag_state; "
        "DROP TABLE tag_runs; PRAGMA user_version = 3;"
    )
    db.close()
    manifest = path / MANIFEST_NAME
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": 3}))


@pytest.mark.parametrize("without_attribute_rows", [False, True])
def test_a_version_3_store_is_upgraded_in_place(tmp_path: Path, without_attribute_rows: bool) -> None:
    with CatalogStore.create(tmp_path / "old", MODEL, DIM) as store:
        store.write_batch(embedded=[_item("a", attributes={"colour": "red"}), _item("b")])
    _as_version_3(tmp_path / "old")
    if without_attribute_rows:  # a version 3 store from before the attribute rows joined it
        sqlite3.connect(tmp_path / "old" / DB_NAME).executescript("DROP TABLE item_attributes;").close()
    with CatalogStore.open(tmp_path / "old") as upgraded:
        assert upgraded.manifest.schema_version == SCHEMA_VERSION == 6
        a, b = _keys(upgraded, "a", "b")
        assert upgraded.tags.pending("s").tolist() == [a, b] and upgraded.tags.counts() == {}
        run = _run(upgraded)
        upgraded.tags.write(run, "sig-1", [(b, ["colour"], [_tag("colour", "red", 0.9, "accept")])])
        assert upgraded.matching_keys(ItemFilter(attributes=(("colour", "red"),))).tolist() == [a, b]
        assert upgraded.facet_counts("colour") == [("red", 2)]
        upgraded.delete_items(["b"])
        assert upgraded.tags.counts() == {} and upgraded.facet_counts("colour") == [("red", 1)]
    assert json.loads((tmp_path / "old" / MANIFEST_NAME).read_text())["schema_version"] == SCHEMA_VERSION
    with CatalogStore.open(tmp_path / "old", read_only=True) as again:
        assert again.matching_keys(ItemFilter(attributes=(("colour", "red"),))).tolist() == [a]

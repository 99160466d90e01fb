"""Near-duplicate groups through the public surfaces: ``find_duplicates`` / ``find_and_save`` and ``catalens
duplicates``. Copies of a picture are grouped and unrelated pictures are not, byte-identical files are found by
their content hash whatever their vectors, items embedded after the index generation are compared too, a lossy
index gives the same groups, the groups are stored and replaced by a re-run, deleted items leave them, and a
schema-4 store is upgraded on the way.

The stores are written with vectors chosen in advance (how alike two pictures look is the model's business,
measured by ``scripts/bench_duplicates.py``): each base picture has copies at cosine ~0.99, unrelated pictures lie
far apart.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from catalens.indexer.duplicates import DEFAULT_THRESHOLD, DuplicatesError, find_and_save, find_duplicates
from catalens.indexer.errors import StoreLockedError
from catalens.indexer.pipeline import reindex
from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, EmbeddedItem
from catalens.indexer.store.manifest import MANIFEST_NAME
from catalens.indexer.store.schema import DB_NAME, SCHEMA_VERSION
from catalens.indexer.vectors import VectorIndex, create_index
from catalens.search.cli import main
from catalens.search.cli.duplicates import HELP_THRESHOLD

DIM = 32
BASES = 4
KINDS = ("jpeg70", "resize50", "watermark")


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _item(item_id: str, vector: np.ndarray, content_hash: str | None = None) -> EmbeddedItem:
    record = ItemRecord(id=item_id, source=f"/images/{item_id}.png", origin="test")
    return EmbeddedItem(record, content_hash or f"hash-{item_id}", 64, 64, _unit(vector))


def _catalog() -> tuple[list[EmbeddedItem], list[EmbeddedItem]]:
    """(indexed items, items written after the index generation)."""
    rng = np.random.default_rng(7)
    bases = [_unit(rng.standard_normal(DIM)) for _ in range(BASES)]
    items = [_item(f"b{n}", base) for n, base in enumerate(bases)]
    items += [_item(f"b{n}~{kind}", base + 0.02 * rng.standard_normal(DIM)) for n, base in enumerate(bases)
              for kind in KINDS]  # fmt: skip
    items += [_item(f"x{n}", rng.standard_normal(DIM)) for n in range(20)]
    # The same file twice, with vectors far apart (another model would embed them alike; the hash says it all).
    items += [
        _item("same-a", rng.standard_normal(DIM), "hash-same"),
        _item("same-b", rng.standard_normal(DIM), "hash-same"),
    ]
    later = [_item("b0~mirror", bases[0] + 0.02 * rng.standard_normal(DIM)), _item("x-late", rng.standard_normal(DIM))]
    return items, later


def _build(root: Path, factory: str = "Flat") -> Path:
    items, later = _catalog()
    with CatalogStore.create(root, "test-model", DIM, factory) as store:
        store.write_batch(embedded=items)
    reindex(root, factory)
    with CatalogStore.open(root) as store, store.writer_lock():
        store.write_batch(embedded=later)
    return root


EXPECTED = [
    ["b0", "b0~jpeg70", "b0~mirror", "b0~resize50", "b0~watermark"],
    *[[f"b{n}", *(f"b{n}~{kind}" for kind in KINDS)] for n in range(1, BASES)],
    ["same-a", "same-b"],
]


def _grouped(groups: list) -> list[list[str]]:
    return sorted(sorted(m.item_id for m in g.members) for g in groups)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("duplicates") / "store")


@pytest.fixture
def store_dir(built: Path, tmp_path: Path) -> Path:
    """A private copy of the module's store, for tests that write to it."""
    return Path(shutil.copytree(built, tmp_path / "store"))


def test_copies_are_grouped_unrelated_pictures_are_not_and_same_files_by_hash(built: Path) -> None:
    with CatalogStore.open(built, read_only=True) as store:
        report = find_duplicates(store, 0.95)
        keys = {item.id: item.key for item in store.get_items_by_id(["b0", "b0~mirror", "same-a"]).values()}
    assert _grouped(report.groups) == EXPECTED
    assert report.run.items == 4 * BASES + 20 + 2 + 2 and report.run.groups == len(EXPECTED)
    assert report.run.generation == 1 and report.exact_compared == 2  # the two items written after the index
    first = next(g for g in report.groups if g.members[0].item_id == "b0")
    assert first.group_id == keys["b0"] and first.members[0].similarity == 1.0
    assert [m.similarity for m in first.members[1:]] == sorted((m.similarity for m in first.members[1:]), reverse=True)
    assert all(0.95 <= m.similarity < 1.0 and not m.exact for m in first.members[1:])
    same = next(g for g in report.groups if g.members[0].item_id == "same-a")
    assert [m.exact for m in same.members] == [True, True] and same.group_id == keys["same-a"]
    assert same.members[1].similarity < 0.9  # grouped by the file, not by the vectors


def test_a_lossy_index_and_no_index_give_the_same_groups(tmp_path: Path) -> None:
    for factory in ("IVF2,PQ8x4", "HNSW16"):
        with CatalogStore.open(_build(tmp_path / factory, factory), read_only=True) as store:
            assert store.manifest.index is not None and store.manifest.index.factory == factory
            assert _grouped(find_duplicates(store, 0.95).groups) == EXPECTED
    items, later = _catalog()
    with CatalogStore.create(tmp_path / "unindexed", "test-model", DIM) as store:
        store.write_batch(embedded=items + later)
        report = find_duplicates(store, 0.95, batch_size=7)
    assert _grouped(report.groups) == EXPECTED and report.run.generation is None and report.exact_compared == 40


def test_the_k_nn_range_search_finds_what_faiss_range_search_finds() -> None:
    rng = np.random.default_rng(3)
    vectors = np.stack([_unit(rng.standard_normal(DIM)) for _ in range(300)])
    vectors[150:] = np.stack([_unit(v + 0.1 * rng.standard_normal(DIM)) for v in vectors[:150]])
    index = create_index("Flat", DIM)
    index.add(np.arange(300, dtype=np.int64) + 10, vectors)
    native, fallback = index.range_search(vectors, 0.9), VectorIndex.range_search(index, vectors, 0.9)
    for found in (native, fallback):
        assert found.lims.shape == (301,)
    for row in range(300):
        a = set(native.ids[native.lims[row] : native.lims[row + 1]].tolist())
        b = set(fallback.ids[fallback.lims[row] : fallback.lims[row + 1]].tolist())
        assert a == b and row + 10 in a
    exact = int((vectors @ vectors.T > 0.9).sum())
    assert native.lims[-1] == exact


def test_an_hnsw_range_search_over_many_queries_completes() -> None:
    # FAISS 1.15's own HNSW range search aborts the process past 1e8 / (levels x dim x efSearch) queries (here
    # about 50): the backend answers graphs through k-NN search instead.
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((1500, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = create_index("HNSW32", 512)
    index.add(np.arange(1500, dtype=np.int64), vectors)
    index.configure({"efSearch": 1024})
    found = index.range_search(vectors[:400], 0.9)
    assert found.lims[-1] == 400 and found.ids.tolist() == list(range(400))


def test_groups_are_stored_replaced_by_a_rerun_and_a_dry_run_stores_nothing(store_dir: Path) -> None:
    find_and_save(store_dir, 0.95)
    with CatalogStore.open(store_dir) as store:
        assert _grouped(store.duplicates.groups()) == EXPECTED
        last = store.duplicates.last_run()
        assert last is not None and last.threshold == 0.95 and last.groups == len(EXPECTED)
    report = find_and_save(store_dir, 0.9999, dry_run=True)
    assert _grouped(report.groups) == [["same-a", "same-b"]]
    with CatalogStore.open(store_dir) as store:
        assert _grouped(store.duplicates.groups()) == EXPECTED
    find_and_save(store_dir, 0.9999)
    with CatalogStore.open(store_dir) as store:
        assert _grouped(store.duplicates.groups()) == [["same-a", "same-b"]]
        assert store.duplicates.last_run().threshold == 0.9999  # type: ignore[union-attr]


def test_deleted_items_leave_their_groups(store_dir: Path) -> None:
    find_and_save(store_dir, 0.95)
    with CatalogStore.open(store_dir) as store, store.writer_lock():
        store.delete_items(["b0~mirror", "b1", "same-b"])
        groups = _grouped(store.duplicates.groups())
    assert ["b0", "b0~jpeg70", "b0~resize50", "b0~watermark"] in groups
    assert ["b1~jpeg70", "b1~resize50", "b1~watermark"] in groups
    assert not [g for g in groups if "same-a" in g]  # a group of one is no group


def test_a_run_takes_the_writer_lock(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with CatalogStore.open(store_dir) as store, store.writer_lock():
        with pytest.raises(StoreLockedError):
            find_and_save(store_dir)
        assert main(["duplicates", "--store", str(store_dir), "--quiet"]) == 3
        assert main(["duplicates", "--store", str(store_dir), "--dry-run", "--quiet"]) == 0  # reads only
    assert capsys.readouterr().err.startswith("catalens: ")
    with pytest.raises(DuplicatesError):
        find_and_save(store_dir, 1.5)


def test_cli_json_csv_and_summary(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["duplicates", "--store", str(store_dir), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["threshold"] == DEFAULT_THRESHOLD == HELP_THRESHOLD and payload["stored"] is True
    assert sorted(sorted(m["id"] for m in g["members"]) for g in payload["groups"]) == EXPECTED
    assert payload["group_count"] == len(EXPECTED) and payload["duplicate_items"] == sum(len(g) - 1 for g in EXPECTED)
    assert main(["duplicates", "--store", str(store_dir), "--csv", "--threshold", "0.9999", "--dry-run"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["item_id"], r["exact"]) for r in rows] == [("same-a", "1"), ("same-b", "1")]
    assert rows[0]["group_id"] == rows[1]["group_id"] and float(rows[0]["similarity"]) == 1.0
    assert main(["duplicates", "--store", str(store_dir), "--quiet", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert f"Found {len(EXPECTED)} groups" in out and "more groups" in out and "b0~jpeg70" in out
    with pytest.raises(SystemExit) as usage:
        main(["duplicates", "--store", str(store_dir), "--threshold", "1.5"])
    assert usage.value.code == 2
    with pytest.raises(SystemExit):
        main(["duplicates", "--store", str(store_dir), "--json", "--csv"])


def test_a_schema_4_store_is_upgraded_and_grouped(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = sqlite3.connect(store_dir / DB_NAME)
    db.executescript(
        "DROP TRIGGER items_duplicates_update; DROP TABLE duplicate_members; DROP TABLE duplicate_runs; "
        "PRAGMA user_version = 4;"
    )
    db.close()
    manifest = store_dir / MANIFEST_NAME
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": 4}))
    assert main(["duplicates", "--store", str(store_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["group_count"] == len(EXPECTED)
    assert json.loads(manifest.read_text())["schema_version"] == SCHEMA_VERSION == 6
    with CatalogStore.open(store_dir, read_only=True) as store:
        assert _grouped(store.duplicates.groups()) == EXPECTED

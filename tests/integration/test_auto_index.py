"""Index builds through the store: ``auto`` by default, every generation measured and recorded, extended
incrementally when sound, retrained when the store has doubled, and never returning a deleted item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens.indexer.pipeline import reindex
from catalens.indexer.publish import IndexGoals, index_summary, load_tuned
from catalens.indexer.records import ItemRecord
from catalens.indexer.store import CatalogStore, EmbeddedItem
from catalens.indexer.vectors import create_index
from catalens.indexer.vectors.tuning import recall
from catalens.search.cli import main
from catalens.search.engine import SearchEngine, SearchOptions
from tests.unit.test_index_auto import clustered

FAST = IndexGoals(tuning_queries=50)


def write(root: Path, model: Any, vectors: np.ndarray, first: int = 0) -> None:
    """Items ``sku-{first}``.. with the given vectors, through the store's write path."""
    store = CatalogStore.open(root) if CatalogStore.exists(root) else CatalogStore.create(root, model.spec, model.dim)
    try:
        with store.writer_lock():
            items = [
                EmbeddedItem(
                    ItemRecord(id=f"sku-{first + i}", source=f"/nowhere/{first + i}.jpg", origin="t", title="x"),
                    f"{first + i:032x}",
                    8,
                    8,
                    vector,
                )
                for i, vector in enumerate(vectors)
            ]
            for start in range(0, len(items), 1000):
                store.write_batch(embedded=items[start : start + 1000])
    finally:
        store.close()


def delete(root: Path, ids: list[str]) -> None:
    with CatalogStore.open(root) as store, store.writer_lock():
        store.delete_items(ids)


def manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "manifest.json").read_text())


def test_a_new_store_asks_for_auto_and_records_what_was_measured(tmp_path: Path, tiny_model: Any) -> None:
    root = tmp_path / "store"
    write(root, tiny_model, clustered(300, dim=tiny_model.dim))
    state = reindex(root, goals=FAST)
    raw = manifest(root)
    assert raw["index_factory"] == "auto" and raw["index"]["factory"] == "Flat"
    summary = index_summary(state)
    assert summary["chosen_by"] == "auto" and "exact scan" in summary["reason"]
    assert summary["recall_at_10"] == 1.0 and summary["target_met"] and summary["latency_ms"] > 0
    assert summary["bytes_per_vector"] >= tiny_model.dim * 4
    assert raw["index"]["tuning"]["queries"] == 50


def test_a_factory_given_by_hand_is_measured_and_reported_the_same_way(
    tmp_path: Path, tiny_model: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    write(root, tiny_model, clustered(1_500, dim=tiny_model.dim))
    assert main(["reindex", "--store", str(root), "--index", "IVF16,PQ8", "--target-recall", "0.9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["factory"] == "IVF16,PQ8" and out["chosen_by"] == "given" and out["recall_at_10"] >= 0.9
    assert out["search_params"]["nprobe"] >= 1 and out["search_params"]["rerank"] > 0
    assert manifest(root)["index_factory"] == "IVF16,PQ8"
    assert main(["info", "--store", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["index"]
    assert info["recall_at_10"] == out["recall_at_10"] and info["search_params"] == out["search_params"]
    assert main(["info", "--store", str(root)]) == 0
    assert "recall@10" in capsys.readouterr().out


def test_the_engine_serves_the_tuned_settings_with_exact_scores(tmp_path: Path, tiny_model: Any) -> None:
    root = tmp_path / "store"
    vectors = clustered(1_500, dim=tiny_model.dim)
    write(root, tiny_model, vectors)
    state = reindex(root, "IVF16,PQ8", goals=FAST)
    depth = state.tuning["params"]["rerank"] if state.tuning else 0
    assert depth > 0
    with SearchEngine.open(root, encoder=tiny_model) as engine:
        result = engine.search_vector(vectors[42], SearchOptions(k=10))
    exact = vectors @ vectors[42]
    top = np.argsort(-exact)[:10]
    assert [h.id for h in result.hits][:3] == [f"sku-{i}" for i in top[:3]]
    for hit in result.hits:  # re-ranked scores are the exact cosines, not the codes' estimates
        assert hit.score == pytest.approx(float(exact[int(hit.id.removeprefix("sku-"))]), abs=1e-5)


def test_adding_to_a_trained_index_extends_it_and_deletes_never_come_back(tmp_path: Path, tiny_model: Any) -> None:
    root = tmp_path / "store"
    vectors = clustered(2_000, dim=tiny_model.dim)
    write(root, tiny_model, vectors[:1_500])
    first = reindex(root, "IVF16,PQ8", goals=FAST)
    write(root, tiny_model, vectors[1_500:], first=1_500)
    deleted = [f"sku-{i}" for i in range(0, 1_500, 7)]
    delete(root, deleted)
    second = reindex(root, goals=FAST)
    assert second.generation == first.generation + 1 and second.count == 2_000 - len(deleted)
    assert second.tuning and first.tuning and second.tuning["trained_on"] == first.tuning["trained_on"] == 1_500
    with SearchEngine.open(root, encoder=tiny_model) as engine:
        for i in list(range(0, 1_500, 7))[:40] + [1_600, 1_900]:
            hits = engine.search_vector(vectors[i], SearchOptions(k=5)).hits
            assert not {h.id for h in hits} & set(deleted)
            if f"sku-{i}" not in deleted:  # an item's own vector finds it, under its own id
                assert hits[0].id == f"sku-{i}" and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_an_index_is_retrained_once_the_store_has_doubled_or_when_asked(tmp_path: Path, tiny_model: Any) -> None:
    root = tmp_path / "store"
    vectors = clustered(3_500, dim=tiny_model.dim)
    write(root, tiny_model, vectors[:1_500])
    reindex(root, "IVF16,PQ8", goals=FAST)
    write(root, tiny_model, vectors[1_500:], first=1_500)
    grown = reindex(root, goals=FAST)
    assert grown.tuning and grown.tuning["trained_on"] == 3_500
    forced = reindex(root, goals=IndexGoals(tuning_queries=50, retrain=True))
    assert forced.tuning and forced.tuning["trained_on"] == 3_500 and forced.generation == grown.generation + 1


def test_hnsw_with_deletions_is_rebuilt_not_extended(tmp_path: Path, tiny_model: Any) -> None:
    root = tmp_path / "store"
    vectors = clustered(1_000, dim=tiny_model.dim)
    write(root, tiny_model, vectors)
    reindex(root, "HNSW16", goals=FAST)
    delete(root, ["sku-3", "sku-4"])
    state = reindex(root, goals=FAST)
    assert state.count == 998
    with SearchEngine.open(root, encoder=tiny_model) as engine:
        assert engine.search_vector(vectors[3], SearchOptions(k=3)).hits[0].id != "sku-3"


def test_bad_index_options_are_clear_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["reindex", "--store", str(tmp_path), "--index-memory", "lots"])
    assert exited.value.code == 2 and "memory size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reindex", "--store", str(tmp_path), "--target-recall", "1.5"])
    assert "recall target" in capsys.readouterr().err


def test_an_hnsw_build_is_tuned_on_held_out_items_and_publishes_every_item_once(
    tmp_path: Path, tiny_model: Any
) -> None:
    root = tmp_path / "store"
    vectors = clustered(1_500, dim=tiny_model.dim)
    write(root, tiny_model, vectors)
    state = reindex(root, "HNSW16", goals=FAST)
    assert state.tuning and state.tuning["held_out"] and state.tuning["queries"] == 50 and state.count == 1_500
    with CatalogStore.open(root) as store:
        index, _ = load_tuned(store, state)
        parts = list(store.iter_vectors())
    keys, stored = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    assert index.size == 1_500
    exact = index.search(stored, 1, allowed=keys).ids[:, 0]  # scored exactly: each vector finds its own key
    assert np.array_equal(np.sort(exact), np.sort(keys))


@pytest.fixture(scope="module")
def graph_50k() -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """An HNSW32 graph over 50,000 clustered vectors (keys 1..50,000) at a beam of 64, and 100 new queries."""
    everything = clustered(50_100, latent=16, clusters=500, seed=3)
    vectors, queries = everything[:50_000], everything[50_000:]
    keys = np.arange(1, 50_001, dtype=np.int64)
    index = create_index("HNSW32", 64)
    index.build(lambda: iter([(keys, vectors)]), len(keys))
    index.configure({"efSearch": 64})
    return index, keys, vectors, queries


@pytest.mark.parametrize("share", [0.001, 0.01, 0.1])
def test_filtered_hnsw_search_keeps_its_recall_for_selective_filters(
    graph_50k: tuple[Any, np.ndarray, np.ndarray, np.ndarray], share: float
) -> None:
    index, keys, vectors, queries = graph_50k
    allowed = np.sort(np.random.default_rng(4).choice(keys, size=int(len(keys) * share), replace=False))
    exact = allowed[np.argsort(-(queries @ vectors[allowed - 1].T), axis=1)[:, :10]]
    found = index.search(queries, 10, allowed=allowed, hidden=allowed[:1])
    assert np.isin(found.ids[found.ids >= 0], allowed[1:]).all()
    assert recall(found.ids, np.where(exact == allowed[0], -1, exact)) >= 0.95

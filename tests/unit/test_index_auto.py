"""``--index auto``: the plan from size and memory, and the measured tuning of search settings."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from catalens.indexer.errors import IndexBuildError
from catalens.indexer.vectors import create_index
from catalens.indexer.vectors.auto import ivf_lists, parse_memory, plan_index
from catalens.indexer.vectors.rerank import rerank
from catalens.indexer.vectors.tuning import build_tuned, ground_truth, recall, retune, tune_index


def clustered(n: int, dim: int = 64, latent: int = 8, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors with a low intrinsic dimension (clusters in an ``latent``-d space mapped into ``dim``-d)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, latent))
    basis, _ = np.linalg.qr(rng.standard_normal((dim, latent)))
    points = centres[rng.integers(clusters, size=n)] + rng.normal(0, 0.5, (n, latent))
    vectors = points @ basis.T + rng.normal(0, 0.02, (n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


class Store:
    """Vectors under keys 1..n, streamed in chunks and looked up by key, as a CatalogStore offers them."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.keys = np.arange(1, len(vectors) + 1, dtype=np.int64)
        self.lookups = 0

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self.keys), 1000):
            yield self.keys[start : start + 1000], self.vectors[start : start + 1000]

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.lookups += 1
        return keys, self.vectors[keys - 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("128MB", 128 * 10**6), ("2GB", 2 * 10**9), ("512MiB", 512 * 2**20), ("1000", 1000), ("1.5 gb", 1_500_000_000)],
)
def test_memory_sizes(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-5MB", "0", "12XB"])
def test_bad_memory_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="memory size"):
        parse_memory(text)


def test_the_plan_follows_size_and_budget() -> None:
    small = plan_index(10_000, 512, 2 * 10**9)
    assert (small.factory, small.kind, small.rerank) == ("Flat", "exact", False)
    mid = plan_index(1_000_000, 512, 6 * 10**9)
    assert (mid.factory, mid.kind, mid.rerank) == ("HNSW32", "graph", False)
    tight = plan_index(1_000_000, 512, 128 * 10**6)
    assert tight.kind == "quantized" and tight.rerank and tight.estimated_bytes <= 128 * 10**6
    assert tight.factory == f"PCAR96,IVF{ivf_lists(1_000_000)},SQ8" and "budget" in tight.reason
    huge = plan_index(10_000_000, 512, 2 * 10**9)
    assert huge.factory == f"PCAR128,IVF{ivf_lists(10_000_000)}_HNSW32,SQ8" and huge.rerank
    squeezed = plan_index(1_000_000, 512, 40 * 10**6)
    assert ",PQ" in squeezed.factory and squeezed.estimated_bytes <= 40 * 10**6
    for plan in (tight, huge):
        create_index(plan.factory, 512)  # factory strings FAISS accepts
    with pytest.raises(IndexBuildError, match="raise --index-memory"):
        plan_index(1_000_000, 512, 10 * 10**6)


def test_a_refined_index_is_tuned_by_its_k_factor_and_filters_its_ids_itself() -> None:
    vectors = clustered(6_000)
    store = Store(vectors)
    index = create_index("PCAR16,PQ8x4fs,Refine(SQ8)", 64)
    index.build(store.chunks, len(vectors))
    tuning = tune_index(index, store.chunks, len(vectors), store.lookup, 0.95, queries=150)
    assert tuning.met and set(tuning.params) == {"k_factor", "rerank"}
    allowed = np.arange(1, 6_001, 50, dtype=np.int64)
    found = index.search(vectors[:5], 10, allowed=allowed, hidden=np.array([51], dtype=np.int64))
    assert np.isin(found.ids[found.ids >= 0], allowed).all() and 51 not in found.ids


def test_the_number_of_lists_grows_with_the_square_root_and_keeps_enough_points_per_list() -> None:
    assert ivf_lists(1_000_000) == 4096
    assert ivf_lists(10_000_000) == 16384
    assert ivf_lists(5_000) * 39 <= 5_000 or ivf_lists(5_000) == 64


def test_ground_truth_finds_neighbours_among_the_vectors_not_sampled() -> None:
    store = Store(clustered(2_000))
    truth = ground_truth(store.chunks, 2_000, 50, seed=1)
    assert len(truth.keys) == 50 and truth.neighbours.shape == (50, 10)
    sampled = set(truth.keys.tolist())
    for key, query, row in zip(truth.keys, truth.queries, truth.neighbours, strict=True):
        assert np.allclose(store.vectors[key - 1], query)
        exact = np.argsort(-(store.vectors @ query))
        expected = [k for k in store.keys[exact] if k not in sampled][:10]
        assert list(row) == expected


def test_recall_counts_the_true_neighbours_found() -> None:
    truth = np.array([[1, 2, 3, -1], [4, 5, 6, 7]])
    found = np.array([[3, 9, 1, 8], [4, 5, 6, 7]])
    assert recall(found, truth) == pytest.approx((2 + 4) / 7)


def test_tuning_an_hnsw_graph_reaches_the_target_on_held_out_queries() -> None:
    everything = clustered(6_100)
    vectors, queries = everything[:6_000], everything[6_000:]
    store = Store(vectors)
    index = create_index("HNSW8", 64)
    index.build(store.chunks, len(vectors))
    tuning = tune_index(index, store.chunks, len(vectors), store.lookup, 0.97, queries=200)
    assert tuning.met and tuning.recall_at_10 >= 0.97 and tuning.params["rerank"] == 0
    assert set(tuning.params) == {"efSearch", "rerank"}
    # the chosen setting is in force and holds on queries the tuning never saw
    found = index.search(queries, 10).ids
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10] + 1
    assert recall(found, exact) >= 0.93


def test_tuning_a_quantized_index_re_ranks_with_exact_vectors() -> None:
    vectors = clustered(8_000)
    store = Store(vectors)
    index = create_index("IVF64,PQ8", 64)
    index.build(store.chunks, len(vectors))
    tuning = tune_index(index, store.chunks, len(vectors), store.lookup, 0.95, queries=200)
    assert tuning.met and tuning.params["rerank"] > 0 and tuning.params["nprobe"] >= 1
    assert tuning.recall_at_10 >= 0.95 and tuning.latency_ms > 0 and tuning.p95_ms >= tuning.latency_ms
    # without re-ranking, 8-byte codes cannot order near neighbours: the measured sweep needed it
    no_rerank = index.search(vectors[:200], 11).ids
    exact = np.argsort(-(vectors[:200] @ vectors.T), axis=1)[:, :11] + 1
    assert recall(no_rerank, exact) < 0.95


def test_an_unreachable_target_keeps_the_best_setting_and_says_so() -> None:
    vectors = clustered(3_000)
    store = Store(vectors)
    index = create_index("IVF16,PQ2", 64)
    index.build(store.chunks, len(vectors))
    store.vectors = store.vectors[::-1].copy()  # the "exact" vectors now disagree: no depth can reach 0.99
    tuning = tune_index(index, store.chunks, len(vectors), store.lookup, 0.99, queries=100)
    assert not tuning.met and tuning.recall_at_10 < 0.99


def test_rerank_orders_by_exact_score_and_drops_missing_keys() -> None:
    vectors = clustered(100)
    store = Store(vectors)
    query = vectors[5]
    ids, scores = rerank(query, np.array([9, -1, 6, 50, 3], dtype=np.int64), store.lookup)
    assert list(ids) == sorted([9, 6, 50, 3], key=lambda k: -float(vectors[k - 1] @ query))
    assert np.all(np.diff(scores) <= 0)
    gone = rerank(query, np.array([1, 2]), lambda keys: (keys[:1], vectors[keys[:1] - 1]))
    assert list(gone[0]) == [1]


def test_held_out_tuning_reaches_the_target_on_new_queries_where_stored_queries_flatter_the_graph() -> None:
    everything = clustered(20_500, latent=8, clusters=200)
    vectors, new = everything[:20_000], everything[20_000:]
    exact_new = np.argsort(-(new @ vectors.T), axis=1)[:, :10] + 1
    store = Store(vectors)
    # a graph holding its queries: at a small beam they find their neighbours far more often than new ones
    whole = create_index("HNSW4", 64)
    whole.build(store.chunks, len(vectors))
    whole.configure({"efSearch": 16})
    truth = ground_truth(store.chunks, len(vectors), 300, held_out=False)
    rows = whole.search(truth.queries, 11).ids
    stored = np.array([row[row != key][:10] for key, row in zip(truth.keys, rows, strict=True)])
    assert recall(stored, truth.neighbours) > recall(whole.search(new, 10).ids, exact_new) + 0.01
    # built without its queries, tuned, then given them: the setting holds for queries it never saw
    index = create_index("HNSW4", 64)
    tuning = build_tuned(index, store.chunks, len(vectors), store.lookup, 0.95, queries=300)
    assert tuning.met and tuning.held_out and tuning.queries == 300 and tuning.trained_on == 20_000
    assert index.size == 20_000
    assert recall(index.search(new, 10).ids, exact_new) >= 0.95


def test_a_held_out_build_ends_with_every_vector_once_under_its_key() -> None:
    vectors = clustered(3_000)
    store = Store(vectors)
    index = create_index("IVF16,Flat", 64)
    tuning = build_tuned(index, store.chunks, len(vectors), store.lookup, 0.95, queries=200)
    assert tuning.met and index.size == 3_000
    found = index.search(vectors, 1, attempt=4).ids[:, 0]  # every list probed: exact
    assert np.array_equal(found, store.keys)


def test_retuning_an_extended_index_holds_its_queries_out_where_the_type_can_remove_them() -> None:
    vectors = clustered(4_000)
    store = Store(vectors)
    ivf = create_index("IVF16,Flat", 64)
    ivf.build(store.chunks, len(vectors))
    tuning = retune(ivf, store.chunks, len(vectors), store.lookup, 0.95, queries=200, trained_on=4_000)
    assert tuning.met and tuning.held_out and ivf.size == 4_000
    assert np.array_equal(ivf.search(vectors, 1, attempt=4).ids[:, 0], store.keys)
    # a graph cannot remove: measured with its queries in it, never below the last held-out setting
    graph = create_index("HNSW8", 64)
    graph.build(store.chunks, len(vectors))
    tuning = retune(graph, store.chunks, len(vectors), store.lookup, 0.95, queries=200, previous={"efSearch": 96})
    assert not tuning.held_out and tuning.params["efSearch"] >= 96 and graph.size == 4_000

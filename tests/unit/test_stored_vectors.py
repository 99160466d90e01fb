"""Reading exact vectors back from a vector index, dense key sets as bitmaps, and merging sorted key sets."""

from __future__ import annotations

import numpy as np
import pytest

from catalens.indexer.vectors import default_index_registry
from catalens.indexer.vectors.filtered import key_bitmap
from catalens.search.engine.value_keys import union_sorted

DIM = 16


def dataset(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.arange(n, dtype=np.int64) * 3 + 7, vectors  # keys with gaps, as a store's keys after deletions


@pytest.mark.parametrize("factory", ["Flat", "HNSW8"])
def test_full_vector_indexes_give_their_vectors_back_by_key(factory: str) -> None:
    keys, vectors = dataset()
    index = default_index_registry().create(factory, DIM)
    index.add(keys[:200], vectors[:200])
    asked = np.array([keys[5], 1, keys[150], keys[300], keys[0]])  # 1 and keys[300] are not in the index
    found, got = index.stored_vectors(asked)  # type: ignore[misc]
    assert found.tolist() == [keys[5], keys[150], keys[0]]
    np.testing.assert_array_equal(got, vectors[[5, 150, 0]])
    index.add(keys[200:], vectors[200:])  # the storage grows (and may move): read again, not from a stale view
    found, got = index.stored_vectors(asked)  # type: ignore[misc]
    assert found.tolist() == [keys[5], keys[150], keys[300], keys[0]]
    np.testing.assert_array_equal(got, vectors[[5, 150, 300, 0]])


@pytest.mark.parametrize("factory", ["HNSW8,SQ8", "IVF4,Flat", "PCA8,Flat"])
def test_lossy_or_unaddressable_indexes_give_none(factory: str) -> None:
    keys, vectors = dataset()
    index = default_index_registry().create(factory, DIM)
    if not index.is_trained:
        index.train(vectors)
    index.add(keys, vectors)
    assert index.stored_vectors(keys[:3]) is None


@pytest.mark.parametrize("factory", ["Flat", "HNSW8", "IVF4,Flat"])
def test_dense_hidden_and_allowed_sets_are_respected(factory: str) -> None:
    keys, vectors = dataset()
    index = default_index_registry().create(factory, DIM)
    if not index.is_trained:
        index.train(vectors)
    index.add(keys, vectors)
    hidden = keys[: len(keys) * 3 // 4]  # dense: given to FAISS as a bitmap
    assert key_bitmap(hidden) is not None
    found = index.search(vectors[:4], 20, hidden=hidden, attempt=4)
    assert not np.isin(found.ids, hidden).any()
    assert (found.ids >= 0).all()
    allowed = keys[::2]
    found = index.search(vectors[:4], 10, allowed=allowed, hidden=keys[:10], attempt=4)
    returned = found.ids[found.ids >= 0]
    assert len(returned) and np.isin(returned, np.setdiff1d(allowed, keys[:10])).all()


def test_key_bitmap_sets_one_bit_per_key_or_declines_sparse_sets() -> None:
    bits = key_bitmap(np.array([0, 3, 9], dtype=np.int64))
    assert bits is not None and np.unpackbits(bits, bitorder="little")[:10].tolist() == [1, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    assert key_bitmap(np.array([5, 10_000_000], dtype=np.int64)) is None
    assert key_bitmap(np.array([-1, 2], dtype=np.int64)) is None
    assert key_bitmap(np.zeros(0, dtype=np.int64)) is None


def test_union_sorted_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = np.unique(rng.integers(0, 60, rng.integers(0, 25)))
        b = np.unique(rng.integers(0, 60, rng.integers(0, 25)))
        np.testing.assert_array_equal(union_sorted(a, b), np.union1d(a, b))

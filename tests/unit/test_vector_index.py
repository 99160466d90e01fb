"""The VectorIndex interface on FAISS's flat, IVF and HNSW indexes, and the registry that names backends."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from catalens.indexer.errors import IndexBuildError
from catalens.indexer.vectors import (
    IndexRegistry,
    UnknownIndexBackendError,
    VectorIndex,
    VectorIndexError,
    create_index,
    list_index_backends,
    load_index,
    validate_factory,
)

DIM = 16
N = 300
REPO = Path(__file__).resolve().parents[2]


def dataset(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors under sparse keys (never their positions), as a store would hand them over."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return 1000 + 7 * np.arange(n, dtype=np.int64), vectors


def chunks_of(ids: np.ndarray, vectors: np.ndarray, size: int = 64) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size], vectors[start : start + size]


def built(factory: str) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    ids, vectors = dataset()
    index = create_index(factory, DIM)
    index.build(lambda: chunks_of(ids, vectors), len(ids))
    return index, ids, vectors


def exact_top(ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int, keep: np.ndarray) -> list[int]:
    mask = np.isin(ids, keep)
    scores = vectors[mask] @ query
    return ids[mask][np.argsort(-scores, kind="stable")[:k]].tolist()


@pytest.mark.parametrize("factory", ["Flat", "IVF4,Flat", "HNSW16"])
def test_build_add_search_and_round_trip(tmp_path: Path, factory: str) -> None:
    index, ids, vectors = built(factory)
    assert (index.size, len(index), index.dim, index.is_trained) == (N, N, DIM, True)

    # Each vector finds itself first, under its key: ids are item keys, never positions.
    found = index.search(vectors[:5], 3, attempt=4, threads=1)
    assert found.scores.shape == found.ids.shape == (5, 3)
    assert found.ids[:, 0].tolist() == ids[:5].tolist()
    np.testing.assert_allclose(found.scores[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(found.scores, axis=1) <= 1e-6)

    # A single (dim,) query is one row; k past the size is capped at the size.
    whole = index.search(vectors[0], N + 50, attempt=4)
    assert whole.ids.shape == (1, N)

    fresh_ids = np.array([5, 6], dtype=np.int64)
    fresh = -vectors[:2]
    index.add(fresh_ids, fresh)
    assert index.size == N + 2
    assert index.search(fresh[1], 1, attempt=4).ids[0, 0] == 6

    path = tmp_path / "gen-000001.faiss"
    index.save(path)
    loaded = load_index(path, factory)
    assert loaded.size == index.size and loaded.factory == factory
    queries = np.random.default_rng(3).normal(size=(4, DIM)).astype(np.float32)
    before, after = index.search(queries, 10), loaded.search(queries, 10)
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_array_equal(before.scores, after.scores)
    assert before.exhaustive == after.exhaustive


@pytest.mark.parametrize("factory", ["Flat", "IVF4,Flat", "HNSW16"])
def test_allowed_and_hidden_sets_are_respected(factory: str) -> None:
    index, ids, vectors = built(factory)
    query = vectors[10]
    allowed = ids[::9]  # 34 of 300
    hidden = allowed[:3]
    # Widened far enough, every backend reaches the exact answer over the allowed set minus the hidden one.
    found = index.search(query, 10, allowed=allowed, hidden=hidden, attempt=4)
    got = [int(i) for i in found.ids[0] if i >= 0]
    assert set(got) <= set(allowed.tolist()) - set(hidden.tolist())
    assert got == exact_top(ids, vectors, query, 10, np.setdiff1d(allowed, hidden))
    # Hidden keys alone are excluded everywhere else.
    unfiltered = index.search(vectors[:3], 5, hidden=ids[:3], attempt=4)
    assert not set(unfiltered.ids.ravel().tolist()) & set(ids[:3].tolist())


def test_widening_reports_when_a_search_is_exhaustive() -> None:
    flat, ids, vectors = built("Flat")
    ivf, _, _ = built("IVF4,Flat")
    hnsw, _, _ = built("HNSW16")
    query = vectors[0]
    # A full page may have more behind it; a short page from a complete search, or the whole index, has not.
    assert not flat.search(query, 5).exhaustive
    assert flat.search(query, N).exhaustive
    few = flat.search(query, 5, allowed=ids[:2])
    assert few.exhaustive and [i for i in few.ids[0].tolist() if i >= 0] == exact_top(ids, vectors, query, 5, ids[:2])
    # IVF4 probes 1 list at first, times 4 per widening, times sqrt(1/share) for an allowed set that keeps a
    # small share: half of the vectors -> 2 lists, then all 4; two vectors of many -> all lists at once.
    half = ids[: len(ids) // 2]
    assert not ivf.search(query, len(half) + 5, allowed=half).exhaustive
    assert ivf.search(query, len(half) + 5, allowed=half, attempt=1).exhaustive
    assert ivf.search(query, 5, allowed=ids[:2]).exhaustive
    # A graph search can always miss something; a small allowed set is scored exactly from its vectors.
    assert not hnsw.search(query, 5, attempt=4).exhaustive
    two = hnsw.search(query, 5, allowed=ids[:2])
    assert two.exhaustive and [i for i in two.ids[0].tolist() if i >= 0] == exact_top(ids, vectors, query, 5, ids[:2])


@pytest.mark.parametrize("factory", ["Flat", "IVF4,Flat"])
def test_remove(factory: str) -> None:
    index, ids, vectors = built(factory)
    assert index.remove(np.concatenate([ids[:4], [999_999]])) == 4
    assert index.size == N - 4
    found = index.search(vectors[:4], 3, attempt=4)
    assert not set(found.ids.ravel().tolist()) & set(ids[:4].tolist())


def test_hnsw_cannot_remove_in_place() -> None:
    index, ids, _ = built("HNSW16")
    with pytest.raises(VectorIndexError, match="remove") as caught:
        index.remove(ids[:2])
    assert caught.value.operation == "remove" and caught.value.factory == "HNSW16"
    assert index.size == N


def test_empty_index_and_bad_shapes() -> None:
    index = create_index("Flat", DIM)
    empty = index.search(np.ones(DIM, dtype=np.float32), 5)
    assert empty.ids.shape == (1, 0) and empty.exhaustive
    with pytest.raises(VectorIndexError, match="dimensions"):
        index.search(np.ones(DIM + 1, dtype=np.float32), 5)
    with pytest.raises(VectorIndexError, match="add"):
        index.add(np.arange(3), np.ones((2, DIM), dtype=np.float32))


def test_factory_strings_and_backends() -> None:
    assert list_index_backends() == ["faiss"]
    validate_factory("faiss:HNSW32", DIM)
    assert create_index("faiss:IVF4,Flat", DIM).factory == "IVF4,Flat"
    with pytest.raises(UnknownIndexBackendError, match="choose one of: faiss") as caught:
        validate_factory("annoy:trees=10", DIM)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, IndexBuildError)
    assert caught.value.backend == "annoy" and caught.value.choices == ("faiss",)
    with pytest.raises(IndexBuildError, match="does not understand"):
        validate_factory("NotAnIndex99", DIM)
    with pytest.raises(IndexBuildError, match="empty"):
        validate_factory("  ", DIM)
    with pytest.raises(ValueError, match="default backend"):
        IndexRegistry({}, default="faiss")


def test_training_needs_enough_vectors() -> None:
    index = create_index("IVF64,Flat", DIM)
    assert not index.is_trained
    ids, vectors = dataset(10)
    with pytest.raises(IndexBuildError, match="training on 10 vectors failed"):
        index.build(lambda: chunks_of(ids, vectors), len(ids))
    with pytest.raises(IndexBuildError, match="empty store"):
        create_index("IVF4,Flat", DIM).build(lambda: iter(()), 0)


def test_only_the_faiss_backend_imports_faiss() -> None:
    importers = []
    for folder in ("indexer", "search", "models", "catalens"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(name == "faiss" or name.startswith("faiss.") for name in names):
                    importers.append(path.relative_to(REPO).as_posix())
    assert sorted(importers) == ["indexer/vectors/faiss_backend.py", "indexer/vectors/faiss_native.py"]
    # Importing the interface, the registry and the engine loads faiss only once an index is made or loaded.
    code = "import sys, catalens.indexer.vectors, catalens.search.engine; print('faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

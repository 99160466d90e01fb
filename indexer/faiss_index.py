"""Building, saving and loading the FAISS index that is derived from a store's vectors.

Every index uses inner product on L2-normalised vectors (cosine similarity) and carries the store's
integer item keys as its ids: IVF indexes hold ids natively, every other type is wrapped in
``IndexIDMap2``. Indexes that need training are trained on a random sample of the store's vectors. When
faiss reports GPUs, training and adding run there and the result is copied back to the CPU for saving.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import faiss
import numpy as np

from catalens.indexer.errors import IndexBuildError

DEFAULT_FACTORY = "Flat"
TRAIN_SAMPLE_MAX = 256 * 1024
VectorChunks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]


def validate_factory(factory: str, dim: int) -> None:
    """Check that ``factory`` is a FAISS index-factory string usable with ``dim`` dimensions.

    Raises:
        IndexBuildError: the string is not understood by FAISS.
    """
    _make(factory, dim)


def _make(factory: str, dim: int) -> faiss.Index:
    factory = factory.strip()
    if not factory:
        raise IndexBuildError(factory, "the factory string is empty (try Flat, HNSW32 or IVF1024,PQ64)")
    try:
        index = faiss.index_factory(int(dim), factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise IndexBuildError(factory, f"FAISS does not understand it ({_last_line(e)})") from e
    if _is_ivf(index):
        return index
    return faiss.IndexIDMap2(index)


def _is_ivf(index: faiss.Index) -> bool:
    try:
        faiss.extract_index_ivf(index)
    except RuntimeError:
        return False
    return True


def gpu_count() -> int:
    """GPUs faiss can use (0 with faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def build_index(factory: str, dim: int, chunks: VectorChunks, count: int, *, seed: int = 0) -> faiss.Index:
    """Build an index over the vectors that ``chunks()`` streams.

    Args:
        factory: a FAISS index-factory string, e.g. ``"Flat"``, ``"HNSW32"``, ``"IVF1024,PQ64"``.
        dim: vector dimension.
        chunks: returns a fresh iterator of ``(ids int64, vectors float32)``; called twice when training.
        count: the number of vectors ``chunks`` yields (sizes the training sample).
        seed: seeds the training sample.

    Returns:
        A CPU index holding every vector under its id.

    Raises:
        IndexBuildError: the factory string is invalid or the index cannot be trained on this many vectors.
    """
    index = _make(factory, dim)
    use_gpu = gpu_count() > 0
    if not index.is_trained:
        sample = _training_sample(chunks, count, seed)
        try:
            if use_gpu:
                index = _train_on_gpu(index, sample)
            else:
                index.train(sample)
        except RuntimeError as e:
            raise IndexBuildError(factory, f"training on {len(sample)} vectors failed: {_last_line(e)}") from e
    target = _to_gpu(index) if use_gpu else index
    for ids, vectors in chunks():
        target.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids))
    return faiss.index_gpu_to_cpu(target) if target is not index else index


def _training_sample(chunks: VectorChunks, count: int, seed: int) -> np.ndarray:
    if count <= 0:
        raise IndexBuildError("", "an index that needs training cannot be built over an empty store")
    keep = min(count, TRAIN_SAMPLE_MAX)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(count, size=keep, replace=False))
    parts, seen = [], 0
    for _, vectors in chunks():
        lo, hi = np.searchsorted(chosen, [seen, seen + len(vectors)])
        parts.append(vectors[chosen[lo:hi] - seen])
        seen += len(vectors)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def _to_gpu(index: faiss.Index) -> faiss.Index:
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except (RuntimeError, AttributeError):
        return index  # some index types (HNSW) have no GPU version: build on the CPU


def _train_on_gpu(index: faiss.Index, sample: np.ndarray) -> faiss.Index:
    gpu = _to_gpu(index)
    gpu.train(sample)
    return faiss.index_gpu_to_cpu(gpu) if gpu is not index else index


def _last_line(error: Exception) -> str:
    """The human part of a FAISS C++ error (after the source location and the failed assertion)."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    return text.splitlines()[-1].rsplit("failed: ", 1)[-1].rsplit("Error: ", 1)[-1]


def write_index(index: faiss.Index, path: Path) -> None:
    """Serialise an index (use through :meth:`CatalogStore.publish_index`, which makes it atomic)."""
    faiss.write_index(index, str(path))


def read_index(path: Path) -> faiss.Index:
    """Load an index file into memory."""
    return faiss.read_index(str(path))


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product search; returns ``(scores (n, k), ids (n, k))`` with ``-1`` ids where fewer exist."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if queries.ndim == 1:
        queries = queries[None, :]
    scores, ids = index.search(queries, int(k))
    return scores, ids

"""The FAISS backend: every index FAISS's index factory can describe, searched by inner product.

Every index uses inner product on L2-normalised vectors (cosine similarity) and carries the store's integer
item keys as its ids: IVF indexes hold ids natively, every other type is wrapped in ``IndexIDMap2``. Indexes
that need training are trained on a random sample of the store's vectors. When faiss reports GPUs, training
and adding run there and the result is copied back to the CPU for saving. The file format is FAISS's own
(``faiss.write_index``), so stores written before this module existed load unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import faiss
import numpy as np

from catalens.indexer.errors import IndexBuildError
from catalens.indexer.vectors.base import VectorChunks, VectorIndex, VectorSearch, as_query_matrix, training_sample
from catalens.indexer.vectors.errors import VectorIndexError


def gpu_count() -> int:
    """GPUs faiss can use (0 with faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class FaissIndex(VectorIndex):
    """A FAISS index built from an index-factory string such as ``Flat``, ``HNSW32`` or ``IVF1024,PQ64``.

    Searches widen per attempt: IVF indexes probe four times as many lists each attempt (up to all of them,
    which makes the search exhaustive), HNSW graphs double their beam (``efSearch``); a flat index is always
    exhaustive.
    """

    def __init__(self, index: faiss.Index, factory: str) -> None:
        """Wrap a FAISS index; use :meth:`create` or :meth:`load` rather than calling this directly."""
        self._index = index
        self._factory = factory

    @classmethod
    def create(cls, factory: str, dim: int) -> Self:
        return cls(_make(factory, dim), factory)

    @classmethod
    def load(cls, path: Path, factory: str) -> Self:
        return cls(faiss.read_index(str(path)), factory)

    @property
    def factory(self) -> str:
        return self._factory

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    @property
    def native(self) -> faiss.Index:
        """The wrapped FAISS index, for tuning beyond this interface (e.g. a fixed ``nprobe``)."""
        return self._index

    def train(self, vectors: np.ndarray) -> None:
        sample = np.ascontiguousarray(vectors, dtype=np.float32)
        try:
            if gpu_count() > 0:
                self._index = _train_on_gpu(self._index, sample)
            else:
                self._index.train(sample)
        except RuntimeError as e:
            raise IndexBuildError(self._factory, f"training on {len(sample)} vectors failed: {_last_line(e)}") from e

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        keys, matrix = self._checked(ids, vectors)
        try:
            self._index.add_with_ids(matrix, keys)
        except RuntimeError as e:
            raise VectorIndexError(self._factory, "add", _last_line(e)) from e

    def build(self, chunks: VectorChunks, count: int, *, seed: int = 0) -> None:
        """Train and add on the GPUs when faiss has any (one copy there for all chunks), else on the CPU."""
        if not self.is_trained:
            self.train(training_sample(chunks, count, seed))
        index = self._index
        target = _to_gpu(index) if gpu_count() > 0 else index
        for ids, vectors in chunks():
            target.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids))
        self._index = faiss.index_gpu_to_cpu(target) if target is not index else index

    def remove(self, ids: np.ndarray) -> int:
        lib: Any = faiss  # the SWIG constructors take numpy arrays, which faiss's type stubs do not declare
        selector = lib.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64).reshape(-1))
        try:
            return int(self._index.remove_ids(selector))
        except RuntimeError as e:
            reason = "FAISS cannot remove vectors from this index type; build a new index without them instead"
            raise VectorIndexError(self._factory, "remove", reason) from e

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        hidden: np.ndarray | None = None,
        attempt: int = 0,
        threads: int | None = None,
    ) -> VectorSearch:
        matrix = as_query_matrix(queries)
        if matrix.shape[1] != self.dim:
            reason = f"queries have {matrix.shape[1]} dimensions, not {self.dim}"
            raise VectorIndexError(self._factory, "search", reason)
        size = self.size
        n = min(int(k), size)
        if n <= 0:
            empty = (len(matrix), 0)
            return VectorSearch(np.zeros(empty, dtype=np.float32), np.zeros(empty, dtype=np.int64), True)
        hidden = np.zeros(0, dtype=np.int64) if hidden is None else hidden
        params, complete = _search_params(self._index, allowed, hidden, n, attempt)
        if threads is not None:
            # The setting is per calling thread (OpenMP). For one query at a time, right after a model forward
            # pass whose OpenMP workers still spin, a second FAISS thread team fighting them for the cores made
            # text queries ~3 ms slower on 2 cores (measured): the engine asks for 1.
            faiss.omp_set_num_threads(threads)
        scores, ids = self._index.search(matrix, n, params=params)
        short = bool(np.all((ids >= 0).sum(axis=1) < n))
        return VectorSearch(scores, ids, complete and (short or n >= size))

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    def _checked(self, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape != (len(keys), self.dim):
            reason = f"expected {len(keys)} vectors of {self.dim} dimensions, got shape {matrix.shape}"
            raise VectorIndexError(self._factory, "add", reason)
        return keys, matrix


def _make(factory: str, dim: int) -> faiss.Index:
    factory = factory.strip()
    if not factory:
        raise IndexBuildError(factory, "the factory string is empty (try Flat, HNSW32 or IVF1024,PQ64)")
    try:
        index = faiss.index_factory(int(dim), factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise IndexBuildError(factory, f"FAISS does not understand it ({_last_line(e)})") from e
    if _ivf_of(index) is not None:
        return index
    return faiss.IndexIDMap2(index)


def _ivf_of(index: faiss.Index) -> Any:
    """The IVF part of an index, or ``None`` for index types without inverted lists."""
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _search_params(
    index: faiss.Index, allowed: np.ndarray | None, hidden: np.ndarray, k: int, attempt: int
) -> tuple[Any, bool]:
    """FAISS search parameters for ``allowed`` keys minus ``hidden`` ones, widened by ``attempt``.

    Returns the parameters and whether a search with them visits every vector (so fewer than ``k`` results
    mean there are no more matches).
    """
    lib: Any = faiss  # the SWIG constructors take keyword arguments that faiss's type stubs do not declare
    if allowed is not None:
        selector: Any = lib.IDSelectorBatch(np.setdiff1d(allowed, hidden, assume_unique=True))
    elif len(hidden):
        selector = lib.IDSelectorNot(lib.IDSelectorBatch(hidden))
    else:
        selector = None
    ivf = _ivf_of(index)
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    if ivf is not None:
        nprobe = min(int(ivf.nlist), int(ivf.nprobe) * 4**attempt)
        params: Any = lib.SearchParametersIVF(sel=selector, nprobe=nprobe)
        complete = nprobe >= ivf.nlist
    elif isinstance(inner, faiss.IndexHNSW):
        params = lib.SearchParametersHNSW(sel=selector, efSearch=max(int(inner.hnsw.efSearch), k) * 2**attempt)
        complete = False
    else:
        params = lib.SearchParameters(sel=selector) if selector is not None else None
        complete = True
    if params is not None:
        params._keepalive = selector  # FAISS holds a raw pointer; keep the selector alive with the params
    return params, complete


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

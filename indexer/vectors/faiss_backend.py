"""The FAISS backend: every index FAISS's index factory can describe, searched by inner product.

Every index uses inner product on L2-normalised vectors (cosine similarity) and carries the store's integer
item keys as its ids: IVF indexes hold ids natively, every other type is wrapped in ``IndexIDMap2``. Indexes
that need training are trained on a random sample of the store's vectors. When faiss reports GPUs, training
and adding run there and the result is copied back to the CPU for saving. The file format is FAISS's own
(``faiss.write_index``), so stores written before this module existed load unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import faiss
import numpy as np

from catalens.indexer.errors import IndexBuildError
from catalens.indexer.vectors.base import (
    RangeSearch,
    SearchKnob,
    VectorChunks,
    VectorIndex,
    VectorSearch,
    as_query_matrix,
    training_sample,
)
from catalens.indexer.vectors.errors import VectorIndexError
from catalens.indexer.vectors.faiss_native import (
    inner_index,
    ivf_of,
    last_line,
    make_index,
    omp_threads,
    refine_of,
    search_params,
    stores_full_vectors,
    to_gpu,
    train_on_gpu,
)
from catalens.indexer.vectors.filtered import KeyPositions, exact_top, filtered_ef, use_exact

#: ``k_factor`` values the tuning tries for refined indexes (candidates re-scored by the refine codes, per result).
REFINE_K_FACTORS = (1, 2, 4, 8, 12, 16, 25, 32, 50, 64, 100)
#: ``efSearch`` values the tuning tries for HNSW graphs.
HNSW_EF_VALUES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


def gpu_count() -> int:
    """GPUs faiss can use (0 with faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class FaissIndex(VectorIndex):
    """A FAISS index built from an index-factory string such as ``Flat``, ``HNSW32`` or ``IVF1024,PQ64``.

    Searches widen per attempt: IVF indexes probe four times as many lists each attempt (up to all of them,
    which makes the search exhaustive), HNSW graphs double their beam (``efSearch``); a flat index is always
    exhaustive. Selective filters widen the first attempt too (more lists, a larger beam), and an HNSW graph
    with full vectors scores allowed sets up to a share of the index exactly from its storage
    (:mod:`.filtered`).
    """

    def __init__(self, index: faiss.Index, factory: str) -> None:
        """Wrap a FAISS index; use :meth:`create` or :meth:`load` rather than calling this directly."""
        self._index = index
        self._factory = factory
        self._positions: KeyPositions | None = None  # keys to storage rows, made on the first filtered search
        self._flat: tuple[KeyPositions, Any] | None = None  # the positions and the flat storage stored_vectors read

    @classmethod
    def create(cls, factory: str, dim: int) -> Self:
        return cls(make_index(factory, dim), factory)

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
    def exact_scores(self) -> bool:
        """Full float vectors (``Flat``, ``HNSW..``, ``IVF..,Flat`` without a transform) score exactly."""
        return stores_full_vectors(self._index)

    def search_knob(self) -> SearchKnob | None:
        """``nprobe`` (powers of two up to the number of lists) for IVF, ``efSearch`` for HNSW graphs."""
        if refine_of(self._index) is not None and ivf_of(self._index) is None:
            return SearchKnob("k_factor", REFINE_K_FACTORS)
        ivf = ivf_of(self._index)
        if ivf is not None:
            lists = int(ivf.nlist)
            values = [2**i for i in range(lists.bit_length()) if 2**i < lists] + [lists]
            return SearchKnob("nprobe", tuple(values))
        if isinstance(inner_index(self._index), faiss.IndexHNSW):
            return SearchKnob("efSearch", HNSW_EF_VALUES)
        return None

    def configure(self, params: Mapping[str, int]) -> None:
        knob = self.search_knob()
        for name, value in params.items():
            if knob is None or name != knob.name or int(value) < 1:
                reason = f"{name}={value} is not a search setting of this index"
                raise VectorIndexError(self._factory, "configure", reason)
            if name == "nprobe":
                ivf_of(self._index).nprobe = min(int(value), int(ivf_of(self._index).nlist))
            elif name == "k_factor":
                refine_of(self._index).k_factor = float(value)
            else:
                inner_index(self._index).hnsw.efSearch = int(value)

    @property
    def native(self) -> faiss.Index:
        """The wrapped FAISS index, for tuning beyond this interface (e.g. a fixed ``nprobe``)."""
        return self._index

    def train(self, vectors: np.ndarray) -> None:
        sample = np.ascontiguousarray(vectors, dtype=np.float32)
        self._positions = None
        try:
            if gpu_count() > 0:
                self._index = train_on_gpu(self._index, sample)
            else:
                self._index.train(sample)
        except RuntimeError as e:
            raise IndexBuildError(self._factory, f"training on {len(sample)} vectors failed: {last_line(e)}") from e

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        keys, matrix = self._checked(ids, vectors)
        self._positions = None
        try:
            self._index.add_with_ids(matrix, keys)
        except RuntimeError as e:
            raise VectorIndexError(self._factory, "add", last_line(e)) from e

    def build(self, chunks: VectorChunks, count: int, *, seed: int = 0) -> None:
        """Train and add on the GPUs when faiss has any (one copy there for all chunks), else on the CPU."""
        if not self.is_trained:
            self.train(training_sample(chunks, count, seed))
        self._positions = None
        index = self._index
        target = to_gpu(index) if gpu_count() > 0 else index
        for ids, vectors in chunks():
            target.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids))
        self._index = faiss.index_gpu_to_cpu(target) if target is not index else index

    def remove(self, ids: np.ndarray) -> int:
        lib: Any = faiss  # the SWIG constructors take numpy arrays, which faiss's type stubs do not declare
        selector = lib.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64).reshape(-1))
        self._positions = None
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
        # For one query at a time, right after a model forward pass whose OpenMP workers still spin, a second
        # FAISS thread team fighting them for the cores made text queries ~3 ms slower on 2 cores (measured):
        # the engine asks for 1.
        with omp_threads(threads):
            return self._search(matrix, n, size, allowed, hidden, attempt)

    def _search(
        self, matrix: np.ndarray, n: int, size: int, allowed: np.ndarray | None, hidden: np.ndarray, attempt: int
    ) -> VectorSearch:
        if refine_of(self._index) is not None:
            return self._search_then_filter(matrix, n, allowed, hidden, attempt)
        if allowed is not None and self._scores_allowed_exactly(len(allowed), n):
            return self._search_allowed(matrix, n, np.setdiff1d(allowed, hidden))
        params, complete = search_params(self._index, allowed, hidden, n, attempt)
        scores, ids = self._raw_search(matrix, n, params)
        short = bool(np.all((ids >= 0).sum(axis=1) < n))
        return VectorSearch(scores, ids, complete and (short or n >= size))

    def range_search(self, queries: np.ndarray, threshold: float, *, threads: int | None = None) -> RangeSearch:
        """FAISS's own range search (tuned ``nprobe``); the k-NN default for HNSW graphs and where FAISS has none.

        FAISS 1.15's HNSW range search aborts the process once the queries span more than one of its interrupt
        checks (1e8 / (levels x dim x efSearch) queries: 763 at 512-d, efSearch 64). Behind a PCA step the index
        compares squared L2 distances: cosine ``t`` is distance ``2 - 2t``.
        """
        graph = inner_index(self._index)
        graph = faiss.downcast_index(graph.index) if isinstance(graph, faiss.IndexPreTransform) else graph
        l2 = self._index.metric_type == faiss.METRIC_L2
        if not isinstance(graph, faiss.IndexHNSW):
            with contextlib.suppress(RuntimeError), omp_threads(threads):  # RuntimeError: FAISS has none for it
                radius = 2 - 2 * threshold if l2 else threshold
                lims, scores, ids = self._index.range_search(as_query_matrix(queries), radius)
                scores = 1.0 - scores / 2.0 if l2 else scores
                return RangeSearch(lims.astype(np.int64), scores.astype(np.float32), ids.astype(np.int64))
        return super().range_search(queries, threshold, threads=threads)

    def stored_vectors(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Rows of a ``Flat`` index or an HNSW graph's flat storage, through the id map (60 keys: 0.03 ms, against
        1 ms from SQLite); ``None`` for codes, transforms and IVF (whose lists cannot be addressed by key)."""
        lib: Any = faiss  # rev_swig_ptr and the SWIG attributes are not in faiss's type stubs
        flat = self._flat
        if flat is None or flat[0] is not self._positions:  # made again with the key map (after changes)
            inner = inner_index(self._index)
            if inner is self._index or not stores_full_vectors(self._index):
                return None
            storage = lib.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner
            if not isinstance(storage, faiss.IndexFlat):
                return None
            if self._positions is None:  # a benign race between threads: both make the same map
                self._positions = KeyPositions(lib.vector_to_array(lib.downcast_index(self._index).id_map))
            flat = self._flat = (self._positions, storage)
        positions, storage = flat
        found, rows = positions.rows(np.ascontiguousarray(keys, dtype=np.int64).reshape(-1))
        every = lib.rev_swig_ptr(storage.get_xb(), storage.ntotal * self.dim)  # a view of the vectors, no copy
        return found, every.reshape(-1, self.dim)[rows]  # fancy indexing copies the rows out

    def _scores_allowed_exactly(self, allowed: int, k: int) -> bool:
        """An HNSW graph over full vectors, and an allowed set small enough (:func:`filtered.use_exact`)."""
        inner = inner_index(self._index)
        if inner is self._index or not isinstance(inner, faiss.IndexHNSW) or not stores_full_vectors(self._index):
            return False
        if self._index.metric_type != faiss.METRIC_INNER_PRODUCT:
            return False
        return use_exact(allowed, filtered_ef(max(int(inner.hnsw.efSearch), k), allowed, self.size))

    def _search_allowed(self, matrix: np.ndarray, n: int, allowed: np.ndarray) -> VectorSearch:
        """The allowed keys scored exactly from the graph's stored vectors: exhaustive over them."""
        lib: Any = faiss  # swig_ptr, the distance kernels and the SWIG attributes are not in faiss's type stubs
        mapped: Any = self._index
        storage: Any = lib.downcast_index(inner_index(mapped).storage)
        positions = self._positions
        if positions is None:  # a benign race between threads: both make the same map
            positions = self._positions = KeyPositions(lib.vector_to_array(mapped.id_map))
        keys, rows = positions.rows(np.ascontiguousarray(allowed, dtype=np.int64))

        def score(query: np.ndarray, at: np.ndarray) -> np.ndarray:
            # FAISS reads the rows in place: gathering them into numpy and multiplying there was 3-5x slower
            # (measured, 2,000-20,000 rows of 512-d, one thread)
            out = np.empty(len(at), dtype=np.float32)
            lib.fvec_inner_products_by_idx(
                lib.swig_ptr(out), lib.swig_ptr(query), storage.get_xb(), lib.swig_ptr(at), self.dim, 1, len(at)
            )
            return out

        scores, ids = exact_top(matrix, keys, rows, n, score)
        return VectorSearch(scores, ids, True)

    def _raw_search(self, matrix: np.ndarray, n: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._index.search(matrix, n, params=params)
        if self._index.metric_type == faiss.METRIC_L2:  # squared distances of unit vectors -> cosines
            scores = np.where(ids >= 0, 1.0 - scores / 2.0, scores).astype(np.float32, copy=False)
        return scores, ids

    def _search_then_filter(
        self, matrix: np.ndarray, n: int, allowed: np.ndarray | None, hidden: np.ndarray, attempt: int
    ) -> VectorSearch:
        """Refined and fast-scan indexes ignore FAISS's id selectors: fetch more, then filter the ids here.

        The fetch covers the hidden ids, and for an allowed set the inverse of its share of the index (twice
        over), growing four times with each attempt; a fetch of the whole index is exhaustive.
        """
        size = self.size
        fetch = n + len(hidden)
        if allowed is not None:
            fetch = n * 2 * -(-size // max(len(allowed), 1)) + len(hidden)
        fetch = min(size, fetch * 4**attempt)
        scores, ids = self._raw_search(matrix, fetch, None)
        keep = ids >= 0
        if len(hidden):
            keep &= ~np.isin(ids, hidden)
        if allowed is not None:
            keep &= np.isin(ids, allowed)
        out_scores = np.full((len(ids), n), -np.inf, dtype=np.float32)
        out_ids = np.full((len(ids), n), -1, dtype=np.int64)
        for row in range(len(ids)):
            kept = np.flatnonzero(keep[row])[:n]
            out_scores[row, : len(kept)] = scores[row, kept]
            out_ids[row, : len(kept)] = ids[row, kept]
        short = bool(np.all((out_ids >= 0).sum(axis=1) < n))
        return VectorSearch(out_scores, out_ids, fetch >= size and (short or n >= size))

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    def _checked(self, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape != (len(keys), self.dim):
            reason = f"expected {len(keys)} vectors of {self.dim} dimensions, got shape {matrix.shape}"
            raise VectorIndexError(self._factory, "add", reason)
        return keys, matrix

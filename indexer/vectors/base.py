"""The interface every vector index implements, and the parts of building one that no backend changes.

A vector index holds unit vectors under the store's integer item keys and answers inner-product (cosine)
searches. It is derived data: the store's SQLite vectors are the truth, an index is built from them, saved
as one generation file (through :meth:`CatalogStore.publish_index`, which makes the write atomic) and loaded
read-only by the query engine. Searches take an *allowed* set (a metadata filter's matches) and a *hidden*
set (keys removed or re-embedded since the index was built) and can be widened step by step when an
approximate index returns too few matches; the engine needs nothing else, so a new backend only has to
implement this class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple, Self

import numpy as np

from catalens.indexer.errors import IndexBuildError
from catalens.indexer.vectors.errors import VectorIndexError

#: Returns a fresh iterator of ``(ids int64 (n,), vectors float32 (n, dim))`` chunks; called once per pass.
VectorChunks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
#: Indexes that need training are trained on a random sample of at most this many vectors.
TRAIN_SAMPLE_MAX = 256 * 1024


class VectorSearch(NamedTuple):
    """What a search found, best first per query row.

    Attributes:
        scores: ``(queries, width)`` float32 inner products; ``width`` is ``min(k, size)``.
        ids: ``(queries, width)`` int64 item keys, ``-1`` past the last match a row found.
        exhaustive: nothing more is there to find: the search visited every vector it was allowed to and
            every row came back short of ``width`` matches (or ``width`` is the whole index), so neither a
            wider search (higher ``attempt``) nor a larger ``k`` would return more.
    """

    scores: np.ndarray
    ids: np.ndarray
    exhaustive: bool


class RangeSearch(NamedTuple):
    """Every vector scoring at least a threshold against each query, in FAISS's compressed-row layout.

    Attributes:
        lims: ``(queries + 1,)`` int64; query ``i``'s matches are ``scores[lims[i]:lims[i + 1]]`` and
            ``ids[lims[i]:lims[i + 1]]``, in no particular order.
        scores: float32 inner products as the index computes them (approximate for a lossy index).
        ids: int64 item keys.
    """

    lims: np.ndarray
    scores: np.ndarray
    ids: np.ndarray


class SearchKnob(NamedTuple):
    """The one search-time setting that trades speed for recall, and the values worth trying, cheapest first.

    Attributes:
        name: the setting's name as :meth:`VectorIndex.configure` takes it (``nprobe``, ``efSearch``).
        values: ascending values; larger is slower and finds more.
    """

    name: str
    values: tuple[int, ...]


class VectorIndex(ABC):
    """A searchable set of unit vectors keyed by item key, built from a factory string.

    Implementations are registered by backend name in :class:`~catalens.indexer.vectors.registry.IndexRegistry`
    and created or loaded through it. An index is mutable while it is built (``train``, ``add``, ``remove``)
    and used read-only once loaded for queries, where ``search`` may be called from many threads at once.
    """

    @classmethod
    @abstractmethod
    def create(cls, factory: str, dim: int) -> Self:
        """A new, empty index.

        Args:
            factory: the backend's own description of the index (for FAISS an index-factory string).
            dim: vector dimension.

        Raises:
            IndexBuildError: the factory string is not valid for this backend.
        """

    @classmethod
    @abstractmethod
    def load(cls, path: Path, factory: str) -> Self:
        """Read an index that :meth:`save` wrote; ``factory`` is the string it was created from."""

    @property
    @abstractmethod
    def factory(self) -> str:
        """The factory string the index was created from (as the backend received it)."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector dimension."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Vectors held."""

    @property
    @abstractmethod
    def is_trained(self) -> bool:
        """Whether vectors can be added (indexes that cluster or quantise need :meth:`train` first)."""

    def __len__(self) -> int:
        return self.size

    @property
    def exact_scores(self) -> bool:
        """Whether search scores are exact inner products (full vectors), so re-ranking cannot improve them."""
        return True

    def search_knob(self) -> SearchKnob | None:
        """The setting :mod:`.tuning` sweeps to reach a recall target; ``None`` for exact indexes."""
        return None

    def configure(self, params: Mapping[str, int]) -> None:
        """Set search-time defaults (the tuned ``nprobe`` / ``efSearch``); widened searches start from them.

        Raises:
            VectorIndexError: a setting this index does not have.
        """
        if params:
            reason = f"it has no search settings (asked for {', '.join(sorted(params))})"
            raise VectorIndexError(self.factory, "configure", reason)

    @abstractmethod
    def train(self, vectors: np.ndarray) -> None:
        """Fit the index's clustering or quantiser to a sample of ``(n, dim)`` float32 vectors.

        Raises:
            IndexBuildError: the index cannot be trained on this sample (e.g. fewer vectors than clusters).
        """

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (``(n, dim)`` float32, L2-normalised) under ``ids`` (``(n,)`` int64 item keys).

        Raises:
            VectorIndexError: the index is not trained or the shapes do not match.
        """

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Remove the vectors held under ``ids``; returns how many were removed (absent ids are ignored).

        Raises:
            VectorIndexError: the index type cannot remove vectors in place (rebuild it instead).
        """

    @abstractmethod
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
        """The ``k`` best vectors by inner product for each query.

        Args:
            queries: ``(dim,)`` or ``(n, dim)`` float32 unit vectors.
            k: results per query (capped at :attr:`size`).
            allowed: if given, only these ids (unique int64) may be returned.
            hidden: ids never returned (unique int64): removed or re-embedded after the index was built.
            attempt: 0 for a normal search; each further attempt searches more widely (more clusters probed,
                a larger graph beam) so that selective ``allowed`` sets still reach enough matches.
            threads: threads the backend may use for this search (``None``: leave its setting alone).

        Returns:
            Scores, ids and whether the search was exhaustive (see :class:`VectorSearch`).
        """

    def range_search(self, queries: np.ndarray, threshold: float, *, threads: int | None = None) -> RangeSearch:
        """Every vector whose inner product with a query is at least ``threshold`` (as far as the index finds).

        This default asks :meth:`search` for the best few and asks again, four times wider, for the queries
        whose last result still reached the threshold; backends with a native range search override it.

        Args:
            queries: ``(dim,)`` or ``(n, dim)`` float32 unit vectors.
            threshold: the lowest inner product returned.
            threads: as for :meth:`search`.
        """
        matrix = as_query_matrix(queries)
        rows: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.float32), np.zeros(0, np.int64))] * len(matrix)
        pending, k = np.arange(len(matrix)), 64
        while len(pending):
            found = self.search(matrix[pending], min(k, self.size), threads=threads)
            keep = (found.ids >= 0) & (found.scores >= threshold)
            for row, query in enumerate(pending):
                rows[query] = (found.scores[row][keep[row]], found.ids[row][keep[row]])
            full = keep.all(axis=1) if found.ids.shape[1] else np.zeros(len(pending), dtype=bool)
            pending = pending[full] if k < self.size else pending[:0]
            k *= 4
        lims = np.concatenate([[0], np.cumsum([len(ids) for _, ids in rows])]).astype(np.int64)
        scores = np.concatenate([s for s, _ in rows]) if rows else np.zeros(0, np.float32)
        ids = np.concatenate([i for _, i in rows]) if rows else np.zeros(0, np.int64)
        return RangeSearch(lims, scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False))

    def stored_vectors(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The exact vectors held under ``keys``, read from the index's own storage, or ``None`` when it keeps none.

        Lets the query side score or compare candidates without reading their vectors back from SQLite (a
        recommendation's candidates, MMR's pool). Indexes that store only lossy codes (or cannot address a
        vector by key) return ``None``, and so does this default: callers then read the store.

        Returns:
            ``(keys found, (n, dim) float32 vectors)``; keys the index does not hold are left out.
        """
        return None

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the index to ``path`` (not atomic: publish through :meth:`CatalogStore.publish_index`)."""

    def build(self, chunks: VectorChunks, count: int, *, seed: int = 0) -> None:
        """Train (if the index needs it) on a random sample of the streamed vectors, then add them all.

        Args:
            chunks: streams ``(ids, vectors)``; called twice when training.
            count: the number of vectors ``chunks`` yields (sizes the training sample).
            seed: seeds the training sample.

        Raises:
            IndexBuildError: the index needs training and there are no vectors, or training failed.
        """
        if not self.is_trained:
            self.train(training_sample(chunks, count, seed))
        for ids, vectors in chunks():
            self.add(ids, vectors)


def training_sample(chunks: VectorChunks, count: int, seed: int) -> np.ndarray:
    """A seeded random sample of at most :data:`TRAIN_SAMPLE_MAX` of the ``count`` streamed vectors.

    Raises:
        IndexBuildError: ``count`` is 0 (an index that needs training cannot be built over nothing).
    """
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


def as_query_matrix(queries: np.ndarray) -> np.ndarray:
    """Queries as a C-contiguous ``(n, dim)`` float32 matrix (a single ``(dim,)`` vector becomes one row)."""
    matrix = np.ascontiguousarray(queries, dtype=np.float32)
    return matrix[None, :] if matrix.ndim == 1 else matrix

"""Pairs of items whose vectors are at least a threshold alike: a range search on the current index generation
plus an exact comparison with the items embedded since it was built.

The index is loaded as the query engine loads it (:func:`~catalens.indexer.publish.load_tuned`: checked, with its
tuned ``nprobe`` / ``efSearch``), and the store's changes after it (:meth:`CatalogStore.changes_since`) are
compared exactly, so items added since the last ``reindex`` are grouped too and removed ones never are. A lossy
index (PQ or SQ codes, a PCA step) is searched a margin below the threshold and its candidates re-scored with
the store's exact vectors, so the threshold is applied to true cosines whatever the index. Without a usable
index (none published, or its file damaged) every vector is compared exactly.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from catalens.indexer.errors import IndexDamagedError
from catalens.indexer.publish import load_tuned
from catalens.indexer.store import CatalogStore
from catalens.indexer.vectors import VectorIndex

log = logging.getLogger("catalens.index")

#: How far below the threshold a lossy index is searched before exact re-scoring. Product-quantised scores of
#: near-identical unit vectors were measured off by up to ~0.03 (IVF16,PQ8 on 32-d); 0.05 leaves room.
LOSSY_MARGIN = 0.05
#: Exactly compared vectors per block (queries x block floats held at once: 1,024 x 8,192 x 4 B = 32 MB).
EXACT_BLOCK = 8192


class Pairs(NamedTuple):
    """Similar pairs, each with ``a < b`` (int64 keys) and its exact cosine (float32)."""

    a: np.ndarray
    b: np.ndarray
    scores: np.ndarray


class Neighbours:
    """Finds, for batches of the store's vectors, every other item at least ``threshold`` alike.

    Attributes:
        generation: the index generation searched, ``None`` when every vector is compared exactly.
        exact_count: vectors compared exactly (embedded since the index was built, or all without one).
    """

    def __init__(self, store: CatalogStore, threshold: float) -> None:
        self._store = store
        self._threshold = float(threshold)
        self._index: VectorIndex | None = None
        self.generation: int | None = None
        seq = 0
        state = store.manifest.index
        if state is not None:
            try:
                self._index, _ = load_tuned(store, state)
                self.generation, seq = state.generation, state.seq
            except IndexDamagedError as e:
                log.warning("%s; comparing every vector in SQLite exactly instead", e)
        keys, vectors, removed = store.changes_since(seq)
        self._delta_keys, self._delta = keys, np.ascontiguousarray(vectors, dtype=np.float32)
        self._hidden = np.union1d(removed, keys) if self._index is not None else np.zeros(0, dtype=np.int64)
        self.exact_count = len(keys)

    def pairs(self, keys: np.ndarray, vectors: np.ndarray) -> Pairs:
        """The similar pairs involving the items ``keys`` (with their ``vectors``), each pair once."""
        found = [self._exact(keys, vectors)]
        if self._index is not None and self._index.size:
            found.append(self._searched(self._index, keys, vectors))
        a = np.concatenate([p.a for p in found])
        b = np.concatenate([p.b for p in found])
        scores = np.concatenate([p.scores for p in found])
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keep = lo != hi
        lo, hi, scores = lo[keep], hi[keep], scores[keep]
        # A pair found from both sides (or by both routes) once: the first of each (lo, hi).
        _, first = np.unique(np.stack([lo, hi]), axis=1, return_index=True)
        return Pairs(lo[first], hi[first], scores[first])

    def _searched(self, index: VectorIndex, keys: np.ndarray, vectors: np.ndarray) -> Pairs:
        lossy = not index.exact_scores
        found = index.range_search(vectors, self._threshold - LOSSY_MARGIN if lossy else self._threshold)
        rows = np.repeat(np.arange(len(keys)), np.diff(found.lims))
        ids, scores = found.ids, found.scores
        keep = ids >= 0
        if len(self._hidden):
            keep &= ~np.isin(ids, self._hidden)
        rows, ids, scores = rows[keep], ids[keep], scores[keep]
        if lossy and len(ids):
            wanted = np.unique(ids)
            have, exact = self._store.vectors_for(wanted.tolist())
            order = np.argsort(have)
            have, exact = have[order], exact[order]
            at = np.minimum(np.searchsorted(have, ids), max(len(have) - 1, 0))
            present = (have[at] == ids) if len(have) else np.zeros(len(ids), dtype=bool)
            rows, ids, at = rows[present], ids[present], at[present]
            scores = np.einsum("ij,ij->i", vectors[rows], exact[at])
        keep = scores >= self._threshold
        return Pairs(keys[rows[keep]], ids[keep], scores[keep].astype(np.float32))

    def _exact(self, keys: np.ndarray, vectors: np.ndarray) -> Pairs:
        parts: list[Pairs] = []
        for start in range(0, len(self._delta_keys), EXACT_BLOCK):
            block = self._delta[start : start + EXACT_BLOCK]
            scores = vectors @ block.T
            rows, cols = np.nonzero(scores >= self._threshold)
            parts.append(Pairs(keys[rows], self._delta_keys[start + cols], scores[rows, cols]))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return Pairs(empty, empty, np.zeros(0, dtype=np.float32))
        return Pairs(*(np.concatenate(column) for column in zip(*parts, strict=True)))

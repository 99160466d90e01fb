"""Filtered searches in an HNSW graph: score small allowed sets exactly from the graph's own stored vectors.

A graph search with an id selector walks the graph as usual and only keeps the allowed nodes it meets; when
the filter keeps a small share of the vectors, the beam tuned for unfiltered recall meets too few of them
(measured, 200k x 512, HNSW32 at its tuned efSearch of 64, a random 1 % allowed set: recall@10 0.59; a 0.1 %
one still 0.87 at a beam of 3,072). An
``IndexHNSWFlat`` keeps every vector in full, so an allowed set can instead be scored exactly: its keys are
mapped to storage rows (a sorted copy of the id map, made once per index state) and their vectors are read
straight from the storage, with no SQLite reads. That costs ``allowed x dim`` multiply-adds and is exact.
Larger allowed sets (a larger share, where the graph meets enough allowed nodes on its way) are searched in
the graph with a beam widened by :func:`filtered_ef`, whichever costs less (:func:`use_exact`). Measured at
200k x 512 on one loaded core, 100 queries: 200 / 2,000 / 10,000 / 20,000 / 40,000 allowed keys took
0.27 / 1.35 / 8.6 / 16 / 27 ms exactly (recall 1.0) against 22 / 16 / 12 / 12 / 11 ms in the widened graph
(recall 0.87 / 0.993 / 0.99 / 0.997 / 0.992).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: Exact inner products of one ``(dim,)`` query with the stored vectors at ``rows`` (int64), as float32.
RowScorer = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: An allowed set is scored exactly while it has at most this many vectors per unit of the (widened) graph
#: beam: a filtered graph search computes some 20-30 distances per unit of beam, visiting allowed and
#: forbidden nodes alike, and measured (200k x 512, one thread) the two cost the same near 16.
EXACT_PER_EF = 16
#: The most a selective filter widens an HNSW beam (as IVF's ``nprobe``).
MAX_EF_BOOST = 16
#: A key set is given to FAISS as a bitmap (a bit per key up to the largest) rather than as its hash set
#: (``IDSelectorBatch``) when the bitmap takes at most this many bytes per key. For a capped brand's 27,000 of
#: 100k keys (measured, HNSW32): the hash set took 3.5 ms to build, the bitmap 0.09 ms, and the graph search
#: skipping them 0.67 ms with the hash set, 0.43 ms with the bitmap.
BITMAP_BYTES_PER_KEY = 8


def key_bitmap(keys: np.ndarray) -> np.ndarray | None:
    """``keys`` (int64) as a little-endian bitmap (bit ``k`` set for key ``k``: FAISS's ``IDSelectorBitmap``
    layout), or ``None`` when they are too sparse for one (:data:`BITMAP_BYTES_PER_KEY`) or negative."""
    if not len(keys) or int(keys.min()) < 0 or int(keys.max()) // 8 + 1 > BITMAP_BYTES_PER_KEY * len(keys):
        return None
    member = np.zeros(int(keys.max()) + 1, dtype=bool)
    member[keys] = True
    return np.packbits(member, bitorder="little")


class KeyPositions:
    """Item keys to storage rows of an ``IndexIDMap``: its id map (the key of each row), sorted once
    (16 bytes a vector)."""

    def __init__(self, keys: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]

    def rows(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(keys found, their storage rows)``; keys the index does not hold are dropped."""
        at = np.searchsorted(self._sorted, keys)
        at = np.minimum(at, max(len(self._sorted) - 1, 0))
        found = (self._sorted[at] == keys) if len(self._sorted) else np.zeros(len(keys), dtype=bool)
        return keys[found], self._order[at[found]]


def use_exact(allowed: int, ef: int) -> bool:
    """Whether ``allowed`` keys are scored exactly rather than searched with a beam of ``ef``
    (:func:`filtered_ef`): exactly while that costs less (:data:`EXACT_PER_EF`)."""
    return allowed <= EXACT_PER_EF * ef


def filtered_ef(ef: int, allowed: int, size: int) -> int:
    """The beam for a graph search whose selector keeps ``allowed`` of ``size`` vectors: ``ef·√(1/share)``
    (at most :data:`MAX_EF_BOOST` times), as IVF probes more lists for selective filters. Measured at 200k:
    a 10 % allowed set at the tuned beam of 192 reached recall@10 0.96, at 4 times it (√10 rounded up) 0.997;
    a 5 % one at 5 times 0.99."""
    share = allowed / max(size, 1)
    if share >= 1 or allowed <= 0:
        return ef
    return int(ef * min(MAX_EF_BOOST, max(1, math.ceil(math.sqrt(1 / share)))))


def exact_top(
    matrix: np.ndarray, keys: np.ndarray, rows: np.ndarray, n: int, score: RowScorer
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``n`` of ``keys`` (stored at ``rows``, scored by ``score``) per query row, by exact inner
    product: ``(scores float32 (q, n), ids int64 (q, n))``, ``-1`` / ``-inf`` past the last key."""
    out_scores = np.full((len(matrix), n), -np.inf, dtype=np.float32)
    out_ids = np.full((len(matrix), n), -1, dtype=np.int64)
    take = min(n, len(keys))
    if not take:
        return out_scores, out_ids
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    for row, query in enumerate(np.ascontiguousarray(matrix, dtype=np.float32)):
        scores = score(query, rows)
        part = np.argpartition(-scores, take - 1)[:take] if take < len(rows) else np.arange(take)
        order = part[np.argsort(-scores[part], kind="stable")]
        out_scores[row, :take] = scores[order]
        out_ids[row, :take] = keys[order]
    return out_scores, out_ids

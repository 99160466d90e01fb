"""Re-scoring an index's candidates with the exact vectors the store keeps on disk.

A quantised index (PQ, OPQ, SQ codes) holds a few dozen bytes per vector, so its scores are approximate
and its best ten are often not the true best ten, although the true ones are usually among its best few
hundred. Re-scoring those few hundred with the store's exact float32 vectors (read from SQLite: disk and
page cache, not the index's RAM) recovers the exact order at the cost of the reads. The re-rank depth is
chosen by :mod:`.tuning` and recorded with the generation; the query engine and the tuning use this one
function, so the recall measured at build time is the recall served.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Reads exact vectors: ``keys int64 (n,) -> (keys found, vectors float32 (found, dim))``, any order.
VectorLookup = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def rerank(query: np.ndarray, ids: np.ndarray, lookup: VectorLookup) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner products of ``query`` with the candidates ``ids``, best first.

    Args:
        query: ``(dim,)`` float32 unit vector.
        ids: candidate keys (``-1`` entries, FAISS's "no result", are ignored).
        lookup: reads the candidates' exact vectors; keys it does not return (deleted since) are dropped.

    Returns:
        ``(ids int64, scores float32)``, sorted by descending exact score.
    """
    wanted = ids[ids >= 0]
    if not len(wanted):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    keys, vectors = lookup(wanted)
    if not len(keys):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    scores = vectors @ np.asarray(query, dtype=np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    return np.asarray(keys, dtype=np.int64)[order], scores[order].astype(np.float32, copy=False)

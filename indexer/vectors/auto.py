"""``--index auto``: choose an index from the store's size, the dimension and a memory budget.

The rule follows what autofaiss does, with the thresholds measured on this project's 1M-vector benchmark
(``scripts/bench_scale.py``):

* **exact** (``Flat``) while an exact scan stays within the latency target (a few million multiply-adds a
  millisecond on one core: about 65,000 vectors of 512 dimensions for 10 ms) and fits the budget;
* **HNSW** (``HNSW32``: full vectors plus a 32-link graph) while its memory fits the budget: the fastest
  high-recall index when RAM allows;
* **compressed codes in inverted lists** beyond: ``PCAR{p},IVF{lists},SQ8``: a PCA rotation to ``p``
  dimensions (embeddings have a far lower intrinsic dimension than their size), k-means lists in that
  de-noised space (about 4·√n of them, probed through an HNSW graph of the centroids past 16,384), and 8-bit
  scalar codes of the ``p`` dimensions (``p`` bytes a vector) whose scores order the candidates so well that
  re-scoring the best few with the exact vectors the store keeps on disk (:mod:`.rerank`) restores the
  exact top 10. Measured at 1M x 512 in 128 MB (``p`` = 64): recall@10 0.974 with 256 of 4,096 lists probed
  and 20 candidates re-scored, about 130x the exact scan's speed, where IVF4096,PQ64 stalls at 0.85 however
  many candidates it re-ranks. ``p`` is the largest of 128, 96, 64, 48, 32 that fits the budget; PQ codes
  (``p/2`` bytes) when even 32-byte SQ8 codes do not fit. PCA runs with L2 distances (FAISS's PCA centres the
  vectors, which biases inner products; for unit vectors L2 order is cosine order).

The plan only chooses the structure; :mod:`.tuning` then measures recall on the store's own vectors and
picks the search-time settings (``nprobe``, ``efSearch``, re-rank depth) that reach the target.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from catalens.indexer.errors import IndexBuildError

#: The factory-string value that asks for a planned index.
AUTO = "auto"
#: The share of the machine's memory an index may use when no budget is given.
DEFAULT_MEMORY_FRACTION = 0.25
#: Single-query latency an exact scan may take before an approximate index is chosen, in milliseconds.
DEFAULT_LATENCY_MS = 10.0
#: Multiply-adds an exact scan does per millisecond on one core (measured: 1M x 512 in ~130 ms).
FLAT_MADDS_PER_MS = 4.0e6
#: Bytes per vector for an id (int64) in the indexes that hold ids.
ID_BYTES = 8
#: Links per node of the HNSW graphs auto chooses.
HNSW_LINKS = 32
#: PCA dimensions auto tries for compressed indexes, largest first.
PCA_DIMS = (128, 96, 64, 48, 32)
#: From this many lists on, the coarse quantizer is an HNSW graph over the centroids (cheap to probe).
HNSW_QUANTIZER_LISTS = 16_384

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


@dataclass(frozen=True)
class IndexPlan:
    """The index ``auto`` chose and why.

    Attributes:
        factory: the concrete factory string.
        kind: ``exact``, ``graph`` or ``quantized``.
        rerank: whether search results should be re-scored with the store's exact vectors (lossy codes).
        estimated_bytes: the index's expected size in memory.
        reason: one sentence for people (``catalens info``, logs).
    """

    factory: str
    kind: str
    rerank: bool
    estimated_bytes: int
    reason: str


def parse_memory(text: str) -> int:
    """Bytes from a size such as ``2GB``, ``512MB``, ``128MiB`` or ``1000000`` (decimal and binary units).

    Raises:
        ValueError: not a size.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a memory size: {text!r} (try 512MB or 2GB)")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    binary = "i" in unit
    letter = unit[:1] if unit[:1] in "kmgt" else ""
    factor = 1024 ** "kmgt".index(letter) * 1024 if binary and letter else _UNITS[letter]
    value = int(number * factor)
    if value <= 0:
        raise ValueError(f"a memory size must be positive, got {text!r}")
    return value


def default_memory_budget() -> int:
    """:data:`DEFAULT_MEMORY_FRACTION` of the machine's physical memory (2 GB where it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2 * 10**9
    return int(total * DEFAULT_MEMORY_FRACTION)


def ivf_lists(count: int) -> int:
    """Inverted lists for ``count`` vectors: about 4·√n, a power of two between 64 and 65,536.

    Enough vectors per list remain to train the centroids (FAISS wants at least 39 per centroid).
    """
    target = 4 * math.sqrt(max(count, 1))
    lists = 2 ** round(math.log2(max(target, 1)))
    lists = min(lists, max(64, count // 39))
    return int(max(64, min(65_536, lists)))


def flat_bytes(count: int, dim: int) -> int:
    return count * (dim * 4 + ID_BYTES)


def hnsw_bytes(count: int, dim: int, links: int = HNSW_LINKS) -> int:
    """Full vectors, 2·links ids on the base layer (plus ~5 % for upper layers), and the id map."""
    return int(count * (dim * 4 + 2 * links * 4 * 1.05 + ID_BYTES * 2))


def ivf_bytes(count: int, dim: int, lists: int, reduced: int, code_bytes: int) -> int:
    """Codes and ids per vector, the centroids (with their HNSW graph past 16,384 lists) and the PCA matrix."""
    graph = 2 * HNSW_LINKS * 4 if lists >= HNSW_QUANTIZER_LISTS else 0
    return count * (code_bytes + ID_BYTES) + lists * (reduced * 4 + graph) + dim * reduced * 4 * 2


def plan_index(count: int, dim: int, memory_bytes: int, latency_ms: float = DEFAULT_LATENCY_MS) -> IndexPlan:
    """The index for ``count`` vectors of ``dim`` dimensions within ``memory_bytes``.

    Raises:
        IndexBuildError: not even the smallest quantised index fits the budget.
    """
    count = max(int(count), 0)
    flat = flat_bytes(count, dim)
    if count * dim <= latency_ms * FLAT_MADDS_PER_MS and flat <= memory_bytes:
        reason = f"{count:,} vectors: an exact scan takes under {latency_ms:g} ms"
        return IndexPlan("Flat", "exact", False, flat, reason)
    graph = hnsw_bytes(count, dim)
    if graph <= memory_bytes:
        reason = f"an HNSW graph over {count:,} vectors fits the {_human(memory_bytes)} budget ({_human(graph)})"
        return IndexPlan(f"HNSW{HNSW_LINKS}", "graph", False, graph, reason)
    lists = ivf_lists(count)
    quantizer = f"IVF{lists}_HNSW{HNSW_LINKS}" if lists >= HNSW_QUANTIZER_LISTS else f"IVF{lists}"
    for codes, reduced in [("SQ8", p) for p in PCA_DIMS] + [(f"PQ{p // 2}", p) for p in PCA_DIMS]:
        if reduced >= dim:
            continue
        code_bytes = reduced if codes == "SQ8" else reduced // 2
        size = ivf_bytes(count, dim, lists, reduced, code_bytes)
        if size <= memory_bytes:
            factory = f"PCAR{reduced},{quantizer},{codes}"
            reason = (
                f"HNSW over {count:,} vectors needs {_human(graph)}, over the {_human(memory_bytes)} budget: "
                f"{code_bytes}-byte codes of {reduced} PCA dimensions in {lists:,} lists ({_human(size)}), "
                "re-scored with the store's exact vectors"
            )
            return IndexPlan(factory, "quantized", True, size, reason)
    smallest = ivf_bytes(count, dim, lists, PCA_DIMS[-1], PCA_DIMS[-1] // 2)
    raise IndexBuildError(
        AUTO,
        f"no index for {count:,} vectors fits {_human(memory_bytes)}; the smallest needs {_human(smallest)} "
        "(raise --index-memory)",
    )


def _human(size: int) -> str:
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} B"

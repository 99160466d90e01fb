"""FAISS index anatomy, for :mod:`.faiss_backend`: building an index from a factory string, finding the parts of
a composed index (id map, PCA step, IVF lists, HNSW graph, refine codes), the search parameters and id selectors
of filtered searches, and copies to and from GPUs.

Kept apart from :class:`~.faiss_backend.FaissIndex` so the class reads as the :class:`VectorIndex` contract and
this module as FAISS's object model; the two are the only modules that import faiss.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from typing import Any

import faiss
import numpy as np

from catalens.indexer.errors import IndexBuildError
from catalens.indexer.vectors.filtered import filtered_ef, key_bitmap


def make_index(factory: str, dim: int) -> faiss.Index:
    factory = factory.strip()
    if not factory:
        raise IndexBuildError(factory, "the factory string is empty (try Flat, HNSW32 or IVF1024,PQ64)")
    try:
        index = reduced_refine(factory, int(dim)) or faiss.index_factory(int(dim), factory, metric_for(factory))
    except RuntimeError as e:
        raise IndexBuildError(factory, f"FAISS does not understand it ({last_line(e)})") from e
    if ivf_of(index) is not None and refine_of(index) is None:
        return index
    # IndexIDMap (an id array, 8 bytes a vector), not IndexIDMap2 (adds a hash map: ~40 more bytes a vector)
    return faiss.IndexIDMap(index)


REDUCED_REFINE = re.compile(r"^(PCAR?)(\d+)\s*,\s*(.+,\s*Refine\(.+\))$", re.IGNORECASE)


def reduced_refine(factory: str, dim: int) -> faiss.Index | None:
    """``PCA{R}p,BASE,Refine(CODES)`` with the refine codes in the reduced ``p`` dimensions, else ``None``.

    FAISS's own factory applies a trailing ``Refine(...)`` to the input vectors: SQ8 refine codes of 512-d
    vectors cost 512 bytes each, more than the index they refine. After a PCA step catalens refines in the
    reduced space instead (``p`` bytes for SQ8), which is what the step is for; the exact vectors the store
    keeps then re-rank the best few (:mod:`.rerank`).
    """
    match = REDUCED_REFINE.match(factory.strip())
    if match is None:
        return None
    kind, reduced, rest = match.group(1).upper(), int(match.group(2)), match.group(3)
    if not 0 < reduced < dim:
        return None
    lib: Any = faiss  # the SWIG objects' ownership attributes are not in faiss's type stubs
    inner: Any = lib.index_factory(reduced, rest, faiss.METRIC_L2)
    pca: Any = lib.PCAMatrix(dim, reduced, 0.0, kind == "PCAR")
    wrapped: Any = lib.IndexPreTransform(pca, inner)
    wrapped.own_fields = True  # the C++ object frees the transform and the index with itself
    inner.this.disown()
    pca.this.disown()
    return wrapped


def metric_for(factory: str) -> int:
    """Inner product, except behind a PCA transform: FAISS's PCA centres the vectors (``P(x - mean)``), which
    biases inner products by ``-mean·x`` but leaves L2 distances intact, and for unit vectors L2 order is
    cosine order (``|q - x|² = 2 - 2 q·x``); :meth:`FaissIndex.search` turns such distances back into cosines."""
    return faiss.METRIC_L2 if "PCA" in factory.upper() else faiss.METRIC_INNER_PRODUCT


def inner_index(index: faiss.Index) -> Any:
    """The index inside the id map that non-IVF indexes get (``IndexIDMap``, or ``IndexIDMap2`` in stores
    written before; the index itself otherwise)."""
    if isinstance(index, faiss.IndexIDMap | faiss.IndexIDMap2):
        return faiss.downcast_index(index.index)
    return index


def refine_of(index: faiss.Index) -> Any:
    """The ``IndexRefine`` of a refined index (``...,Refine(SQ8)``, also behind a PCA step), else ``None``."""
    inner = inner_index(index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return inner if isinstance(inner, faiss.IndexRefine) else None


def stores_full_vectors(index: faiss.Index) -> bool:
    inner = inner_index(index)
    if isinstance(inner, faiss.IndexFlat):
        return True
    if isinstance(inner, faiss.IndexHNSW):
        return isinstance(faiss.downcast_index(inner.storage), faiss.IndexFlat)
    return isinstance(inner, faiss.IndexIVFFlat)


def ivf_of(index: faiss.Index) -> Any:
    """The IVF part of an index, or ``None`` for index types without inverted lists."""
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def selective_boost(index: faiss.Index, allowed: np.ndarray | None) -> int:
    """How many times more lists to probe for an allowed set that keeps a small share of the index.

    The tuned ``nprobe`` finds the true neighbours among all vectors; the true neighbours *among a few
    allowed ones* lie farther from the query, in lists beyond those. Probing √(1/share) times more lists
    (at most 16x) restored recall@10 for a 1 % filter at 1M (measured, scripts/bench_scale.py), and stays
    far cheaper than the exact scan.
    """
    if allowed is None or not len(allowed):
        return 1
    share = len(allowed) / max(int(index.ntotal), 1)
    return int(min(16, max(1, math.ceil(math.sqrt(1 / share))))) if share < 1 else 1


def search_params(
    index: faiss.Index, allowed: np.ndarray | None, hidden: np.ndarray, k: int, attempt: int
) -> tuple[Any, bool]:
    """FAISS search parameters for ``allowed`` keys minus ``hidden`` ones, widened by ``attempt``.

    Returns the parameters and whether a search with them visits every vector (so fewer than ``k`` results
    mean there are no more matches).
    """
    lib: Any = faiss  # the SWIG constructors take keyword arguments that faiss's type stubs do not declare
    if allowed is not None:
        selector: Any = id_selector(np.setdiff1d(allowed, hidden, assume_unique=True))
    elif len(hidden):
        selector = lib.IDSelectorNot(id_selector(hidden))
    else:
        selector = None
    ivf = ivf_of(index)
    inner = inner_index(index)
    if ivf is not None:
        nprobe = min(int(ivf.nlist), int(ivf.nprobe) * selective_boost(index, allowed) * 4**attempt)
        params: Any = lib.SearchParametersIVF(sel=selector, nprobe=nprobe)
        complete = nprobe >= ivf.nlist
    elif isinstance(inner, faiss.IndexHNSW):
        ef = max(int(inner.hnsw.efSearch), k)
        if allowed is not None:
            ef = filtered_ef(ef, len(allowed), int(index.ntotal))
        params = lib.SearchParametersHNSW(sel=selector, efSearch=ef * 2**attempt)
        complete = False
    else:
        params = lib.SearchParameters(sel=selector) if selector is not None else None
        complete = True
    if params is not None:
        params._keepalive = selector  # FAISS holds a raw pointer; keep the selector alive with the params
    return params, complete


def id_selector(keys: np.ndarray) -> Any:
    """A FAISS selector of ``keys``: a bitmap if dense enough (:func:`filtered.key_bitmap`), else a hash set."""
    lib: Any = faiss  # SWIG constructors taking arrays and pointers are not in faiss's type stubs
    keys = np.ascontiguousarray(keys, dtype=np.int64).reshape(-1)
    bits = key_bitmap(keys)
    if bits is None:
        return lib.IDSelectorBatch(keys)
    selector = lib.IDSelectorBitmap(len(bits), lib.swig_ptr(bits))
    selector.referenced_objects = [bits]  # FAISS keeps a raw pointer into the array
    return selector


def to_gpu(index: faiss.Index) -> faiss.Index:
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except (RuntimeError, AttributeError):
        return index  # some index types (HNSW) have no GPU version: build on the CPU


def train_on_gpu(index: faiss.Index, sample: np.ndarray) -> faiss.Index:
    gpu = to_gpu(index)
    gpu.train(sample)
    return faiss.index_gpu_to_cpu(gpu) if gpu is not index else index


def last_line(error: Exception) -> str:
    """The human part of a FAISS C++ error (after the source location and the failed assertion)."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    return text.splitlines()[-1].rsplit("failed: ", 1)[-1].rsplit("Error: ", 1)[-1]


@contextlib.contextmanager
def omp_threads(threads: int | None) -> Iterator[None]:
    """FAISS's OpenMP team size for the calling thread while the block runs, restored afterwards.

    The setting is per calling thread and shared with every OpenMP user in it, torch included: left at 1
    after a one-thread search (index tuning asks for 1), the next forward pass in that thread (a caption pass
    after ``catalens index`` publishes) ran on one core.
    """
    if threads is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)

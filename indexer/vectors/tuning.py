"""Measure an index's recall on the store's own vectors and tune its search settings to a target.

Guessing ``nprobe`` or ``efSearch`` is how approximate indexes lose results nobody notices. Instead, after a
build: a seeded sample of the store's vectors becomes the queries, their exact nearest neighbours are found
by a full scan (streamed in chunks, never all vectors at once), and each query's own vector is left out of
both the exact and the approximate answer (it is in the index; finding it proves nothing). Then the
index's one speed/recall setting (:class:`SearchKnob`) is swept from cheap to expensive, and for lossy
indexes the re-rank depth with it (:mod:`.rerank`), and the cheapest setting whose mean recall@10 reaches
the target is kept, its latency measured one query at a time on one thread, as the engine searches. If no
setting reaches the target, the one with the best recall is kept and the result says the target was missed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from catalens.indexer.vectors.base import VectorChunks, VectorIndex
from catalens.indexer.vectors.rerank import VectorLookup, rerank

#: Recall is measured at this depth.
RECALL_AT = 10
#: Default number of sampled queries.
DEFAULT_QUERIES = 500
#: Re-rank depths tried for lossy indexes (0: the index's own scores), cheapest first.
RERANK_DEPTHS = (0, 20, 50, 100, 200, 400, 800, 1600)
#: Queries timed per setting when comparing latencies.
TIMED_QUERIES = 200


@dataclass(frozen=True)
class IndexTuning:
    """What the tuning chose and measured for one index generation (recorded in the manifest).

    Attributes:
        params: the search settings: the knob (``nprobe`` / ``efSearch``) if the index has one, and
            ``rerank``, the candidates re-scored with exact vectors (0: none).
        recall_at_10: mean recall@10 against an exact scan, over ``queries`` sampled store vectors.
        latency_ms: median single-query search time on one thread, re-ranking included.
        p95_ms: its 95th percentile.
        queries: how many sampled vectors were the queries.
        target_recall: the recall asked for.
        met: whether ``recall_at_10`` reached ``target_recall``.
        trained_on: vectors in the index when it was trained (retrained once the store has doubled).
        chosen_by: ``auto`` (planned from the size and budget) or ``given`` (a factory string by hand).
        memory_budget: the budget ``auto`` planned for, in bytes (``None`` for a given factory).
        reason: why ``auto`` chose this index (``None`` for a given factory).
    """

    params: dict[str, int]
    recall_at_10: float
    latency_ms: float
    p95_ms: float
    queries: int
    target_recall: float
    met: bool
    trained_on: int = 0
    chosen_by: str = "given"
    memory_budget: int | None = None
    reason: str | None = None
    sweep: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> IndexTuning:
        """From :meth:`to_dict`'s output; keys a newer catalens added are ignored."""
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in raw.items() if k in known}
        values["params"] = {str(k): int(v) for k, v in dict(values.get("params") or {}).items()}
        return cls(**values)

    @property
    def rerank(self) -> int:
        return int(self.params.get("rerank", 0))

    @property
    def knob(self) -> dict[str, int]:
        """The index's own settings (everything but ``rerank``), for :meth:`VectorIndex.configure`."""
        return {k: v for k, v in self.params.items() if k != "rerank"}


@dataclass(frozen=True)
class GroundTruth:
    """Sampled queries (store vectors under their own keys) and their exact neighbours, self excluded."""

    keys: np.ndarray  # (q,) int64
    queries: np.ndarray  # (q, dim) float32
    neighbours: np.ndarray  # (q, k) int64, -1 padded


def ground_truth(chunks: VectorChunks, count: int, queries: int, seed: int = 0, k: int = RECALL_AT) -> GroundTruth:
    """Sample ``queries`` stored vectors and find their exact top ``k`` others in one streamed pass each."""
    wanted = min(queries, count)
    rng = np.random.default_rng([seed, 13])
    chosen = np.sort(rng.choice(count, size=wanted, replace=False)) if wanted else np.zeros(0, dtype=np.int64)
    keys_parts, vector_parts, seen = [], [], 0
    for ids, vectors in chunks():
        lo, hi = np.searchsorted(chosen, [seen, seen + len(vectors)])
        keys_parts.append(ids[chosen[lo:hi] - seen])
        vector_parts.append(vectors[chosen[lo:hi] - seen])
        seen += len(vectors)
    keys = np.concatenate(keys_parts) if keys_parts else np.zeros(0, dtype=np.int64)
    sample = np.ascontiguousarray(np.concatenate(vector_parts) if vector_parts else np.zeros((0, 1)), np.float32)
    depth = k + 1
    best_scores = np.full((len(keys), depth), -np.inf, dtype=np.float32)
    best_ids = np.full((len(keys), depth), -1, dtype=np.int64)
    if len(keys):
        for ids, vectors in chunks():
            scores = sample @ vectors.T
            scores[ids[None, :] == keys[:, None]] = -np.inf  # a query is not its own neighbour
            take = min(depth, scores.shape[1])
            part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
            merged_ids = np.concatenate([best_ids, ids[part]], axis=1)
            order = np.argsort(-merged_scores, axis=1, kind="stable")[:, :depth]
            best_scores = np.take_along_axis(merged_scores, order, axis=1)
            best_ids = np.take_along_axis(merged_ids, order, axis=1)
    neighbours = np.where(np.isfinite(best_scores[:, :k]), best_ids[:, :k], -1)
    return GroundTruth(keys, sample, neighbours)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row's true neighbours (``-1`` padding ignored) found in the same row of ``found``."""
    hits, total = 0, 0
    for row_found, row_truth in zip(found, truth, strict=True):
        real = row_truth[row_truth >= 0]
        total += len(real)
        hits += len(np.intersect1d(real, row_found[row_found >= 0]))
    return hits / total if total else 1.0


class Tuner:
    """Sweeps one index's settings against one :class:`GroundTruth`."""

    def __init__(self, index: VectorIndex, truth: GroundTruth, lookup: VectorLookup) -> None:
        self._index = index
        self._truth = truth
        self._lookup = lookup
        self._scores: dict[int, dict[int, float]] = {}

    def tune(self, target: float, *, trained_on: int = 0) -> IndexTuning:
        """The cheapest measured setting reaching ``target`` recall@10 (or the best one if none does)."""
        knob = self._index.search_knob()
        depths = (0,) if self._index.exact_scores else RERANK_DEPTHS
        settings = [{knob.name: v} for v in knob.values] if knob else [{}]
        best: tuple[float, dict[str, int], float, list[float]] | None = None  # latency, params, recall, times
        fallback: tuple[float, dict[str, int]] = (-1.0, {})
        sweep: list[dict[str, float]] = []
        # A refined index re-scores k_factor x k candidates: its results depend on k, so each depth is searched
        # with the k the engine will ask for; other indexes give the same prefix whatever k, so one search does.
        per_depth = knob is not None and knob.name == "k_factor"
        for setting in settings:
            self._index.configure(setting)
            candidates = [] if per_depth else self._search(max(RECALL_AT, depths[-1]))
            reached = None
            for depth in depths:
                if per_depth:
                    candidates = self._search(max(RECALL_AT, depth))
                score = recall(self._top(candidates, depth), self._truth.neighbours)
                if score > fallback[0]:
                    fallback = (score, {**setting, "rerank": depth})
                if score >= target:
                    reached = (depth, score)
                    break
            if reached is None:
                continue
            params = {**setting, "rerank": reached[0]}
            times = self._timed(params)
            latency = statistics.median(times)
            sweep.append({**params, "recall_at_10": reached[1], "latency_ms": round(latency, 3)})
            if best is None or latency < best[0]:
                best = (latency, params, reached[1], times)
            elif latency > 1.5 * best[0]:
                break  # every wider setting only costs more
        if best is None:
            params, score = fallback[1], max(fallback[0], 0.0)
            times = self._timed(params)
        else:
            params, score, times = best[1], best[2], best[3]
        self._index.configure({k: v for k, v in params.items() if k != "rerank"})
        return IndexTuning(
            params=params,
            recall_at_10=round(float(score), 4),
            latency_ms=round(statistics.median(times), 3),
            p95_ms=round(float(np.percentile(times, 95)), 3),
            queries=len(self._truth.keys),
            target_recall=target,
            met=best is not None,
            trained_on=trained_on,
            sweep=sweep,
        )

    def _search(self, fetch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: the index's ``fetch`` best ids (self removed) and their exact scores."""
        out = []
        result = self._index.search(self._truth.queries, fetch + 1, threads=1)
        for row, (key, ids) in enumerate(zip(self._truth.keys, result.ids, strict=True)):
            ids = ids[(ids >= 0) & (ids != key)]
            out.append((ids, self._exact_scores(row, ids)))
        return out

    def _top(self, candidates: list[tuple[np.ndarray, np.ndarray]], depth: int) -> np.ndarray:
        """Per query the best ``RECALL_AT`` ids: the index's order, or its first ``depth`` re-scored exactly."""
        rows = np.full((len(candidates), RECALL_AT), -1, dtype=np.int64)
        for row, (ids, exact) in enumerate(candidates):
            if depth:
                pool, scores = ids[:depth], exact[:depth]
                top = pool[np.argsort(-scores, kind="stable")[:RECALL_AT]]
            else:
                top = ids[:RECALL_AT]
            rows[row, : len(top)] = top
        return rows

    def _exact_scores(self, row: int, ids: np.ndarray) -> np.ndarray:
        """Exact scores of ``ids`` for query ``row``: read through the lookup once, then from a per-query cache
        (scores, not vectors, so that a million-vector sweep keeps a few MB, not GBs)."""
        cache = self._scores.setdefault(row, {})
        missing = np.asarray([i for i in ids.tolist() if i not in cache], dtype=np.int64)
        if len(missing):
            keys, vectors = self._lookup(missing)
            cache.update(zip(keys.tolist(), (vectors @ self._truth.queries[row]).tolist(), strict=True))
        return np.asarray([cache.get(i, -np.inf) for i in ids.tolist()], dtype=np.float32)

    def _timed(self, params: dict[str, int]) -> list[float]:
        """Per-query wall times in ms with ``params``, one query at a time on one thread, as served."""
        self._index.configure({k: v for k, v in params.items() if k != "rerank"})
        depth = params.get("rerank", 0)
        times = []
        for query in self._truth.queries[:TIMED_QUERIES]:
            started = time.perf_counter()
            found = self._index.search(query, max(RECALL_AT + 1, depth), threads=1)
            if depth:
                rerank(query, found.ids[0], self._lookup)
            times.append((time.perf_counter() - started) * 1000)
        return times or [0.0]


def tune_index(
    index: VectorIndex,
    chunks: VectorChunks,
    count: int,
    lookup: VectorLookup,
    target: float,
    *,
    queries: int = DEFAULT_QUERIES,
    seed: int = 0,
    trained_on: int = 0,
    measure: Callable[[GroundTruth], None] | None = None,
) -> IndexTuning:
    """Measure ``index`` on a sample of the store's vectors and configure it to reach ``target`` recall@10.

    Args:
        index: a built index holding the ``count`` vectors ``chunks`` streams.
        lookup: reads exact vectors by key (the store's SQLite vectors), for re-ranking.
        target: the recall@10 to reach (0..1).
        queries: sampled store vectors used as queries.
        trained_on: recorded in the result (see :class:`IndexTuning`).
        measure: called with the ground truth once it is computed (progress reporting).
    """
    if count < 2:  # nothing to measure: an empty index (or one vector, its own only neighbour) is exact
        return IndexTuning({"rerank": 0}, 1.0, 0.0, 0.0, 0, target, True, trained_on=trained_on)
    truth = ground_truth(chunks, count, queries, seed)
    if measure is not None:
        measure(truth)
    return Tuner(index, truth, lookup).tune(target, trained_on=trained_on)

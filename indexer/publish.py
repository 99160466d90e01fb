"""Build, measure and publish a store's vector index: planned (``auto``) or given, incremental when it can be.

Every publish ends with a measurement (:mod:`catalens.indexer.vectors.tuning`) on sampled store vectors held
out of the index while it is measured (a new index is built without them and given them after; an extended
one has them removed and added back where its type allows): the generation is recorded
with its factory string, search settings, recall@10 against an exact scan, latency and size, so
``catalens info`` and ``/v1/info`` say what the index costs in recall instead of leaving it to a guess.

A new generation starts from the current one when that is sound: the same factory, trained on at least half
of today's vectors, and an index type that can remove what changed. The changes since the current
generation's change sequence are then removed and added, and the result must hold exactly the store's
vectors (else it is rebuilt). Otherwise, or when asked to retrain, the index is built from the store's
vectors streamed in chunks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from catalens.indexer.errors import IndexDamagedError
from catalens.indexer.progress import ProgressSink
from catalens.indexer.store import CatalogStore, IndexState
from catalens.indexer.vectors import (
    IndexRegistry,
    VectorIndex,
    VectorIndexError,
    create_index,
    default_index_registry,
)
from catalens.indexer.vectors.auto import AUTO, default_memory_budget, plan_index
from catalens.indexer.vectors.tuning import DEFAULT_QUERIES, IndexTuning, build_tuned, retune

log = logging.getLogger("catalens.index")

#: The recall@10 a build is tuned to when none is given.
DEFAULT_TARGET_RECALL = 0.95
#: An index trained on ``n`` vectors is retrained once the store holds more than this many times ``n``.
RETRAIN_GROWTH = 2.0


@dataclass(frozen=True)
class IndexGoals:
    """What an index build aims for.

    Attributes:
        memory_budget: bytes the index may take in RAM, for ``auto``'s plan (``None``: a quarter of the
            machine's memory).
        target_recall: the recall@10 the search settings are tuned to reach.
        retrain: build from scratch (train again) even when the current generation could be extended.
        tuning_queries: stored vectors sampled as queries to measure recall.
    """

    memory_budget: int | None = None
    target_recall: float = DEFAULT_TARGET_RECALL
    retrain: bool = False
    tuning_queries: int = DEFAULT_QUERIES

    def budget(self) -> int:
        return self.memory_budget if self.memory_budget is not None else default_memory_budget()


def publish_index(store: CatalogStore, requested: str, sink: ProgressSink, goals: IndexGoals) -> IndexState:
    """Build (or extend) the index ``requested`` asks for, tune and measure it, and publish it.

    The caller holds the writer lock, so nothing changes while the vectors are read.

    Args:
        requested: ``auto`` or a factory string; recorded as the store's choice.

    Raises:
        IndexBuildError: the factory string is invalid, training failed, or no index fits the budget.
    """
    seq = store.current_seq()
    count = store.vector_count()
    dim = store.manifest.dim
    budget = goals.budget() if requested == AUTO else None
    factory, reason = _choose(store, requested, count, dim, budget, replan=goals.retrain)
    current = store.manifest.index
    index, trained_on = (None, 0) if goals.retrain else _extend(store, current, factory, count)
    lookup = lambda keys: store.vectors_for(keys.tolist())  # noqa: E731
    tuning = None
    if index is not None:
        sink.start("measuring recall", None)
        previous = current_tuning(current)
        try:
            tuning = retune(
                index,
                store.iter_vectors,
                count,
                lookup,
                goals.target_recall,
                queries=goals.tuning_queries,
                trained_on=trained_on,
                previous=previous.knob if previous is not None else None,
            )
        except VectorIndexError as e:
            log.warning("%s; rebuilding it", e)
        sink.finish()
    if tuning is None:
        # built without the sampled tuning queries, tuned on them, then given them (see tuning.build_tuned)
        sink.start(f"building index {factory} and measuring recall", count)
        index = create_index(factory, dim)
        tuning = build_tuned(
            index, store.iter_vectors, count, lookup, goals.target_recall, queries=goals.tuning_queries
        )
        sink.advance(count)
        sink.finish()
    assert index is not None
    tuning = replace(tuning, chosen_by="auto" if requested == AUTO else "given", memory_budget=budget, reason=reason)
    if not tuning.met:
        log.warning(
            "index %s reaches recall@10 %.3f, below the target %.2f, with its widest setting",
            factory,
            tuning.recall_at_10,
            goals.target_recall,
        )
    return store.publish_index(index.save, factory, count, seq, tuning=tuning.to_dict(), requested=requested)


def current_tuning(state: IndexState | None) -> IndexTuning | None:
    """The tuning recorded with a generation, ``None`` for generations published before tuning existed."""
    if state is None or not state.tuning:
        return None
    return IndexTuning.from_dict(state.tuning)


def load_tuned(
    store: CatalogStore, state: IndexState, registry: IndexRegistry | None = None
) -> tuple[VectorIndex, int]:
    """A published generation's index with the search settings its tuning chose, and its re-rank depth.

    What the engine serves and what the benchmarks measure load through here, so both search alike.

    Raises:
        IndexDamagedError: the file is not the one published (see :meth:`CatalogStore.load_index`).
    """
    index = store.load_index(state, (registry or default_index_registry()).load)
    tuning = current_tuning(state)
    if tuning is None:
        return index, 0
    try:
        index.configure(tuning.knob)
    except VectorIndexError as e:  # a manifest from another version: serve with the index's defaults
        log.warning("%s", e)
    return index, tuning.rerank


def _choose(
    store: CatalogStore, requested: str, count: int, dim: int, budget: int | None, *, replan: bool
) -> tuple[str, str | None]:
    """The concrete factory string and, for ``auto``, why it was chosen.

    ``auto`` keeps the current generation's choice while the store has not doubled since it was planned
    under the same budget, so that growing a little never turns into a rebuild with another index type;
    ``replan`` (a retrain) plans afresh.
    """
    if requested != AUTO:
        return requested, None
    assert budget is not None
    previous = current_tuning(store.manifest.index)
    state = store.manifest.index
    if (
        not replan
        and previous is not None
        and state is not None
        and previous.chosen_by == "auto"
        and previous.memory_budget == budget
        and previous.trained_on > 0
        and count <= RETRAIN_GROWTH * previous.trained_on
        and count >= previous.trained_on / RETRAIN_GROWTH
    ):
        return state.factory, previous.reason
    plan = plan_index(count, dim, budget)
    return plan.factory, plan.reason


def _extend(
    store: CatalogStore, current: IndexState | None, factory: str, count: int
) -> tuple[VectorIndex | None, int]:
    """The current generation with the changes since applied, or ``(None, 0)`` when it must be rebuilt."""
    previous = current_tuning(current)
    if current is None or previous is None or current.factory != factory:
        return None, 0
    trained_on = previous.trained_on or current.count
    if count > RETRAIN_GROWTH * trained_on:
        log.info("retraining %s: the store has %d vectors, the index was trained on %d", factory, count, trained_on)
        return None, 0
    try:
        index = store.load_index(current, default_index_registry().load)
    except IndexDamagedError as e:
        log.warning("%s; rebuilding it", e)
        return None, 0
    keys, vectors, removed = store.changes_since(current.seq)
    gone = np.union1d(removed, keys)
    try:
        if len(gone):
            index.remove(gone)
        if len(keys):
            index.add(keys, vectors)
    except VectorIndexError as e:
        log.info("rebuilding %s instead of extending it: %s", factory, e.reason)
        return None, 0
    if index.size != count:  # never publish an index that disagrees with the store
        log.warning("extending %s gave %d vectors for %d in the store; rebuilding it", factory, index.size, count)
        return None, 0
    return index, trained_on


def index_summary(state: IndexState | None) -> dict[str, Any]:
    """What ``catalens info``, ``reindex`` and ``/v1/info`` report about a generation's index.

    Keys: ``factory``, ``chosen_by`` (``auto`` / ``given``), ``reason``, ``search_params``, ``recall_at_10``,
    ``target_recall``, ``target_met``, ``latency_ms`` (p50, one thread), ``p95_ms``, ``bytes_per_vector`` (the
    index file's size per vector), ``memory_budget`` and ``trained_on``; measurement keys are ``None`` for
    generations published before measuring existed.
    """
    if state is None:
        return {}
    tuning = current_tuning(state)
    per_vector = round(state.file_bytes / state.count, 1) if state.file_bytes and state.count else None
    return {
        "factory": state.factory,
        "chosen_by": tuning.chosen_by if tuning else None,
        "reason": tuning.reason if tuning else None,
        "search_params": dict(tuning.params) if tuning else None,
        "recall_at_10": tuning.recall_at_10 if tuning else None,
        "target_recall": tuning.target_recall if tuning else None,
        "target_met": tuning.met if tuning else None,
        "latency_ms": tuning.latency_ms if tuning else None,
        "p95_ms": tuning.p95_ms if tuning else None,
        "measured_queries": tuning.queries if tuning else None,
        "bytes_per_vector": per_vector,
        "memory_budget": tuning.memory_budget if tuning else None,
        "trained_on": tuning.trained_on if tuning else None,
    }

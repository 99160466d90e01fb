"""``find_duplicates``: groups of near-identical images in a store, and ``save_duplicates`` to store them.

The pipeline: the store's vectors in batches, each batch range-searched on the current index generation and
compared exactly with the items embedded since (:mod:`.neighbours`); items sharing their image bytes (content
hash) joined as exact duplicates; union-find into groups (:mod:`.grouping`). Finding only reads; storing the
groups replaces the previous run's in one transaction, under the store's writer lock.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalens.indexer.duplicates.errors import DuplicatesError
from catalens.indexer.duplicates.grouping import UnionFind, build_groups
from catalens.indexer.duplicates.neighbours import Neighbours
from catalens.indexer.progress import NoProgress, ProgressSink
from catalens.indexer.store import CatalogStore, DuplicateGroup, DuplicateRun
from catalens.indexer.store.sql import now

#: The default similarity threshold (cosine of the image vectors). Measured with catalens-mini on generated copies
#: (``scripts/bench_duplicates.py``, two seeds): on the demo catalog's look-alike product shots 0.95 kept pairwise
#: precision at 1.000 with recall 0.71-0.73 (0.90-0.92 without mirrored copies, which no threshold catches); 0.93
#: found 7-9 points more for 0.7-0.9 points of precision, and the best F0.5 over both image sets was 0.93 on one
#: seed and 0.95 on the other, so the default stays the cautious one.
DEFAULT_THRESHOLD = 0.95
#: Vectors per range-search batch.
BATCH_SIZE = 4096


@dataclass(frozen=True)
class DuplicateReport:
    """What a duplicates run found.

    Attributes:
        groups: the groups, by group id (smallest key), members first-member first then by similarity.
        run: the run's provenance and counts, as :meth:`DuplicateTable.replace` records it.
        pairs: similar pairs found by vector (each once), exact copies not counted.
        exact_sets: sets of items sharing their image bytes.
        exact_compared: vectors compared exactly (embedded after the index generation, or all without one).
        seconds: wall time of the search.
    """

    groups: list[DuplicateGroup]
    run: DuplicateRun
    pairs: int
    exact_sets: int
    exact_compared: int
    seconds: float

    @property
    def duplicate_items(self) -> int:
        """Items a dedupe would hide: every member but one per group."""
        return sum(len(g.members) - 1 for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``catalens duplicates --json``)."""
        run = self.run
        return {
            "threshold": run.threshold,
            "model": run.model,
            "generation": run.generation,
            "items": run.items,
            "groups": [
                {
                    "group_id": g.group_id,
                    "members": [
                        {"key": m.key, "id": m.item_id, "similarity": m.similarity, "exact": m.exact} for m in g.members
                    ],
                }
                for g in self.groups
            ],
            "group_count": run.groups,
            "duplicate_items": self.duplicate_items,
            "pairs": self.pairs,
            "exact_sets": self.exact_sets,
            "exact_compared": self.exact_compared,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "seconds": round(self.seconds, 3),
        }


def find_duplicates(
    store: CatalogStore,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    progress: ProgressSink | None = None,
    batch_size: int = BATCH_SIZE,
) -> DuplicateReport:
    """Group the store's items whose images are near-identical (cosine ≥ ``threshold``) or byte-identical.

    Only reads the store; :func:`save_duplicates` stores the result.

    Args:
        store: an open store.
        threshold: the lowest cosine similarity of two image vectors that makes them duplicates.
        progress: receives one ``compare`` phase over the store's vectors.
        batch_size: vectors range-searched at once.

    Raises:
        DuplicatesError: ``threshold`` is not in (0, 1] or ``batch_size`` is under 1.
    """
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 < value <= 1.0:  # NaN fails too
        raise DuplicatesError(f"the similarity threshold must lie in (0, 1], not {threshold!r}")
    threshold = value
    if batch_size < 1:
        raise DuplicatesError(f"the batch size must be at least 1, not {batch_size}")
    progress = progress or NoProgress()
    started, clock = now(), time.perf_counter()
    neighbours = Neighbours(store, threshold)
    found: list[np.ndarray] = [np.zeros((2, 0), dtype=np.int64)]
    items = 0
    progress.start("compare", store.vector_count())
    for keys, vectors in store.iter_vectors(chunk_size=batch_size):
        batch = neighbours.pairs(keys, vectors)
        found.append(np.stack([batch.a, batch.b]))
        items += len(keys)
        progress.advance(len(keys))
    progress.finish()
    # A pair is met from both of its items' batches (or from one only, on an approximate index): once here.
    pairs = np.unique(np.concatenate(found, axis=1), axis=1)
    sets = UnionFind()
    sets.union_pairs(pairs[0].tolist(), pairs[1].tolist())
    same = store.duplicates.same_content()
    for keys_of_one_image in same:
        sets.union_pairs(keys_of_one_image[:-1], keys_of_one_image[1:])
    components = sets.components()
    grouped = [k for c in components for k in c]
    found_keys, found_vectors = store.vectors_for(grouped)
    vectors_by_key = dict(zip(found_keys.tolist(), found_vectors, strict=True))
    ids = {key: item.id for key, item in store.get_items(grouped).items()}
    groups = build_groups(components, vectors_by_key, ids, {k for keys in same for k in keys})
    model, generation = store.manifest.model, neighbours.generation
    run = DuplicateRun(threshold, model, generation, items, len(groups), started, now())
    return DuplicateReport(groups, run, pairs.shape[1], len(same), neighbours.exact_count, time.perf_counter() - clock)


def save_duplicates(store: CatalogStore, report: DuplicateReport) -> None:
    """Store a report's groups in place of the previous run's (one transaction); the caller holds the writer lock."""
    store.duplicates.replace(report.groups, report.run)


def find_and_save(
    path: str | Path,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    progress: ProgressSink | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> DuplicateReport:
    """Open the store at ``path``, find its duplicate groups and (unless ``dry_run``) store them.

    The writer lock is held from before the search to after the write, so no indexer changes the items between
    what was compared and what is stored; a dry run takes no lock and writes nothing.

    Raises:
        StoreNotFoundError, StoreLockedError, StoreVersionError: the store cannot be opened or is being written.
        DuplicatesError: see :func:`find_duplicates`.
    """
    with CatalogStore.open(path) as store:
        if dry_run:
            return find_duplicates(store, threshold, progress=progress, batch_size=batch_size)
        with store.writer_lock():
            report = find_duplicates(store, threshold, progress=progress, batch_size=batch_size)
            save_duplicates(store, report)
        return report


__all__ = ["DEFAULT_THRESHOLD", "DuplicateReport", "find_and_save", "find_duplicates", "save_duplicates"]

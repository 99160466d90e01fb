"""What a query searches: an immutable snapshot of one index generation plus the store's changes after it.

A :class:`Snapshot` pairs the loaded index of the store's current generation with its *delta*: the items
embedded since the index was built (searched exactly) and the keys to hide in the index (removed or
re-embedded since). Queries take a reference to the snapshot once and use only it, so :class:`Snapshots`
can swap in a new generation at any moment without failing or mixing an in-flight query.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from catalens.indexer.errors import IndexDamagedError
from catalens.indexer.publish import load_tuned
from catalens.indexer.store import CatalogStore, IndexState
from catalens.indexer.vectors import IndexRegistry, VectorIndex, default_index_registry
from catalens.search.errors import QueryError

log = logging.getLogger("catalens.index")


@dataclass(frozen=True)
class Snapshot:
    """One generation's index and the changes made after it was built.

    Attributes:
        generation: the published generation, ``None`` before the first publish (or with its file missing).
        index: the generation's loaded index, ``None`` with it.
        seq: the store's change sequence the index was built at (0 without an index).
        delta_keys, delta_vectors: items (re-)embedded after ``seq``, searched exactly.
        hidden: keys to skip in ``index``: removed or re-embedded after it was built.
        degraded: why the current generation is not the one served, ``None`` when it is: its file was
            damaged (truncated, overwritten, another store's) and the previous generation, or an exact
            search over SQLite's vectors, stands in until ``catalens reindex`` publishes a good one.
        rerank: candidates the index returns to be re-scored with the store's exact vectors (0: none), as
            tuned and recorded with the generation (see :mod:`catalens.indexer.vectors.rerank`).
    """

    generation: int | None
    index: VectorIndex | None
    seq: int
    delta_keys: np.ndarray
    delta_vectors: np.ndarray
    hidden: np.ndarray
    degraded: str | None = None
    rerank: int = 0

    @property
    def index_count(self) -> int:
        """Vectors in the index (hidden ones included)."""
        return self.index.size if self.index is not None else 0

    @property
    def size(self) -> int:
        """Vectors in the index and the delta together: an upper bound on what a search can return."""
        return self.index_count + len(self.delta_keys)


class Snapshots:
    """Holds the current :class:`Snapshot` of one store and swaps in new generations under a lock.

    Readers use :attr:`current` without locking: the reference is replaced atomically and a snapshot is
    never changed once made.
    """

    def __init__(self, store: CatalogStore, model: str, registry: IndexRegistry | None = None) -> None:
        """
        Args:
            store: the store to follow.
            model: the model spec of the engine's encoder; a store rebuilt with another model is refused.
            registry: the vector-index backends to load generations with (the default one if ``None``).
        """
        self._store = store
        self._model = model
        self._registry = registry or default_index_registry()
        self._lock = threading.Lock()
        self._manifest_stamp: int | None = -1
        self._current = self._load()

    @property
    def current(self) -> Snapshot:
        return self._current

    def refresh(self) -> bool:
        """Swap in a newly published index generation, if there is one; returns whether it did.

        In-flight queries keep the snapshot they started with.

        Raises:
            QueryError: the store now holds another model's vectors (rebuilt); the current snapshot stays.
        """
        stamp = self._store.manifest_stamp()
        if stamp is None or stamp == self._manifest_stamp:
            return False
        published = self._store.read_published_manifest()
        if published.model != self._model:
            raise QueryError(
                f"the store was rebuilt with model {published.model!r}; this engine holds {self._model!r} "
                "and keeps serving its current generation: restart the service to serve the new model"
            )
        with self._lock:
            before = self._current.generation
            self._current = self._load()
            return self._current.generation != before

    def apply_changes(self) -> None:
        """Pick up items added or removed in the store since the snapshot (after this process's writes)."""
        with self._lock:
            snap = self._current
            self._current = self._with_delta(snap.generation, snap.index, snap.seq, snap.degraded, snap.rerank)

    def _load(self) -> Snapshot:
        """The published generation, checked against the manifest; a damaged one is never searched.

        Falls back to the previous generation when its file is still there and checks out (its changes
        since are applied as for any older generation), else to an exact search over every vector in
        SQLite (the source of truth); either way with a warning on the ``catalens.index`` logger.
        """
        self._manifest_stamp = self._store.manifest_stamp()
        manifest = self._store.reload_manifest()
        state = manifest.index
        if state is None:
            return self._with_delta(None, None, 0)
        try:
            index, rerank = self._load_tuned(state)
            return self._with_delta(state.generation, index, state.seq, rerank=rerank)
        except IndexDamagedError as damaged:
            problem = str(damaged)
        previous = manifest.previous_index
        if previous is not None:
            loaded = self._try_load(previous)
            if loaded is not None:
                note = f"{problem}; serving the previous generation {previous.generation} with the changes since"
                log.warning("%s", note)
                return self._with_delta(previous.generation, loaded[0], previous.seq, note, loaded[1])
        note = f"{problem}; searching every vector in SQLite exactly until the index is rebuilt"
        log.warning("%s", note)
        return self._with_delta(None, None, 0, note)

    def _try_load(self, state: IndexState) -> tuple[VectorIndex, int] | None:
        try:
            return self._load_tuned(state)
        except IndexDamagedError as e:
            log.warning("%s", e)
            return None

    def _load_tuned(self, state: IndexState) -> tuple[VectorIndex, int]:
        """A generation's index with the search settings its tuning chose, and its re-rank depth."""
        return load_tuned(self._store, state, self._registry)

    def _with_delta(
        self,
        generation: int | None,
        index: VectorIndex | None,
        seq: int,
        degraded: str | None = None,
        rerank: int = 0,
    ) -> Snapshot:
        keys, vectors, removed = self._store.changes_since(seq)
        hidden = np.union1d(removed, keys) if index is not None else np.zeros(0, dtype=np.int64)
        return Snapshot(generation, index, seq, keys, vectors, hidden, degraded, rerank)

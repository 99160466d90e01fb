"""The feature tables of a store (tagging, near-duplicate groups), as :class:`~.catalog.CatalogStore` properties.

Each is a thin object over the store's connection, its lock and its transaction; kept here so the facade stays
one concern (opening, items, vectors, generations) and a new table adds a property, not lines to the facade.
"""

from __future__ import annotations

import sqlite3
import threading

from catalens.indexer.store.duplicates import DuplicateTable
from catalens.indexer.store.manifest import StoreManifest
from catalens.indexer.store.sql import Transaction
from catalens.indexer.store.tags import TagTable


class StoreTables:
    """Mixed into ``CatalogStore``, which sets the connection, lock and manifest and opens transactions."""

    _db: sqlite3.Connection
    _guard: threading.RLock
    _manifest: StoreManifest

    def _transaction(self) -> Transaction:
        raise NotImplementedError

    @property
    def tags(self) -> TagTable:
        """Tagging runs, items' tags and people's decisions, the review queue (see :mod:`.tags`)."""
        return TagTable(self._db, self._guard, self._transaction, self._manifest.model)

    @property
    def duplicates(self) -> DuplicateTable:
        """Near-duplicate groups and the runs that found them (see :mod:`.duplicates`)."""
        return DuplicateTable(self._db, self._guard, self._transaction)

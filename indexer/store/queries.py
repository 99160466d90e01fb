"""The store's read-only queries behind search: full-text matches, filters and facets, and narrow column reads.

A mixin of :class:`~.catalog.CatalogStore` (which sets the connection and its lock), kept apart so the facade
stays about opening, items, vectors and generations, and the queries the engine runs per request sit together.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from catalens.indexer.store import filters, fulltext, items
from catalens.indexer.store.filters import ItemFilter
from catalens.indexer.store.fulltext import LexicalMatch


class StoreQueries:
    """Mixed into ``CatalogStore``, which sets the connection and the lock serialising its use."""

    _db: sqlite3.Connection
    _guard: threading.RLock

    def lexical_search(
        self,
        match: str,
        where: ItemFilter,
        limit: int,
        stats: fulltext.TermStats | None = None,
        columns: Sequence[str] | None = None,
    ) -> list[LexicalMatch]:
        """The best ``limit`` full-text matches of an FTS5 MATCH expression among items passing ``where``.

        Args:
            match: an expression from :func:`indexer.lexical.match_expression`.
            where: the same metadata filter vector search takes.
            limit: how many matches to return, best first.
            stats: the caller's cache of common words' row counts (see :func:`fulltext.lexical_search`).
            columns: match in these full-text columns only (``None``: every column).
        """
        with self._guard:
            return fulltext.lexical_search(self._db, match, where, limit, stats, columns)

    def full_text(self, key: int) -> dict[str, str]:
        """The words an item has in the full-text index, by field (``{}`` when it is not indexed)."""
        with self._guard:
            return fulltext.text_of(self._db, key)

    def lexical_snippets(
        self, match: str, keys: Iterable[int], tokens: int = 12, columns: Sequence[str] | None = None
    ) -> dict[int, dict[str, str]]:
        """For each key, the fields ``match`` hits (in ``columns``, if given) with a short marked-up excerpt of each."""
        wanted = [int(k) for k in keys]
        with self._guard:
            return fulltext.lexical_snippets(self._db, fulltext.only_columns(match, columns), wanted, tokens)

    def matching_keys(self, where: ItemFilter) -> np.ndarray:
        """Keys of the indexed items that satisfy ``where``, sorted (int64)."""
        with self._guard:
            return filters.matching_keys(self._db, where)

    def facet_counts(self, name: str, limit: int = 50) -> list[tuple[str, int]]:
        """Indexed-item counts per value of ``category`` or of one attribute, most frequent first."""
        with self._guard:
            return filters.facet_counts(self._db, name, limit)

    def attribute_names(self, limit: int = 50) -> list[tuple[str, int]]:
        """Attribute names set on indexed items with how many items set each, the most widely set first."""
        with self._guard:
            return filters.attribute_names(self._db, limit)

    def price_range(self) -> tuple[float, float] | None:
        """The lowest and highest price of the indexed items, or ``None`` when none has a price."""
        with self._guard:
            return filters.price_range(self._db)

    def indexed_columns(self, keys: Iterable[int], columns: Sequence[str]) -> dict[int, tuple[Any, ...]]:
        """A few columns of the indexed items among ``keys`` (see :func:`items.indexed_columns`)."""
        with self._guard:
            return items.indexed_columns(self._db, [int(k) for k in keys], columns)

    def attribute_keys(self, name: str, value: str) -> np.ndarray:
        """Keys of the items whose catalog attribute has a value (see :func:`items.attribute_keys`)."""
        with self._guard:
            return items.attribute_keys(self._db, name, value)

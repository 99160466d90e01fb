"""Typed errors of the query side; the CLI maps them to exit codes and the service to HTTP statuses."""

from __future__ import annotations

from catalens.models.errors import CatalensError


class SearchError(CatalensError):
    """Base class for query-side errors."""


class QueryError(SearchError, ValueError):
    """A query that cannot be answered as asked (empty, parts that cancel out, a bad label list...)."""


class ItemNotFoundError(SearchError, LookupError):
    """No item with this external id exists in the store."""

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id
        super().__init__(f"no item with id {item_id!r}")


class ItemNotIndexedError(SearchError):
    """The item exists but has no vector (it failed to index)."""

    def __init__(self, item_id: str, reason: str | None) -> None:
        self.item_id = item_id
        self.reason = reason
        super().__init__(f"item {item_id!r} has no embedding ({reason or 'not indexed'})")

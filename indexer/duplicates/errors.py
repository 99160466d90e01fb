"""Typed errors of duplicate finding."""

from __future__ import annotations

from catalens.indexer.errors import IndexerError


class DuplicatesError(IndexerError, ValueError):
    """A duplicates run cannot start as asked (a threshold outside (0, 1], a batch size under 1)."""

"""Near-duplicate groups: the same photo re-encoded, resized, cropped a little, watermarked or mirrored.

:func:`find_duplicates` range-searches the store's index for pairs of image vectors at least a threshold alike,
adds byte-identical copies (same content hash), and joins them into groups; :func:`save_duplicates` stores the
groups (``CatalogStore.duplicates``), which search's ``dedupe`` reads to show one item per group;
:func:`find_and_save` does both under the writer lock, as ``catalens duplicates`` runs it.

- :mod:`.finder`: the run and its report
- :mod:`.neighbours`: similar pairs from the index generation and the changes since
- :mod:`.grouping`: union-find and the groups' members
"""

from __future__ import annotations

from catalens.indexer.duplicates.errors import DuplicatesError
from catalens.indexer.duplicates.finder import (
    DEFAULT_THRESHOLD,
    DuplicateReport,
    find_and_save,
    find_duplicates,
    save_duplicates,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "DuplicateReport",
    "DuplicatesError",
    "find_and_save",
    "find_duplicates",
    "save_duplicates",
]

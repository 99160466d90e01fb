"""The catalog store: a directory whose SQLite database is the source of truth.

Layout of a store directory::

    manifest.json        schema version, model spec, dimension, index factory and current generation
    catalog.sqlite3      items (metadata, status, errors), their vectors, captions and OCR text, and the
                         FTS5 full-text index over all their words, in WAL mode
    index/gen-NNNNNN.faiss  the FAISS index of one generation, derived from SQLite and rebuildable from it
    writer.lock          held by the one process allowed to write

FAISS ids are the items' integer keys (``AUTOINCREMENT``, so a deleted item's key is never reused and a
stale index generation can never point at the wrong item); external ids such as SKUs or relative paths are
strings mapped to keys here.

Callers use :class:`CatalogStore` and the types re-exported here; the modules behind it each hold one
concern:

- :mod:`.schema`: the DDL, opening a connection, upgrades between schema versions
- :mod:`.manifest`: ``manifest.json`` (:class:`StoreManifest`, :class:`IndexState`)
- :mod:`.items`: item rows (:class:`StoredItem`, :class:`ItemState`), batch writes, deletes, lookups
- :mod:`.vectors`: vector blobs and reading them back for index builds and readers' deltas
- :mod:`.enrichments`: captions and OCR results (:class:`Enrichment`)
- :mod:`.fulltext`: the FTS5 rows and BM25 queries (:class:`LexicalMatch`)
- :mod:`.filters`: metadata filters (:class:`ItemFilter`) and facet counts
- :mod:`.tags`: tagging runs, items' tags and people's decisions (:class:`TagTable`, :class:`Tag`, ...); their
  tables and triggers are in :mod:`.tag_schema`
- :mod:`.duplicates`: near-duplicate groups and the runs that found them (:class:`DuplicateTable`,
  :class:`DuplicateGroup`, ...); their tables in :mod:`.duplicate_schema`
- :mod:`.tables`: the feature tables (``tags``, ``duplicates``) as properties of the facade
- :mod:`.generations`: index generation files, the change sequence and the removals log
- :mod:`.sql`: shared SQLite helpers (transactions, chunked ``IN (...)`` lists)
- :mod:`.queries`: the read-only queries behind search (full text, filters, facets, narrow column reads)
- :mod:`.catalog`: the :class:`CatalogStore` facade
"""

from __future__ import annotations

from catalens.indexer.store.catalog import LOCK_NAME, CatalogStore
from catalens.indexer.store.duplicates import DuplicateGroup, DuplicateMember, DuplicateRun, DuplicateTable
from catalens.indexer.store.enrichments import (
    CaptionSources,
    Enrichment,
    EnrichmentKind,
    EnrichmentTask,
    vector_caption_spec,
)
from catalens.indexer.store.filters import ItemFilter
from catalens.indexer.store.fulltext import LexicalMatch
from catalens.indexer.store.generations import INDEX_DIR, KEEP_GENERATIONS
from catalens.indexer.store.items import EmbeddedItem, FailedItem, ItemState, StoredItem
from catalens.indexer.store.manifest import MANIFEST_NAME, IndexState, StoreManifest
from catalens.indexer.store.schema import DB_NAME, SCHEMA_VERSION, UPGRADABLE_VERSIONS
from catalens.indexer.store.tags import ModelTag, ReviewEntry, Tag, TagRow, TagRun, TagTable

__all__ = [
    "DB_NAME",
    "INDEX_DIR",
    "KEEP_GENERATIONS",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "UPGRADABLE_VERSIONS",
    "CaptionSources",
    "CatalogStore",
    "DuplicateGroup",
    "DuplicateMember",
    "DuplicateRun",
    "DuplicateTable",
    "EmbeddedItem",
    "Enrichment",
    "EnrichmentKind",
    "EnrichmentTask",
    "FailedItem",
    "IndexState",
    "ItemFilter",
    "ItemState",
    "LexicalMatch",
    "ModelTag",
    "ReviewEntry",
    "StoreManifest",
    "StoredItem",
    "Tag",
    "TagRow",
    "TagRun",
    "TagTable",
    "vector_caption_spec",
]

"""``CatalogStore``: the one object callers use to open, read and write a store directory.

It owns the SQLite connection, the lock that serialises its use across threads, and the manifest; each
method delegates the SQL to the module of its concern (items, vectors, enrichments, full-text, generations)
and decides the transaction: every write method is one ``BEGIN IMMEDIATE`` transaction, and the full-text
rows of what it changed are rewritten inside it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from catalens.indexer.vectors.base import VectorIndex

from catalens.indexer.errors import StoreCorruptError, StoreNotFoundError, StoreVersionError, StoreWriteError
from catalens.indexer.lock import WriterLock
from catalens.indexer.records import ItemRecord
from catalens.indexer.store import enrichments, fulltext, generations, items, vectors
from catalens.indexer.store.enrichments import Enrichment, EnrichmentKind, EnrichmentTask
from catalens.indexer.store.faults import PUBLISH, CheckedLock, as_write_error, is_writable, write_error
from catalens.indexer.store.generations import INDEX_DIR
from catalens.indexer.store.integrity import IndexLoader, load_verified
from catalens.indexer.store.items import EmbeddedItem, FailedItem, ItemState, StoredItem
from catalens.indexer.store.manifest import (
    MANIFEST_NAME,
    IndexState,
    StoreManifest,
    manifest_stamp,
    read_manifest,
    write_manifest,
)
from catalens.indexer.store.queries import StoreQueries
from catalens.indexer.store.schema import DB_NAME, SCHEMA_VERSION, UPGRADABLE_VERSIONS, open_database
from catalens.indexer.store.sql import Transaction, now
from catalens.indexer.store.tables import StoreTables

LOCK_NAME = "writer.lock"


class CatalogStore(StoreQueries, StoreTables):
    """A store directory opened for reading and, under :meth:`writer_lock`, writing.

    Use :meth:`create` or :meth:`open`; close with :meth:`close` or a ``with`` block.
    """

    def __init__(self, path: Path, manifest: StoreManifest, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._manifest = manifest
        self._guard = threading.RLock()
        self._db = open_database(path / DB_NAME, str(path), read_only=read_only)

    # -- opening -----------------------------------------------------------------------------------------

    @staticmethod
    def exists(path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` holds a store (a manifest)."""
        return (Path(path) / MANIFEST_NAME).is_file()

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        model: str,
        dim: int,
        index_factory: str = "auto",
        model_digest: str | None = None,
    ) -> CatalogStore:
        """Create an empty store (the directory may exist, but must not hold a store yet).

        ``index_factory`` is the index the store asks for: ``auto`` (planned at each build) or a factory string;
        ``model_digest`` the model's weights digest, where it has one.
        """
        root = Path(path).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        (root / INDEX_DIR).mkdir(exist_ok=True)
        manifest = StoreManifest(SCHEMA_VERSION, model, int(dim), index_factory, now(), model_digest=model_digest)
        store = cls(root, manifest)
        store._write_manifest(manifest)
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, read_only: bool | None = None) -> CatalogStore:
        """Open an existing store, upgrading an older schema version in place.

        Args:
            path: the store directory.
            read_only: open without writing anything (SQLite ``mode=ro``/``immutable``; see
                :func:`~catalens.indexer.store.schema.open_read_only`), for a store on a read-only
                filesystem or a replica's snapshot. ``None`` decides by whether the directory and the database
                are writable. Writes on a read-only store raise :class:`StoreWriteError`.

        Raises:
            StoreNotFoundError: no manifest at ``path``.
            StoreVersionError: the schema version is neither this catalens's nor one it can upgrade.
            StoreCorruptError: the manifest or database cannot be read.
        """
        root = Path(path).expanduser().resolve()
        if not (root / MANIFEST_NAME).is_file():
            raise StoreNotFoundError(str(path))
        try:
            manifest = read_manifest(root)
        except (ValueError, KeyError, TypeError) as e:
            raise StoreCorruptError(str(path), f"{MANIFEST_NAME} is unreadable ({e})") from e
        if manifest.schema_version != SCHEMA_VERSION and manifest.schema_version not in UPGRADABLE_VERSIONS:
            raise StoreVersionError(str(path), manifest.schema_version, SCHEMA_VERSION)
        if read_only is None:
            read_only = not is_writable(root, root / DB_NAME)
        try:
            store = cls(root, manifest, read_only=read_only)
        except sqlite3.OperationalError as e:
            converted = None if read_only else write_error(str(path), "open the database for writing", e)
            if converted is not None and converted.read_only:
                # A directory that looked writable but is not (a read-only mount seen through root's access).
                return cls.open(path, read_only=True)
            raise StoreCorruptError(str(path), f"{DB_NAME} is unreadable ({e})") from e
        except sqlite3.DatabaseError as e:
            raise StoreCorruptError(str(path), f"{DB_NAME} is unreadable ({e})") from e
        if manifest.schema_version != SCHEMA_VERSION and not read_only:
            # The database was upgraded when it was connected; the manifest follows once that committed.
            store._write_manifest(replace(manifest, schema_version=SCHEMA_VERSION))
        return store

    def close(self) -> None:
        with self._guard:
            self._db.close()

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def writer_lock(self) -> WriterLock:
        """The lock every writer holds; a second writer fails fast with :class:`StoreLockedError`.

        A lock file that cannot be created or written (read-only filesystem, full disk) raises
        :class:`StoreWriteError` on entry.
        """
        if self.read_only:
            raise StoreWriteError(str(self.path), "take the writer lock", "opened read-only", read_only=True)
        return CheckedLock(self.path / LOCK_NAME, str(self.path))

    # -- manifest ----------------------------------------------------------------------------------------

    @property
    def manifest(self) -> StoreManifest:
        return self._manifest

    def manifest_stamp(self) -> int | None:
        """A value that changes whenever a generation is published (``None`` while no manifest exists).

        Readers poll it to notice a writer's publish cheaply, without parsing the manifest.
        """
        return manifest_stamp(self.path)

    def read_published_manifest(self) -> StoreManifest:
        """The manifest as published on disk now, without replacing this handle's own copy."""
        return read_manifest(self.path)

    def reload_manifest(self) -> StoreManifest:
        """Re-read ``manifest.json`` (another process may have published a generation)."""
        self._manifest = read_manifest(self.path)
        return self._manifest

    def _write_manifest(self, manifest: StoreManifest, operation: str = "write the manifest") -> None:
        try:
            write_manifest(self.path, manifest)
        except OSError as e:
            raise as_write_error(str(self.path), operation, e) from e
        self._manifest = manifest

    def reset_model(self, model: str, dim: int, model_digest: str | None = None) -> None:
        """Switch the store to another model or other weights: every vector is dropped, every item re-embedded."""
        with self._guard, self._transaction():
            self._db.execute("DELETE FROM vectors")
        self._write_manifest(replace(self._manifest, model=model, dim=int(dim), model_digest=model_digest))

    def record_model_digest(self, model_digest: str) -> None:
        """Record the weights digest of a store written before digests were, keeping its vectors.

        Only for a store whose manifest has none: the caller takes the vectors to be from these weights.
        """
        if self._manifest.model_digest is not None:
            raise ValueError(f"the store already records weights {self._manifest.model_digest}")
        self._write_manifest(replace(self._manifest, model_digest=model_digest))

    # -- writing -----------------------------------------------------------------------------------------

    def _transaction(self) -> Transaction:
        return Transaction(self._db, str(self.path), "write to the database")

    def write_batch(
        self,
        embedded: Iterable[EmbeddedItem] = (),
        failed: Iterable[tuple[FailedItem, ItemRecord | None]] = (),
        touched: Iterable[ItemRecord] = (),
    ) -> None:
        """Write one batch of results in a single transaction, so a crash keeps all of it or none.

        Args:
            embedded: items to insert or update with their vectors (for the store's model).
            failed: failures, with the record when the source described the item; their vectors are dropped.
            touched: items whose image is unchanged but whose metadata or file stat may have changed.
        """
        stamp = now()
        with self._guard, self._transaction():
            seq = generations.next_seq(self._db)
            changed = items.write_items(self._db, self._manifest.model, stamp, seq, embedded, failed, touched)
            fulltext.sync_text(self._db, changed)

    def delete_items(self, ids: Iterable[str]) -> int:
        """Delete items (and, by cascade, their vectors) by external id; returns how many existed."""
        wanted = list(ids)
        with self._guard, self._transaction():
            seq = generations.next_seq(self._db)
            deleted = items.delete_items(self._db, wanted, seq)
            fulltext.sync_text(self._db, deleted)
        return len(deleted)

    # -- captions and OCR text -----------------------------------------------------------------------------

    def enrichment_tasks(self, kind: EnrichmentKind, spec: str, *, redo: bool = False) -> list[EnrichmentTask]:
        """Indexed items that ``spec`` has not yet done for their current image, in key order.

        Args:
            kind: ``caption`` or ``ocr``.
            spec: the captioner or OCR engine about to run; items done by another spec are due again.
            redo: every indexed item, done or not.
        """
        with self._guard:
            return enrichments.enrichment_tasks(self._db, kind, spec, redo)

    def write_enrichments(self, results: Iterable[tuple[int, Enrichment]]) -> int:
        """Store captions or OCR results and refresh those items' full-text rows, in one transaction.

        A result for an item that was deleted, or whose image changed, while it was being processed is
        dropped (it describes pixels the store no longer has). Returns how many were stored.
        """
        stamp = now()
        with self._guard, self._transaction():
            written = enrichments.write_enrichments(self._db, results, stamp)
            fulltext.sync_text(self._db, written)
        return len(written)

    def enrichments_for(self, keys: Iterable[int]) -> dict[int, dict[str, Enrichment]]:
        """Captions and OCR results by item key, then by kind; items without any are absent."""
        wanted = [int(k) for k in keys]
        with self._guard:
            return enrichments.enrichments_of(self._db, wanted)

    def enrichment_counts(self) -> dict[str, dict[str, int]]:
        """Per kind and spec, how many indexed items are done and how many failed: ``{kind: {spec: n}}``.

        Failures are counted under ``"<spec> (failed)"``.
        """
        with self._guard:
            return enrichments.enrichment_counts(self._db)

    def caption_sources(self) -> enrichments.CaptionSources:
        """How many captions restate the store's own vectors and how many read the pixels (a few rows read)."""
        with self._guard:
            return enrichments.caption_sources(self._db, self._manifest.model_key)

    # -- reading -----------------------------------------------------------------------------------------

    def item_states(self, origin: str | None = None) -> dict[str, ItemState]:
        """Every item's skip-decision state, keyed by external id (optionally only those of one origin)."""
        with self._guard:
            return items.item_states(self._db, self._manifest.model, origin)

    def status_counts(self) -> dict[str, int]:
        """Item counts by status (``indexed``, ``failed``)."""
        with self._guard:
            return items.status_counts(self._db)

    def failures(self, limit: int = 100) -> list[FailedItem]:
        """Failed items with their reasons, most recent first."""
        with self._guard:
            return items.failures(self._db, limit)

    def get_items(self, keys: Iterable[int]) -> dict[int, StoredItem]:
        """Items by integer key (the FAISS ids); unknown keys are absent from the result."""
        wanted = [int(k) for k in keys]
        with self._guard:
            return {item.key: item for item in items.items_by(self._db, "key", wanted)}

    def get_items_by_id(self, item_ids: Iterable[str]) -> dict[str, StoredItem]:
        """Items by external id, in one query per 500 ids; unknown ids are absent from the result."""
        wanted = list(dict.fromkeys(item_ids))
        with self._guard:
            return {item.id: item for item in items.items_by(self._db, "id", wanted)}

    def get_item(self, item_id: str) -> StoredItem | None:
        """One item by external id."""
        with self._guard:
            return items.get_item(self._db, item_id)

    def size_on_disk(self) -> int:
        """Bytes used by every file in the store directory."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    # -- vectors -----------------------------------------------------------------------------------------

    def vector_count(self) -> int:
        """How many items have a vector for the store's model."""
        with self._guard:
            return vectors.vector_count(self._db, self._manifest.model)

    def iter_vectors(self, chunk_size: int = 16384) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream ``(keys int64 (n,), vectors float32 (n, dim))`` for the store's model, in key order.

        Chunked by key ranges so that building an index over millions of items never holds all rows at once.
        """
        yield from vectors.iter_vectors(self._db, self._guard, self._manifest.model, self._manifest.dim, chunk_size)

    def vectors_for(self, keys: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of the given item keys (those that have one), as ``(keys, vectors)``."""
        wanted = [int(k) for k in keys]
        with self._guard:
            rows = vectors.vectors_of(self._db, self._manifest.model, wanted)
        return vectors.unpack(rows, self._manifest.dim)

    # -- index generations ------------------------------------------------------------------------------

    def index_path(self) -> Path | None:
        """The current generation's index file, or ``None`` before the first publish."""
        index = self._manifest.index
        return self.path / index.file if index else None

    def load_index(self, state: IndexState, load: IndexLoader) -> VectorIndex:
        """Load a published generation (:attr:`manifest`'s ``index`` or ``previous_index``), checked first.

        Raises:
            IndexDamagedError: the file is missing, not the one published (checksum), unreadable, or of
                another size or dimension than the manifest records.
        """
        manifest = self._manifest
        return load_verified(self.path, str(self.path), state, manifest.dim, manifest.checksum_of(state), load)

    def change_stamp(self) -> tuple[int, int]:
        """A value that changes whenever the database does: a commit by any other connection (SQLite's
        ``data_version``) or a row changed through this one. Readers key caches of derived facts on it."""
        with self._guard:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0]), self._db.total_changes

    def current_seq(self) -> int:
        """The change sequence: it increases with every write transaction."""
        with self._guard:
            return generations.current_seq(self._db)

    def changes_since(self, seq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What changed after an index generation was built at change sequence ``seq``.

        Returns:
            ``(keys, vectors, removed)``: items (re-)embedded since, with their vectors, and keys whose
            vectors were removed since. A reader searches its index generation, ignores ``removed`` and
            ``keys`` there, and searches ``vectors`` exactly.
        """
        with self._guard:
            rows = vectors.vectors_changed_since(self._db, self._manifest.model, seq)
            removed = generations.removed_since(self._db, seq)
        keys, found = vectors.unpack(rows, self._manifest.dim)
        return keys, found, removed

    def publish_index(
        self,
        write: Callable[[Path], None],
        factory: str,
        count: int,
        seq: int = 0,
        *,
        tuning: dict[str, Any] | None = None,
        requested: str | None = None,
    ) -> IndexState:
        """Publish a new index generation atomically, then record it in the manifest.

        The index file is written under a new name (temp file, fsync, rename, fsync of the folder), so a
        reader that has the previous generation open is never disturbed; the manifest is switched only
        once the file is durable. Generations older than the previous one are deleted.

        Args:
            write: writes the index to the path it is given.
            factory: the factory string the index was built with.
            count: the number of vectors in it.
            seq: the change sequence read before the vectors were (see :meth:`changes_since`).
            tuning: the measured recall and search settings to record with the generation.
            requested: what the store asks for from now on (``auto`` or a factory string; ``factory`` if
                ``None``), kept as the manifest's ``index_factory``.
        """
        current = self._manifest.index
        generation = (current.generation if current else 0) + 1
        try:
            relative, checksum, size = generations.write_generation(self.path, generation, write)
        except (OSError, RuntimeError) as e:
            raise as_write_error(str(self.path), PUBLISH, e) from e
        state = IndexState(generation, relative, factory, int(count), now(), int(seq), size, tuning)
        previous_seq = current.seq if current else 0
        published = replace(
            self._manifest,
            index=state,
            previous_index=current,
            checksums=generations.kept_checksums(self._manifest, relative, checksum),
            index_factory=requested or factory,
        )
        try:
            self._write_manifest(published, PUBLISH)
        except StoreWriteError:
            # The manifest still names the previous generation; the orphan file is replaced by the next publish.
            (self.path / relative).unlink(missing_ok=True)
            raise
        generations.prune_generations(self.path / INDEX_DIR, generation)
        # Readers of the two kept generations only ask for removals after the older one's sequence.
        with self._guard, self._transaction():
            generations.forget_removals(self._db, min(previous_seq, seq))
        return state

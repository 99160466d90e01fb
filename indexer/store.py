"""The catalog store: a directory whose SQLite database is the source of truth.

Layout of a store directory::

    manifest.json        schema version, model spec, dimension, index factory and current generation
    catalog.sqlite3      items (metadata, status, errors) and their vectors, in WAL mode
    index/gen-NNNNNN.faiss  the FAISS index of one generation, derived from SQLite and rebuildable from it
    writer.lock          held by the one process allowed to write

FAISS ids are the items' integer keys (``AUTOINCREMENT``, so a deleted item's key is never reused and a
stale index generation can never point at the wrong item); external ids such as SKUs or relative paths are
strings mapped to keys here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import StoreCorruptError, StoreNotFoundError, StoreVersionError
from indexer.fsutil import atomic_write, atomic_write_text
from indexer.lock import WriterLock
from indexer.records import ItemRecord, attributes_json

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
DB_NAME = "catalog.sqlite3"
INDEX_DIR = "index"
LOCK_NAME = "writer.lock"
KEEP_GENERATIONS = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    origin       TEXT NOT NULL,
    source       TEXT NOT NULL,
    product_id   TEXT,
    title        TEXT,
    description  TEXT,
    category     TEXT,
    price        REAL,
    attributes   TEXT NOT NULL DEFAULT '{}',
    content_hash TEXT,
    stat         TEXT,
    width        INTEGER,
    height       INTEGER,
    status       TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
    error        TEXT,
    seq          INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_seq ON items (seq);
-- Keys whose vector left the store (deleted, or failed on re-indexing), by change sequence, so a reader
-- holding an older index generation knows which of its ids to ignore.
CREATE TABLE IF NOT EXISTS removals (
    key INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('seq', 0);
CREATE INDEX IF NOT EXISTS items_origin ON items (origin);
CREATE INDEX IF NOT EXISTS items_category ON items (category);
CREATE INDEX IF NOT EXISTS items_product ON items (product_id);
CREATE TABLE IF NOT EXISTS vectors (
    item_key INTEGER NOT NULL REFERENCES items (key) ON DELETE CASCADE,
    model    TEXT NOT NULL,
    vector   BLOB NOT NULL,
    PRIMARY KEY (item_key, model)
) WITHOUT ROWID;
"""

_UPSERT = """
INSERT INTO items (id, origin, source, product_id, title, description, category, price, attributes,
                   content_hash, stat, width, height, status, error, seq, created_at, updated_at)
VALUES (:id, :origin, :source, :product_id, :title, :description, :category, :price, :attributes,
        :content_hash, :stat, :width, :height, :status, :error, :seq, :now, :now)
ON CONFLICT (id) DO UPDATE SET
    origin = excluded.origin, source = excluded.source, product_id = excluded.product_id,
    title = excluded.title, description = excluded.description, category = excluded.category,
    price = excluded.price, attributes = excluded.attributes, content_hash = excluded.content_hash,
    stat = excluded.stat, width = excluded.width, height = excluded.height, status = excluded.status,
    error = excluded.error, seq = excluded.seq, updated_at = excluded.updated_at
RETURNING key
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class IndexState:
    """The published FAISS index generation.

    Attributes:
        generation: increases by one with every publish.
        file: the index file, relative to the store directory.
        factory: the FAISS index-factory string it was built with.
        count: the number of vectors in it.
        built_at: UTC timestamp of the publish.
        seq: the store's change sequence when it was built; later changes are applied on top by readers.
    """

    generation: int
    file: str
    factory: str
    count: int
    built_at: str
    seq: int = 0


@dataclass(frozen=True)
class StoreManifest:
    """The store-level facts in ``manifest.json``; written atomically, read by every process."""

    schema_version: int
    model: str
    dim: int
    index_factory: str
    created_at: str
    index: IndexState | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StoreManifest:
        raw = json.loads(text)
        index = raw.get("index")
        return cls(
            schema_version=int(raw["schema_version"]),
            model=str(raw["model"]),
            dim=int(raw["dim"]),
            index_factory=str(raw["index_factory"]),
            created_at=str(raw["created_at"]),
            index=IndexState(**index) if index else None,
        )


@dataclass(frozen=True)
class ItemState:
    """What the indexer needs to know about an existing item to decide whether to skip it."""

    key: int
    id: str
    stat: str | None
    content_hash: str | None
    status: str
    metadata: tuple[Any, ...]
    has_vector: bool


@dataclass(frozen=True)
class StoredItem:
    """An item row as the query side and ``catalens info`` see it."""

    key: int
    id: str
    origin: str
    source: str
    product_id: str | None
    title: str | None
    description: str | None
    category: str | None
    price: float | None
    attributes: dict[str, Any]
    width: int | None
    height: int | None
    status: str
    error: str | None
    content_hash: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class ItemFilter:
    """Metadata conditions on indexed items; all given conditions must hold.

    Attributes:
        categories: the item's category is one of these (none given: any category).
        price_min, price_max: inclusive price bounds; items without a price fail a bound.
        attributes: ``(name, value)`` pairs the item's attributes must equal (compared as text).
    """

    categories: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    attributes: tuple[tuple[str, str], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.categories or self.attributes) and self.price_min is None and self.price_max is None


@dataclass(frozen=True)
class EmbeddedItem:
    """An item whose image was decoded and embedded, ready to be written."""

    record: ItemRecord
    content_hash: str
    width: int
    height: int
    vector: np.ndarray


@dataclass(frozen=True)
class FailedItem:
    """An item that could not be indexed, with the reason people will read."""

    id: str
    source: str
    reason: str


class CatalogStore:
    """A store directory opened for reading and, under :meth:`writer_lock`, writing.

    Use :meth:`create` or :meth:`open`; close with :meth:`close` or a ``with`` block.
    """

    def __init__(self, path: Path, manifest: StoreManifest) -> None:
        self.path = path
        self._manifest = manifest
        self._guard = threading.RLock()
        self._db = self._connect(path / DB_NAME)

    # -- opening -----------------------------------------------------------------------------------------

    @staticmethod
    def exists(path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` holds a store (a manifest)."""
        return (Path(path) / MANIFEST_NAME).is_file()

    @classmethod
    def create(cls, path: str | os.PathLike[str], model: str, dim: int, index_factory: str = "Flat") -> CatalogStore:
        """Create an empty store (the directory may exist, but must not hold a store yet)."""
        root = Path(path).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        (root / INDEX_DIR).mkdir(exist_ok=True)
        manifest = StoreManifest(SCHEMA_VERSION, model, int(dim), index_factory, _now())
        store = cls(root, manifest)
        store._write_manifest(manifest)
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> CatalogStore:
        """Open an existing store.

        Raises:
            StoreNotFoundError: no manifest at ``path``.
            StoreVersionError: the schema version is not this catalens's.
            StoreCorruptError: the manifest or database cannot be read.
        """
        root = Path(path).expanduser().resolve()
        manifest_path = root / MANIFEST_NAME
        if not manifest_path.is_file():
            raise StoreNotFoundError(str(path))
        try:
            manifest = StoreManifest.from_json(manifest_path.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError) as e:
            raise StoreCorruptError(str(path), f"{MANIFEST_NAME} is unreadable ({e})") from e
        if manifest.schema_version != SCHEMA_VERSION:
            raise StoreVersionError(str(path), manifest.schema_version, SCHEMA_VERSION)
        try:
            return cls(root, manifest)
        except sqlite3.DatabaseError as e:
            raise StoreCorruptError(str(path), f"{DB_NAME} is unreadable ({e})") from e

    def _connect(self, db_path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable against process crashes (kill -9) in WAL mode; only power loss can drop the
        # last transactions, and never corrupts the database.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 10000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            db.close()
            raise StoreVersionError(str(self.path), version, SCHEMA_VERSION)
        return db

    def close(self) -> None:
        with self._guard:
            self._db.close()

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def writer_lock(self) -> WriterLock:
        """The lock every writer holds; a second writer fails fast with :class:`StoreLockedError`."""
        return WriterLock(self.path / LOCK_NAME, str(self.path))

    # -- manifest ----------------------------------------------------------------------------------------

    @property
    def manifest(self) -> StoreManifest:
        return self._manifest

    def reload_manifest(self) -> StoreManifest:
        """Re-read ``manifest.json`` (another process may have published a generation)."""
        self._manifest = StoreManifest.from_json((self.path / MANIFEST_NAME).read_text(encoding="utf-8"))
        return self._manifest

    def _write_manifest(self, manifest: StoreManifest) -> None:
        atomic_write_text(self.path / MANIFEST_NAME, manifest.to_json())
        self._manifest = manifest

    def reset_model(self, model: str, dim: int) -> None:
        """Switch the store to another model: every vector is dropped, so every item is embedded again."""
        with self._guard, self._transaction():
            self._db.execute("DELETE FROM vectors")
        self._write_manifest(replace(self._manifest, model=model, dim=int(dim)))

    def set_index_factory(self, factory: str) -> None:
        """Record the FAISS factory string that the next index build uses."""
        if factory != self._manifest.index_factory:
            self._write_manifest(replace(self._manifest, index_factory=factory))

    # -- writing -----------------------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

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
        now = _now()
        model = self._manifest.model
        with self._guard, self._transaction():
            seq = self._next_seq()
            for item in embedded:
                key = self._upsert(item.record, now, seq, "indexed", None, item.content_hash, item.width, item.height)
                blob = np.ascontiguousarray(item.vector, dtype="<f4").tobytes()
                self._db.execute(
                    "INSERT OR REPLACE INTO vectors (item_key, model, vector) VALUES (?, ?, ?)", (key, model, blob)
                )
            for failure, record in failed:
                record = record or ItemRecord(id=failure.id, source=failure.source, origin="")
                key = self._upsert(record, now, seq, "failed", failure.reason, None, None, None)
                if self._db.execute("DELETE FROM vectors WHERE item_key = ?", (key,)).rowcount:
                    self._record_removal(key, seq)
            for record in touched:
                self._db.execute(
                    """UPDATE items SET source = ?, product_id = ?, title = ?, description = ?, category = ?,
                       price = ?, attributes = ?, stat = ?, updated_at = ? WHERE id = ?""",
                    (*record.metadata(), record.stat, now, record.id),
                )

    def _upsert(
        self,
        record: ItemRecord,
        now: str,
        seq: int,
        status: str,
        error: str | None,
        content_hash: str | None,
        width: int | None,
        height: int | None,
    ) -> int:
        row = self._db.execute(
            _UPSERT,
            {
                "id": record.id,
                "origin": record.origin,
                "source": record.source,
                "product_id": record.product_id,
                "title": record.title,
                "description": record.description,
                "category": record.category,
                "price": record.price,
                "attributes": attributes_json(record.attributes),
                "content_hash": content_hash,
                "stat": record.stat if status == "indexed" else None,
                "width": width,
                "height": height,
                "status": status,
                "error": error,
                "seq": seq,
                "now": now,
            },
        ).fetchone()
        return int(row[0])

    def delete_items(self, ids: Iterable[str]) -> int:
        """Delete items (and, by cascade, their vectors) by external id; returns how many existed."""
        ids = list(ids)
        with self._guard, self._transaction():
            seq = self._next_seq()
            deleted = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                keys = self._db.execute(f"DELETE FROM items WHERE id IN ({marks}) RETURNING key", chunk).fetchall()
                for (key,) in keys:
                    self._record_removal(key, seq)
                deleted += len(keys)
        return deleted

    def _next_seq(self) -> int:
        """Advance the change sequence; called once per write transaction."""
        row = self._db.execute("UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value").fetchone()
        return int(row[0])

    def _record_removal(self, key: int, seq: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO removals (key, seq) VALUES (?, ?)", (key, seq))

    # -- reading -----------------------------------------------------------------------------------------

    def item_states(self, origin: str | None = None) -> dict[str, ItemState]:
        """Every item's skip-decision state, keyed by external id (optionally only those of one origin)."""
        sql = """SELECT i.key, i.id, i.stat, i.content_hash, i.status, i.source, i.product_id, i.title,
                        i.description, i.category, i.price, i.attributes,
                        EXISTS (SELECT 1 FROM vectors v WHERE v.item_key = i.key AND v.model = ?) AS has_vector
                 FROM items i"""
        params: tuple[Any, ...] = (self._manifest.model,)
        if origin is not None:
            sql += " WHERE i.origin = ?"
            params += (origin,)
        with self._guard:
            rows = self._db.execute(sql, params).fetchall()
        return {
            row["id"]: ItemState(
                key=row["key"],
                id=row["id"],
                stat=row["stat"],
                content_hash=row["content_hash"],
                status=row["status"],
                metadata=(
                    row["source"],
                    row["product_id"],
                    row["title"],
                    row["description"],
                    row["category"],
                    row["price"],
                    row["attributes"],
                ),
                has_vector=bool(row["has_vector"]),
            )
            for row in rows
        }

    def vector_count(self) -> int:
        """How many items have a vector for the store's model."""
        with self._guard:
            row = self._db.execute("SELECT COUNT(*) FROM vectors WHERE model = ?", (self._manifest.model,)).fetchone()
        return int(row[0])

    def iter_vectors(self, chunk_size: int = 16384) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream ``(keys int64 (n,), vectors float32 (n, dim))`` for the store's model, in key order.

        Chunked by key ranges so that building an index over millions of items never holds all rows at once.
        """
        last = -1
        while True:
            with self._guard:
                rows = self._db.execute(
                    "SELECT item_key, vector FROM vectors WHERE model = ? AND item_key > ? ORDER BY item_key LIMIT ?",
                    (self._manifest.model, last, chunk_size),
                ).fetchall()
            if not rows:
                return
            keys, vectors = self._unpack(rows)
            last = int(keys[-1])
            yield keys, vectors

    def status_counts(self) -> dict[str, int]:
        """Item counts by status (``indexed``, ``failed``)."""
        with self._guard:
            rows = self._db.execute("SELECT status, COUNT(*) FROM items GROUP BY status").fetchall()
        counts = {"indexed": 0, "failed": 0}
        counts.update({row[0]: int(row[1]) for row in rows})
        return counts

    def failures(self, limit: int = 100) -> list[FailedItem]:
        """Failed items with their reasons, most recent first."""
        with self._guard:
            rows = self._db.execute(
                "SELECT id, source, error FROM items WHERE status = 'failed' ORDER BY updated_at DESC, key LIMIT ?",
                (limit,),
            ).fetchall()
        return [FailedItem(row[0], row[1], row[2] or "") for row in rows]

    def matching_keys(self, where: ItemFilter) -> np.ndarray:
        """Keys of the indexed items that satisfy ``where``, sorted (int64)."""
        clauses = ["status = 'indexed'"]
        params: list[Any] = []
        if where.categories:
            clauses.append(f"category IN ({','.join('?' * len(where.categories))})")
            params.extend(where.categories)
        if where.price_min is not None:
            clauses.append("price >= ?")
            params.append(where.price_min)
        if where.price_max is not None:
            clauses.append("price <= ?")
            params.append(where.price_max)
        for name, value in where.attributes:
            clauses.append("CAST(json_extract(attributes, ?) AS TEXT) = ?")
            params.extend([f'$."{name}"', value])
        sql = f"SELECT key FROM items WHERE {' AND '.join(clauses)} ORDER BY key"
        with self._guard:
            rows = self._db.execute(sql, params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def facet_counts(self, name: str, limit: int = 50) -> list[tuple[str, int]]:
        """Indexed-item counts per value of ``category`` or of one attribute, most frequent first."""
        if name == "category":
            sql, params = "SELECT category, COUNT(*) FROM items WHERE status = 'indexed' AND category IS NOT NULL", []
        else:
            sql = (
                "SELECT CAST(json_extract(attributes, ?) AS TEXT) AS v, COUNT(*) FROM items "
                "WHERE status = 'indexed' AND v IS NOT NULL"
            )
            params = [f'$."{name}"']
        with self._guard:
            rows = self._db.execute(f"{sql} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?", (*params, limit)).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]

    def get_items(self, keys: Iterable[int]) -> dict[int, StoredItem]:
        """Items by integer key (the FAISS ids); unknown keys are absent from the result."""
        keys = [int(k) for k in keys]
        found: dict[int, StoredItem] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            with self._guard:
                rows = self._db.execute(f"SELECT * FROM items WHERE key IN ({marks})", chunk).fetchall()
            found.update({row["key"]: _stored_item(row) for row in rows})
        return found

    def get_item(self, item_id: str) -> StoredItem | None:
        """One item by external id."""
        with self._guard:
            row = self._db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return _stored_item(row) if row else None

    def size_on_disk(self) -> int:
        """Bytes used by every file in the store directory."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    # -- index generations ------------------------------------------------------------------------------

    def index_path(self) -> Path | None:
        """The current generation's index file, or ``None`` before the first publish."""
        index = self._manifest.index
        return self.path / index.file if index else None

    def current_seq(self) -> int:
        """The change sequence: it increases with every write transaction."""
        with self._guard:
            return int(self._db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0])

    def changes_since(self, seq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What changed after an index generation was built at change sequence ``seq``.

        Returns:
            ``(keys, vectors, removed)``: items (re-)embedded since, with their vectors, and keys whose
            vectors were removed since. A reader searches its index generation, ignores ``removed`` and
            ``keys`` there, and searches ``vectors`` exactly.
        """
        with self._guard:
            rows = self._db.execute(
                """SELECT v.item_key, v.vector FROM items i JOIN vectors v ON v.item_key = i.key AND v.model = ?
                   WHERE i.seq > ? ORDER BY v.item_key""",
                (self._manifest.model, seq),
            ).fetchall()
            removed = self._db.execute("SELECT key FROM removals WHERE seq > ?", (seq,)).fetchall()
        keys, vectors = self._unpack(rows)
        return keys, vectors, np.fromiter((r[0] for r in removed), dtype=np.int64, count=len(removed))

    def vectors_for(self, keys: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of the given item keys (those that have one), as ``(keys, vectors)``."""
        wanted = [int(k) for k in keys]
        rows: list[sqlite3.Row] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            with self._guard:
                rows.extend(
                    self._db.execute(
                        f"SELECT item_key, vector FROM vectors WHERE model = ? AND item_key IN ({marks})",
                        (self._manifest.model, *chunk),
                    ).fetchall()
                )
        return self._unpack(rows)

    def _unpack(self, rows: list[sqlite3.Row]) -> tuple[np.ndarray, np.ndarray]:
        dim = self._manifest.dim
        keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return keys, np.zeros((0, dim), dtype=np.float32)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
        return keys, vectors.astype(np.float32, copy=False)

    def publish_index(self, write: Callable[[Path], None], factory: str, count: int, seq: int = 0) -> IndexState:
        """Publish a new index generation atomically, then record it in the manifest.

        The index file is written under a new name (temp file, fsync, rename, fsync of the folder), so a
        reader that has the previous generation open is never disturbed; the manifest is switched only
        once the file is durable. Generations older than the previous one are deleted.

        Args:
            write: writes the index to the path it is given.
            factory: the factory string the index was built with.
            count: the number of vectors in it.
            seq: the change sequence read before the vectors were (see :meth:`changes_since`).
        """
        current = self._manifest.index
        generation = (current.generation if current else 0) + 1
        relative = f"{INDEX_DIR}/gen-{generation:06d}.faiss"
        atomic_write(self.path / relative, write)
        state = IndexState(generation, relative, factory, int(count), _now(), int(seq))
        previous_seq = current.seq if current else 0
        self._write_manifest(replace(self._manifest, index=state, index_factory=factory))
        self._prune_generations(generation)
        # Readers of the two kept generations only ask for removals after the older one's sequence.
        with self._guard, self._transaction():
            self._db.execute("DELETE FROM removals WHERE seq <= ?", (min(previous_seq, seq),))
        return state

    def _prune_generations(self, newest: int) -> None:
        # Temp files are only ever left by a writer that died mid-publish; we hold the lock, so they are stale.
        for stale in (self.path / INDEX_DIR).glob(".gen-*.tmp"):
            stale.unlink(missing_ok=True)
        for path in (self.path / INDEX_DIR).glob("gen-*.faiss"):
            try:
                generation = int(path.stem.removeprefix("gen-"))
            except ValueError:
                continue
            if generation <= newest - KEEP_GENERATIONS:
                path.unlink(missing_ok=True)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on error (the connection is in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _stored_item(row: sqlite3.Row) -> StoredItem:
    return StoredItem(
        key=row["key"],
        id=row["id"],
        origin=row["origin"],
        source=row["source"],
        product_id=row["product_id"],
        title=row["title"],
        description=row["description"],
        category=row["category"],
        price=row["price"],
        attributes=json.loads(row["attributes"] or "{}"),
        width=row["width"],
        height=row["height"],
        status=row["status"],
        error=row["error"],
        content_hash=row["content_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )

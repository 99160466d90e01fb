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
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from catalens.indexer.errors import StoreCorruptError, StoreNotFoundError, StoreVersionError
from catalens.indexer.fsutil import atomic_write, atomic_write_text
from catalens.indexer.lexical import FIELD_WEIGHTS, FIELDS, MARK_CLOSE, MARK_OPEN, TOKENIZER, attribute_text
from catalens.indexer.lock import WriterLock
from catalens.indexer.records import ItemRecord, attributes_json

#: Version 2 added captions, OCR text and the FTS5 index; version-1 stores are upgraded in place on open.
SCHEMA_VERSION = 2
UPGRADABLE_VERSIONS = (1,)
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

# Schema version 2: what the indexer learnt from the pixels, and the full-text index over every word.
# Separate statements (not a script), so an upgrade can run them inside its own transaction.
_SCHEMA_V2 = (
    """
CREATE TABLE IF NOT EXISTS enrichments (
    item_key     INTEGER NOT NULL REFERENCES items (key) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('caption', 'ocr')),
    spec         TEXT NOT NULL,
    content_hash TEXT,
    text         TEXT NOT NULL DEFAULT '',
    data         TEXT NOT NULL DEFAULT '{}',
    error        TEXT,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (item_key, kind)
) WITHOUT ROWID
""",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5({', '.join(FIELDS)}, tokenize = '{TOKENIZER}')",
)
_BM25 = f"bm25(items_fts, {', '.join(str(FIELD_WEIGHTS[f]) for f in FIELDS)})"

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


EnrichmentKind = Literal["caption", "ocr"]


@dataclass(frozen=True)
class Enrichment:
    """What a captioner or OCR engine produced for one item's image.

    Attributes:
        kind: ``caption`` or ``ocr``.
        spec: the captioner or OCR engine that produced it; another spec means the item is done again.
        content_hash: the image it was produced from; an item whose image changed is done again.
        text: the caption, or the text read in the image (indexed for lexical search).
        data: kind-specific detail: ``{"tags": {...}, "scores": {...}}`` for captions, ``{"words": [...]}``
            (text, box, confidence) for OCR.
        error: why this item could not be done (the text is then empty); it is retried when the image or
            the spec changes.
    """

    kind: EnrichmentKind
    spec: str
    content_hash: str | None
    text: str
    data: dict[str, Any]
    error: str | None = None
    updated_at: str = ""


@dataclass(frozen=True)
class EnrichmentTask:
    """An indexed item that still needs a caption or OCR pass, with what it takes to read its image."""

    key: int
    id: str
    source: str
    content_hash: str | None


@dataclass(frozen=True)
class LexicalMatch:
    """One full-text match: the item key, its BM25 score (higher is better) and per-field snippets.

    ``snippets`` maps each matched field to a short excerpt whose matched words are wrapped in
    :data:`indexer.lexical.MARK_OPEN` / ``MARK_CLOSE``; it is empty unless snippets were asked for.
    """

    key: int
    score: float
    snippets: dict[str, str]


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
        if manifest.schema_version != SCHEMA_VERSION and manifest.schema_version not in UPGRADABLE_VERSIONS:
            raise StoreVersionError(str(path), manifest.schema_version, SCHEMA_VERSION)
        try:
            store = cls(root, manifest)
        except sqlite3.DatabaseError as e:
            raise StoreCorruptError(str(path), f"{DB_NAME} is unreadable ({e})") from e
        if manifest.schema_version != SCHEMA_VERSION:
            # The database was upgraded when it was connected; the manifest follows once that committed.
            store._write_manifest(replace(manifest, schema_version=SCHEMA_VERSION))
        return store

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
            for statement in _SCHEMA_V2:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version in UPGRADABLE_VERSIONS:
            _upgrade(db, version)
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

    def manifest_stamp(self) -> int | None:
        """A value that changes whenever a generation is published (``None`` while no manifest exists).

        Readers poll it to notice a writer's publish cheaply, without parsing the manifest.
        """
        try:
            return (self.path / MANIFEST_NAME).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def read_published_manifest(self) -> StoreManifest:
        """The manifest as published on disk now, without replacing this handle's own copy."""
        return StoreManifest.from_json((self.path / MANIFEST_NAME).read_text(encoding="utf-8"))

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
            changed: list[int] = []
            for item in embedded:
                key = self._upsert(item.record, now, seq, "indexed", None, item.content_hash, item.width, item.height)
                blob = np.ascontiguousarray(item.vector, dtype="<f4").tobytes()
                self._db.execute(
                    "INSERT OR REPLACE INTO vectors (item_key, model, vector) VALUES (?, ?, ?)", (key, model, blob)
                )
                # A caption or OCR text of a previous image describes pixels that are gone.
                self._db.execute(
                    "DELETE FROM enrichments WHERE item_key = ? AND content_hash IS NOT ?", (key, item.content_hash)
                )
                changed.append(key)
            for failure, record in failed:
                record = record or ItemRecord(id=failure.id, source=failure.source, origin="")
                key = self._upsert(record, now, seq, "failed", failure.reason, None, None, None)
                if self._db.execute("DELETE FROM vectors WHERE item_key = ?", (key,)).rowcount:
                    self._record_removal(key, seq)
                changed.append(key)
            for record in touched:
                row = self._db.execute(
                    """UPDATE items SET source = ?, product_id = ?, title = ?, description = ?, category = ?,
                       price = ?, attributes = ?, stat = ?, updated_at = ? WHERE id = ? RETURNING key""",
                    (*record.metadata(), record.stat, now, record.id),
                ).fetchone()
                if row is not None:
                    changed.append(int(row[0]))
            self._sync_text(changed)

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
                self._sync_text([key for (key,) in keys])
                deleted += len(keys)
        return deleted

    def _sync_text(self, keys: Iterable[int]) -> None:
        """Make the FTS rows of ``keys`` match their items and enrichments (inside the caller's transaction).

        Only indexed items are in the full-text index, exactly as only they are in the vector index.
        """
        keys = list(dict.fromkeys(int(k) for k in keys))
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self._db.execute(f"DELETE FROM items_fts WHERE rowid IN ({marks})", chunk)
            _index_text(self._db, f"i.key IN ({marks})", chunk)

    # -- captions and OCR text -----------------------------------------------------------------------------

    def enrichment_tasks(self, kind: EnrichmentKind, spec: str, *, redo: bool = False) -> list[EnrichmentTask]:
        """Indexed items that ``spec`` has not yet done for their current image, in key order.

        Args:
            kind: ``caption`` or ``ocr``.
            spec: the captioner or OCR engine about to run; items done by another spec are due again.
            redo: every indexed item, done or not.
        """
        sql = """SELECT i.key, i.id, i.source, i.content_hash FROM items i
                 LEFT JOIN enrichments e ON e.item_key = i.key AND e.kind = ?
                 WHERE i.status = 'indexed'"""
        if not redo:
            sql += " AND (e.item_key IS NULL OR e.spec != ? OR e.content_hash IS NOT i.content_hash)"
        with self._guard:
            rows = self._db.execute(sql + " ORDER BY i.key", (kind, spec) if not redo else (kind,)).fetchall()
        return [EnrichmentTask(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def write_enrichments(self, results: Iterable[tuple[int, Enrichment]]) -> int:
        """Store captions or OCR results and refresh those items' full-text rows, in one transaction.

        A result for an item that was deleted, or whose image changed, while it was being processed is
        dropped (it describes pixels the store no longer has). Returns how many were stored.
        """
        now = _now()
        written: list[int] = []
        with self._guard, self._transaction():
            for key, result in results:
                cursor = self._db.execute(
                    """INSERT OR REPLACE INTO enrichments (item_key, kind, spec, content_hash, text, data, error,
                                                           updated_at)
                       SELECT key, ?, ?, content_hash, ?, ?, ?, ? FROM items
                       WHERE key = ? AND content_hash IS ? AND status = 'indexed'""",
                    (
                        result.kind,
                        result.spec,
                        result.text,
                        json.dumps(result.data, ensure_ascii=False, separators=(",", ":")),
                        result.error,
                        now,
                        key,
                        result.content_hash,
                    ),
                )
                if cursor.rowcount:
                    written.append(key)
            self._sync_text(written)
        return len(written)

    def enrichments_for(self, keys: Iterable[int]) -> dict[int, dict[str, Enrichment]]:
        """Captions and OCR results by item key, then by kind; items without any are absent."""
        keys = [int(k) for k in keys]
        found: dict[int, dict[str, Enrichment]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            with self._guard:
                rows = self._db.execute(
                    f"""SELECT item_key, kind, spec, content_hash, text, data, error, updated_at FROM enrichments
                        WHERE item_key IN ({marks})""",
                    chunk,
                ).fetchall()
            for row in rows:
                found.setdefault(int(row[0]), {})[row[1]] = Enrichment(
                    kind=row[1],
                    spec=row[2],
                    content_hash=row[3],
                    text=row[4],
                    data=json.loads(row[5] or "{}"),
                    error=row[6],
                    updated_at=row[7],
                )
        return found

    def enrichment_counts(self) -> dict[str, dict[str, int]]:
        """Per kind and spec, how many indexed items are done and how many failed: ``{kind: {spec: n}}``.

        Failures are counted under ``"<spec> (failed)"``.
        """
        with self._guard:
            rows = self._db.execute(
                """SELECT e.kind, e.spec, e.error IS NOT NULL, COUNT(*) FROM enrichments e
                   JOIN items i ON i.key = e.item_key AND i.status = 'indexed' GROUP BY 1, 2, 3"""
            ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        for kind, spec, failed, n in rows:
            counts.setdefault(kind, {})[f"{spec} (failed)" if failed else spec] = int(n)
        return counts

    # -- full-text search ------------------------------------------------------------------------------------

    def lexical_search(self, match: str, where: ItemFilter, limit: int) -> list[LexicalMatch]:
        """The best ``limit`` full-text matches of an FTS5 MATCH expression among items passing ``where``.

        Args:
            match: an expression from :func:`indexer.lexical.match_expression`.
            where: the same metadata filter vector search takes.
            limit: how many matches to return, best first.
        """
        clauses, params = _filter_clauses(where, "i.")
        sql = f"""SELECT items_fts.rowid, {_BM25} AS rank FROM items_fts JOIN items i ON i.key = items_fts.rowid
                  WHERE items_fts MATCH ? AND {" AND ".join(clauses)} ORDER BY rank, items_fts.rowid LIMIT ?"""
        with self._guard:
            rows = self._db.execute(sql, (match, *params, int(limit))).fetchall()
        # SQLite's bm25() is negative with the best match lowest; callers get the usual "higher is better".
        return [LexicalMatch(int(r[0]), -float(r[1]), {}) for r in rows]

    def lexical_snippets(self, match: str, keys: Iterable[int], tokens: int = 12) -> dict[int, dict[str, str]]:
        """For each key, the fields ``match`` hits with a short marked-up excerpt of each (see LexicalMatch)."""
        keys = [int(k) for k in keys]
        if not keys:
            return {}
        columns = ", ".join(
            f"snippet(items_fts, {i}, '{MARK_OPEN}', '{MARK_CLOSE}', '…', {int(tokens)})" for i in range(len(FIELDS))
        )
        marks = ",".join("?" * len(keys))
        with self._guard:
            rows = self._db.execute(
                f"SELECT rowid, {columns} FROM items_fts WHERE items_fts MATCH ? AND rowid IN ({marks})",
                (match, *keys),
            ).fetchall()
        return {
            int(row[0]): {field: row[i + 1] for i, field in enumerate(FIELDS) if MARK_OPEN in (row[i + 1] or "")}
            for row in rows
        }

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
        clauses, params = _filter_clauses(where)
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

    def attribute_names(self, limit: int = 50) -> list[tuple[str, int]]:
        """Attribute names set on indexed items with how many items set each, the most widely set first."""
        with self._guard:
            rows = self._db.execute(
                """SELECT a.key, COUNT(*) FROM items i, json_each(i.attributes) a
                   WHERE i.status = 'indexed' GROUP BY a.key ORDER BY 2 DESC, 1 LIMIT ?""",
                (limit,),
            ).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]

    def price_range(self) -> tuple[float, float] | None:
        """The lowest and highest price of the indexed items, or ``None`` when none has a price."""
        with self._guard:
            row = self._db.execute(
                "SELECT MIN(price), MAX(price) FROM items WHERE status = 'indexed' AND price IS NOT NULL"
            ).fetchone()
        return (float(row[0]), float(row[1])) if row[0] is not None else None

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

    def get_items_by_id(self, item_ids: Iterable[str]) -> dict[str, StoredItem]:
        """Items by external id, in one query per 500 ids; unknown ids are absent from the result."""
        ids = list(dict.fromkeys(item_ids))
        found: dict[str, StoredItem] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            with self._guard:
                rows = self._db.execute(f"SELECT * FROM items WHERE id IN ({marks})", chunk).fetchall()
            found.update({row["id"]: _stored_item(row) for row in rows})
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


def _filter_clauses(where: ItemFilter, prefix: str = "") -> tuple[list[str], list[Any]]:
    """SQL conditions (and their parameters) on ``items`` columns for an indexed item passing ``where``."""
    clauses = [f"{prefix}status = 'indexed'"]
    params: list[Any] = []
    if where.categories:
        clauses.append(f"{prefix}category IN ({','.join('?' * len(where.categories))})")
        params.extend(where.categories)
    if where.price_min is not None:
        clauses.append(f"{prefix}price >= ?")
        params.append(where.price_min)
    if where.price_max is not None:
        clauses.append(f"{prefix}price <= ?")
        params.append(where.price_max)
    for name, value in where.attributes:
        clauses.append(f"CAST(json_extract({prefix}attributes, ?) AS TEXT) = ?")
        params.extend([f'$."{name}"', value])
    return clauses, params


def _index_text(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> None:
    """Insert the FTS rows of the indexed items matching ``where`` (SQL on ``items i``), from their fields,
    caption and OCR text; the caller has deleted any old rows and holds the transaction."""
    rows = db.execute(
        f"""SELECT i.key, i.title, i.description, c.text, o.text, i.attributes FROM items i
            LEFT JOIN enrichments c ON c.item_key = i.key AND c.kind = 'caption'
            LEFT JOIN enrichments o ON o.item_key = i.key AND o.kind = 'ocr'
            WHERE ({where}) AND i.status = 'indexed'""",
        params,
    ).fetchall()
    db.executemany(
        f"INSERT INTO items_fts (rowid, {', '.join(FIELDS)}) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (r[0], r[1] or "", r[2] or "", r[3] or "", r[4] or "", attribute_text(json.loads(r[5] or "{}")))
            for r in rows
        ],
    )


def _upgrade(db: sqlite3.Connection, version: int) -> None:
    """Upgrade a database step by step to :data:`SCHEMA_VERSION`, each step in one transaction.

    Another process may be upgrading the same store: the version is re-read under the write lock.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 1:
            for statement in _SCHEMA_V2:
                db.execute(statement)
            _index_text(db, "1", [])
            db.execute("PRAGMA user_version = 2")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


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

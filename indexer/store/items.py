"""Item rows: writing a batch of indexing results, deleting, and reading items back.

Catalog fields are mapped to the ``items`` columns of the same names through :data:`CATALOG_FIELDS`
(never by position). Every write function here runs inside the caller's transaction and stamps the change
sequence on what it wrote; the caller refreshes the full-text rows of the returned keys in that same
transaction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from catalens.indexer.records import CATALOG_FIELDS, CatalogFields, ItemRecord, catalog_columns
from catalens.indexer.store.enrichments import drop_stale_enrichments
from catalens.indexer.store.generations import record_removal
from catalens.indexer.store.sql import in_chunks
from catalens.indexer.store.vectors import vector_blob

_CATALOG_UPDATES = ", ".join(f"{name} = :{name}" for name in CATALOG_FIELDS)

_UPSERT = f"""
INSERT INTO items (id, origin, source, {", ".join(CATALOG_FIELDS)},
                   content_hash, stat, width, height, status, error, seq, created_at, updated_at)
VALUES (:id, :origin, :source, {", ".join(f":{name}" for name in CATALOG_FIELDS)},
        :content_hash, :stat, :width, :height, :status, :error, :seq, :now, :now)
ON CONFLICT (id) DO UPDATE SET
    origin = excluded.origin, source = excluded.source,
    {", ".join(f"{name} = excluded.{name}" for name in CATALOG_FIELDS)},
    content_hash = excluded.content_hash, stat = excluded.stat, width = excluded.width, height = excluded.height,
    status = excluded.status, error = excluded.error, seq = excluded.seq, updated_at = excluded.updated_at
RETURNING key
"""

# A re-scan found the image unchanged: only the metadata and the file stat are refreshed (no new seq).
_TOUCH = f"""
UPDATE items SET source = :source, {_CATALOG_UPDATES}, stat = :stat, updated_at = :now
WHERE id = :id RETURNING key
"""


@dataclass(frozen=True)
class _StoredLead:
    """The fields of :class:`StoredItem` before its catalog fields (see :mod:`catalens.indexer.records`)."""

    key: int
    id: str
    origin: str
    source: str


@dataclass(frozen=True)
class StoredItem(CatalogFields, _StoredLead):
    """An item row as the query side and ``catalens info`` see it.

    Fields in order: ``key, id, origin, source``, the :class:`CatalogFields`, then the ones below. Their
    defaults exist only because they follow the catalog fields' defaults; the store always sets them all.
    """

    width: int | None = None
    height: int | None = None
    status: str = "indexed"
    error: str | None = None
    content_hash: str | None = None
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class ItemState:
    """What the indexer needs to know about an existing item to decide whether to skip it.

    ``source`` and ``metadata`` stand for the item's metadata as stored: a record whose image is unchanged but
    whose metadata differs (:meth:`same_metadata`) gets a metadata-only update. ``metadata`` is a 16-byte
    digest of the catalog column values (attributes as the JSON text a write would store), not the values:
    planning a re-run holds one state per stored item. Keeping the columns as a dict per item held 1,063 bytes
    an item (a 1.35 GB process at a million items); this holds 423 (``scripts/bench_memory.py``: 0.5 GB).
    """

    key: int
    id: str
    stat: str | None
    content_hash: str | None
    status: str
    has_vector: bool
    source: str
    metadata: bytes

    def same_metadata(self, record: ItemRecord) -> bool:
        """Whether writing ``record`` would leave the stored source and catalog columns as they are."""
        columns = catalog_columns(record)
        return self.source == record.source and self.metadata == metadata_digest(
            tuple(columns[name] for name in CATALOG_FIELDS)
        )


def metadata_digest(values: tuple[Any, ...]) -> bytes:
    """A 16-byte digest of catalog column values (in :data:`CATALOG_FIELDS` order, attributes as stored JSON
    text); equal for values a write would store the same way.

    Numbers are compared as the REAL the ``price`` column stores (``4`` and ``4.0`` are the same price).
    """
    if any(isinstance(value, int) for value in values):  # bool is an int too; no catalog column holds one
        values = tuple(float(value) if isinstance(value, int) else value for value in values)
    return hashlib.blake2b(repr(values).encode("utf-8", "surrogatepass"), digest_size=16).digest()


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


def write_items(
    db: sqlite3.Connection,
    model: str,
    now: str,
    seq: int,
    embedded: Iterable[EmbeddedItem],
    failed: Iterable[tuple[FailedItem, ItemRecord | None]],
    touched: Iterable[ItemRecord],
) -> list[int]:
    """Write one batch of results inside the caller's transaction; returns the keys of the items written.

    Args:
        db: the connection, in a transaction.
        model: the store's model; vectors are stored under it.
        now: the batch's timestamp.
        seq: the batch's change sequence.
        embedded: items to insert or update with their vectors.
        failed: failures, with the record when the source described the item; their vectors are dropped.
        touched: items whose image is unchanged but whose metadata or file stat may have changed.
    """
    changed: list[int] = []
    for item in embedded:
        key = _upsert(db, item.record, now, seq, "indexed", None, item.content_hash, item.width, item.height)
        db.execute(
            "INSERT OR REPLACE INTO vectors (item_key, model, vector) VALUES (?, ?, ?)",
            (key, model, vector_blob(item.vector)),
        )
        # A caption or OCR text of a previous image describes pixels that are gone.
        drop_stale_enrichments(db, key, item.content_hash)
        changed.append(key)
    for failure, given in failed:
        record = given or ItemRecord(id=failure.id, source=failure.source, origin="")
        key = _upsert(db, record, now, seq, "failed", failure.reason, None, None, None)
        if db.execute("DELETE FROM vectors WHERE item_key = ?", (key,)).rowcount:
            record_removal(db, key, seq)
        changed.append(key)
    for record in touched:
        params = {"id": record.id, "source": record.source, **catalog_columns(record), "stat": record.stat, "now": now}
        row = db.execute(_TOUCH, params).fetchone()
        if row is not None:
            changed.append(int(row[0]))
    return changed


def _upsert(
    db: sqlite3.Connection,
    record: ItemRecord,
    now: str,
    seq: int,
    status: str,
    error: str | None,
    content_hash: str | None,
    width: int | None,
    height: int | None,
) -> int:
    """Insert or replace one item row by external id; returns its key (kept across updates)."""
    row = db.execute(
        _UPSERT,
        {
            "id": record.id,
            "origin": record.origin,
            "source": record.source,
            **catalog_columns(record),
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


def delete_items(db: sqlite3.Connection, ids: Sequence[str], seq: int) -> list[int]:
    """Delete items (and, by cascade, their vectors and enrichments) by external id inside the caller's
    transaction, logging each removal at ``seq``; returns the keys of the items that existed."""
    deleted: list[int] = []
    for marks, chunk in in_chunks(ids):
        rows = db.execute(f"DELETE FROM items WHERE id IN ({marks}) RETURNING key", chunk).fetchall()
        keys = [int(key) for (key,) in rows]
        for key in keys:
            record_removal(db, key, seq)
        deleted.extend(keys)
    return deleted


def item_states(db: sqlite3.Connection, model: str, origin: str | None) -> dict[str, ItemState]:
    """Every item's skip-decision state, keyed by external id (optionally only those of one origin).

    Rows are read as a stream (never all fetched at once) and each is kept only as its lean
    :class:`ItemState`; the two status strings are shared rather than one copy per item.
    """
    sql = f"""SELECT i.key, i.id, i.stat, i.content_hash, i.status, i.source,
                     EXISTS (SELECT 1 FROM vectors v WHERE v.item_key = i.key AND v.model = ?) AS has_vector,
                     {", ".join(f"i.{name}" for name in CATALOG_FIELDS)}
              FROM items i"""
    params: tuple[Any, ...] = (model,)
    if origin is not None:
        sql += " WHERE i.origin = ?"
        params += (origin,)
    states: dict[str, ItemState] = {}
    statuses: dict[str, str] = {}
    cursor = db.execute(sql, params)
    cursor.row_factory = None  # plain tuples: no per-row name lookups over millions of rows
    first_column = 7
    for row in cursor:
        status = statuses.setdefault(row[4], row[4])
        states[row[1]] = ItemState(
            key=row[0],
            id=row[1],
            stat=row[2],
            content_hash=row[3],
            status=status,
            has_vector=bool(row[6]),
            source=row[5],
            metadata=metadata_digest(row[first_column:]),
        )
    return states


def status_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Item counts by status (``indexed``, ``failed``), from the counts the schema's triggers keep."""
    rows = db.execute("SELECT value, n FROM facets WHERE kind = 'status' AND name = ''").fetchall()
    counts = {"indexed": 0, "failed": 0}
    counts.update({row[0]: int(row[1]) for row in rows})
    return counts


def failures(db: sqlite3.Connection, limit: int) -> list[FailedItem]:
    """Failed items with their reasons, most recent first."""
    rows = db.execute(
        "SELECT id, source, error FROM items INDEXED BY items_failed WHERE status = 'failed' "
        "ORDER BY updated_at DESC, key LIMIT ?",
        (limit,),
    ).fetchall()
    return [FailedItem(row[0], row[1], row[2] or "") for row in rows]


def items_by(db: sqlite3.Connection, column: Literal["key", "id"], values: Sequence[Any]) -> list[StoredItem]:
    """Items whose ``key`` or ``id`` (both unique) is one of ``values``, one query per chunk.

    Values no item has are skipped.
    """
    found: list[StoredItem] = []
    for marks, chunk in in_chunks(values):
        rows = db.execute(f"SELECT * FROM items WHERE {column} IN ({marks})", chunk).fetchall()
        found.extend(stored_item(row) for row in rows)
    return found


def indexed_columns(db: sqlite3.Connection, keys: Sequence[int], columns: Sequence[str]) -> dict[int, tuple[Any, ...]]:
    """Raw values of a few catalog ``columns`` (``id`` or catalog fields; ``attributes`` as its JSON text) of the
    indexed items among ``keys``, by key: far cheaper than whole rows when only some items are shown (60 keys,
    two columns: 0.4 ms against 1.6 ms, measured at 100k items).

    Raises:
        ValueError: a column that is not ``id`` nor a catalog field.
    """
    unknown = [c for c in columns if c != "id" and c not in CATALOG_FIELDS]
    if unknown:
        raise ValueError(f"not an item column: {', '.join(unknown)}")
    selected = ", ".join(("key", *columns))
    found: dict[int, tuple[Any, ...]] = {}
    for marks, chunk in in_chunks(keys):
        cursor = db.execute(f"SELECT {selected} FROM items WHERE status = 'indexed' AND key IN ({marks})", chunk)
        cursor.row_factory = None  # plain tuples
        found.update((row[0], row[1:]) for row in cursor)
    return found


def attribute_keys(db: sqlite3.Connection, name: str, value: str) -> np.ndarray:
    """Keys of the items whose catalog attribute ``name`` is ``value`` (as text), sorted: one range of the
    ``item_attributes`` primary key. Unlike an attribute filter, accepted tags do not count, and reading no
    tags is what makes it cheaper (27k keys: 11 ms against 18 ms, measured)."""
    cursor = db.execute("SELECT item_key FROM item_attributes WHERE name = ? AND value = ?", (name, value))
    cursor.row_factory = None
    return np.fromiter((row[0] for row in cursor), dtype=np.int64)


def get_item(db: sqlite3.Connection, item_id: str) -> StoredItem | None:
    """One item by external id."""
    row = db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
    return stored_item(row) if row else None


def stored_item(row: sqlite3.Row) -> StoredItem:
    """A :class:`StoredItem` from a full ``items`` row."""
    return StoredItem(
        key=row["key"],
        id=row["id"],
        origin=row["origin"],
        source=row["source"],
        **_catalog_values(row),
        width=row["width"],
        height=row["height"],
        status=row["status"],
        error=row["error"],
        content_hash=row["content_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _catalog_values(row: sqlite3.Row) -> dict[str, Any]:
    """The catalog fields of an ``items`` row, by name, with the attributes parsed."""
    values = {name: row[name] for name in CATALOG_FIELDS}
    values["attributes"] = json.loads(values["attributes"] or "{}")
    return values

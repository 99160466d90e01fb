"""The FTS5 full-text index (``items_fts``): its rows, kept in step with every write, and BM25 queries over it.

One row per indexed item, keyed by the item's integer key (its ``rowid``), with the columns of
:data:`catalens.indexer.lexical.FIELDS`. Rows are rewritten inside the transaction of the write that changed
the item or its caption or OCR text, so the full-text index never disagrees with the items table.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from catalens.indexer.lexical import FIELD_WEIGHTS, FIELDS, MARK_CLOSE, MARK_OPEN, attribute_text
from catalens.indexer.store.filters import ItemFilter, filter_clauses
from catalens.indexer.store.sql import in_chunks

_BM25 = f"bm25(items_fts, {', '.join(str(FIELD_WEIGHTS[f]) for f in FIELDS)})"


@dataclass(frozen=True)
class LexicalMatch:
    """One full-text match: the item key, its BM25 score (higher is better) and per-field snippets.

    ``snippets`` maps each matched field to a short excerpt whose matched words are wrapped in
    :data:`indexer.lexical.MARK_OPEN` / ``MARK_CLOSE``; it is empty unless snippets were asked for.
    """

    key: int
    score: float
    snippets: dict[str, str]


def index_text(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> None:
    """Insert the FTS rows of the indexed items matching ``where`` (SQL on ``items i``).

    Each row is built from the item's fields, caption and OCR text; the caller has deleted any old rows
    and holds the transaction.
    """
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


def sync_text(db: sqlite3.Connection, keys: Iterable[int]) -> None:
    """Make the FTS rows of ``keys`` match their items and enrichments (inside the caller's transaction).

    Only indexed items are in the full-text index, exactly as only they are in the vector index.
    """
    unique = list(dict.fromkeys(int(k) for k in keys))
    for marks, chunk in in_chunks(unique):
        db.execute(f"DELETE FROM items_fts WHERE rowid IN ({marks})", chunk)
        index_text(db, f"i.key IN ({marks})", chunk)


def lexical_search(db: sqlite3.Connection, match: str, where: ItemFilter, limit: int) -> list[LexicalMatch]:
    """The best ``limit`` full-text matches of an FTS5 MATCH expression among items passing ``where``."""
    clauses, params = filter_clauses(where, "i.")
    sql = f"""SELECT items_fts.rowid, {_BM25} AS rank FROM items_fts JOIN items i ON i.key = items_fts.rowid
              WHERE items_fts MATCH ? AND {" AND ".join(clauses)} ORDER BY rank, items_fts.rowid LIMIT ?"""
    rows = db.execute(sql, (match, *params, int(limit))).fetchall()
    # SQLite's bm25() is negative with the best match lowest; callers get the usual "higher is better".
    return [LexicalMatch(int(r[0]), -float(r[1]), {}) for r in rows]


def lexical_snippets(db: sqlite3.Connection, match: str, keys: list[int], tokens: int) -> dict[int, dict[str, str]]:
    """For each key, the fields ``match`` hits with a short marked-up excerpt of each (see LexicalMatch)."""
    if not keys:
        return {}
    columns = ", ".join(
        f"snippet(items_fts, {i}, '{MARK_OPEN}', '{MARK_CLOSE}', '…', {int(tokens)})" for i in range(len(FIELDS))
    )
    marks = ",".join("?" * len(keys))
    rows = db.execute(
        f"SELECT rowid, {columns} FROM items_fts WHERE items_fts MATCH ? AND rowid IN ({marks})",
        (match, *keys),
    ).fetchall()
    return {
        int(row[0]): {field: row[i + 1] for i, field in enumerate(FIELDS) if MARK_OPEN in (row[i + 1] or "")}
        for row in rows
    }

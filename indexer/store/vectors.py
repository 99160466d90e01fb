"""Item vectors in SQLite: one little-endian float32 blob per item and model, the source the index is built from."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from catalens.indexer.store.sql import in_chunks


def vector_blob(vector: np.ndarray) -> bytes:
    """The stored form of a vector: contiguous little-endian float32."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def unpack(rows: Sequence[sqlite3.Row], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(keys int64 (n,), vectors float32 (n, dim))`` from ``(item_key, vector)`` rows."""
    keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return keys, np.zeros((0, dim), dtype=np.float32)
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
    return keys, vectors.astype(np.float32, copy=False)


def vector_count(db: sqlite3.Connection, model: str) -> int:
    """How many items have a vector for ``model``."""
    return int(db.execute("SELECT COUNT(*) FROM vectors WHERE model = ?", (model,)).fetchone()[0])


def vectors_after(db: sqlite3.Connection, model: str, after_key: int, limit: int) -> list[sqlite3.Row]:
    """Up to ``limit`` ``(item_key, vector)`` rows of ``model`` with keys above ``after_key``, in key order."""
    return db.execute(
        "SELECT item_key, vector FROM vectors WHERE model = ? AND item_key > ? ORDER BY item_key LIMIT ?",
        (model, after_key, limit),
    ).fetchall()


def vectors_changed_since(db: sqlite3.Connection, model: str, seq: int) -> list[sqlite3.Row]:
    """``(item_key, vector)`` rows of the items (re-)embedded after change sequence ``seq``, in key order."""
    return db.execute(
        """SELECT v.item_key, v.vector FROM items i JOIN vectors v ON v.item_key = i.key AND v.model = ?
           WHERE i.seq > ? ORDER BY v.item_key""",
        (model, seq),
    ).fetchall()


def vectors_of(db: sqlite3.Connection, model: str, keys: Sequence[int]) -> list[sqlite3.Row]:
    """``(item_key, vector)`` rows of ``model`` for the given keys (those that have one), one query per chunk."""
    rows: list[sqlite3.Row] = []
    for marks, chunk in in_chunks(keys):
        rows.extend(
            db.execute(
                f"SELECT item_key, vector FROM vectors WHERE model = ? AND item_key IN ({marks})", (model, *chunk)
            ).fetchall()
        )
    return rows


def iter_vectors(
    db: sqlite3.Connection, guard: threading.RLock, model: str, dim: int, chunk_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream ``(keys, vectors)`` of ``model`` in key order, one key range of ``chunk_size`` rows at a time.

    The connection lock is held for each chunk's read only, so other calls interleave with a long stream.
    """
    last = -1
    while True:
        with guard:
            rows = vectors_after(db, model, last, chunk_size)
        if not rows:
            return
        keys, found = unpack(rows, dim)
        last = int(keys[-1])
        yield keys, found

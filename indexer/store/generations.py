"""Index generations and the change log that lets a reader of an older generation catch up.

The FAISS index is published as numbered generation files (``index/gen-NNNNNN.faiss``), each built at a
*change sequence*: a counter in SQLite that every write transaction advances once and stamps on the items
it wrote. A reader holding a generation built at sequence ``s`` searches it, then applies what changed
after ``s``: items with a later ``seq`` carry their new vectors, and ``removals`` lists the keys whose
vectors left the store since.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from catalens.indexer.fsutil import atomic_write
from catalens.indexer.store.integrity import file_checksum
from catalens.indexer.store.manifest import StoreManifest

INDEX_DIR = "index"
#: Generation files kept on disk: the newest and the one before, which readers may still have open.
KEEP_GENERATIONS = 2


def generation_file(generation: int) -> str:
    """The index file of a generation, relative to the store directory."""
    return f"{INDEX_DIR}/gen-{generation:06d}.faiss"


def write_generation(root: Path, generation: int, write: Callable[[Path], None]) -> tuple[str, str, int]:
    """Write a generation's file atomically (temp file, fsync, rename, fsync of the folder).

    Returns:
        The file relative to ``root``, its checksum and its size in bytes.

    Raises:
        OSError, RuntimeError: the write failed (the caller maps it to a store write error).
    """
    relative = generation_file(generation)
    facts: list[tuple[str, int]] = []

    def write_and_measure(tmp: Path) -> None:
        write(tmp)
        facts.append((file_checksum(tmp), tmp.stat().st_size))

    atomic_write(root / relative, write_and_measure)
    return relative, facts[0][0], facts[0][1]


def kept_checksums(manifest: StoreManifest, relative: str, checksum: str) -> dict[str, str]:
    """The checksums a manifest keeps once ``relative`` is published: the new file's and the current one's."""
    kept = {relative: checksum}
    current = manifest.index
    if current is not None and current.file in manifest.checksums:
        kept[current.file] = manifest.checksums[current.file]
    return kept


def prune_generations(index_dir: Path, newest: int) -> None:
    """Delete generation files older than the :data:`KEEP_GENERATIONS` newest, and stale temp files.

    Only the writer calls this, holding the writer lock.
    """
    # Temp files are only ever left by a writer that died mid-publish; we hold the lock, so they are stale.
    for stale in index_dir.glob(".gen-*.tmp"):
        stale.unlink(missing_ok=True)
    for path in index_dir.glob("gen-*.faiss"):
        try:
            generation = int(path.stem.removeprefix("gen-"))
        except ValueError:
            continue
        if generation <= newest - KEEP_GENERATIONS:
            path.unlink(missing_ok=True)


def current_seq(db: sqlite3.Connection) -> int:
    """The change sequence: it increases with every write transaction."""
    return int(db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()[0])


def next_seq(db: sqlite3.Connection) -> int:
    """Advance the change sequence; called once per write transaction, inside it."""
    row = db.execute("UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value").fetchone()
    return int(row[0])


def record_removal(db: sqlite3.Connection, key: int, seq: int) -> None:
    """Log that ``key``'s vector left the store at ``seq`` (deleted, or failed on re-indexing)."""
    db.execute("INSERT OR REPLACE INTO removals (key, seq) VALUES (?, ?)", (key, seq))


def removed_since(db: sqlite3.Connection, seq: int) -> np.ndarray:
    """Keys whose vectors were removed after change sequence ``seq`` (int64)."""
    rows = db.execute("SELECT key FROM removals WHERE seq > ?", (seq,)).fetchall()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def forget_removals(db: sqlite3.Connection, up_to_seq: int) -> None:
    """Drop removals no reader of a kept generation asks for any more (those at or before ``up_to_seq``)."""
    db.execute("DELETE FROM removals WHERE seq <= ?", (up_to_seq,))

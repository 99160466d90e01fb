"""Turning the operating system's and SQLite's write failures into :class:`StoreWriteError`.

A full disk, a read-only filesystem or an I/O error reaches the store as ``OSError`` (lock file, manifest,
index file), ``sqlite3.OperationalError`` (``database or disk is full``, ``attempt to write a readonly
database``) or FAISS's ``RuntimeError`` (its writer checks ``fwrite``). Callers get one typed error with the
store, the operation and the reason; anything else is left alone.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from catalens.indexer.errors import StoreWriteError
from catalens.indexer.lock import WriterLock

#: OSError numbers that mean the store cannot be written at all (rather than: not now).
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
#: SQLite messages (lower-cased fragments) of failed writes; other OperationalErrors are not write failures.
_SQLITE_READ_ONLY = ("readonly database", "read-only", "unable to open database file")
#: The operation name of an index publish (the only one where a ``RuntimeError`` is a write failure).
PUBLISH = "publish the index"
_SQLITE_FULL = ("database or disk is full", "disk i/o error", "disk full")


def write_error(store: str, operation: str, error: BaseException) -> StoreWriteError | None:
    """The :class:`StoreWriteError` a low-level write failure means, or ``None`` if it is not one.

    Args:
        store: the store directory, as the message names it.
        operation: what was being written, e.g. ``"publish the index"``.
        error: the exception raised by the write.
    """
    if isinstance(error, StoreWriteError):
        return error
    if isinstance(error, OSError):
        reason = error.strerror or str(error)
        return StoreWriteError(store, operation, reason, read_only=error.errno in READ_ONLY_ERRNOS)
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        if any(fragment in text for fragment in _SQLITE_READ_ONLY):
            return StoreWriteError(store, operation, f"SQLite: {error}", read_only=True)
        if any(fragment in text for fragment in _SQLITE_FULL):
            return StoreWriteError(store, operation, f"SQLite: {error}")
        return None
    if isinstance(error, RuntimeError) and operation == PUBLISH:
        # FAISS's writer reports a short fwrite as a RuntimeError with C++ source lines around the reason.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = lines[-1] if lines else "the index writer failed"
        return StoreWriteError(store, operation, f"writing the index file failed ({reason[:200]}; is the disk full?)")
    return None


def is_writable(root: Path, db: Path) -> bool:
    """Whether this process may write the store directory and its database ``db`` (``os.access``; not a probe)."""
    return os.access(root, os.W_OK) and (not db.exists() or os.access(db, os.W_OK))


def as_write_error(store: str, operation: str, error: Exception) -> Exception:
    """``error`` as a :class:`StoreWriteError` when it is a write failure, else ``error`` itself."""
    converted = write_error(store, operation, error)
    return converted if converted is not None else error


class CheckedLock(WriterLock):
    """:class:`WriterLock` whose lock-file failures (read-only filesystem, full disk) are typed errors."""

    def acquire(self) -> None:
        try:
            super().acquire()
        except OSError as e:
            self.release()
            raise as_write_error(self._store, "take the writer lock", e) from e

"""Small SQLite helpers the store modules share: timestamps, write transactions, chunked ``IN (...)`` lists."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from catalens.indexer.store.faults import write_error

T = TypeVar("T")

#: Values per ``IN (...)`` list: well under SQLite's bound-parameter limit (999 before 3.32, 32766 since).
IN_CHUNK = 500


def now() -> str:
    """The UTC timestamp stored in ``created_at``, ``updated_at`` and ``built_at``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def in_chunks(values: Iterable[T], size: int = IN_CHUNK) -> Iterator[tuple[str, list[T]]]:
    """Split ``values`` for ``... IN (...)`` statements, so a list of any length stays under the parameter limit.

    Yields:
        ``(marks, chunk)``: the placeholders ``"?,?,..."`` for the chunk, and the chunk of at most ``size``
        values, in order; nothing for no values.

    Example::

        for marks, chunk in in_chunks(keys):
            rows += db.execute(f"SELECT * FROM items WHERE key IN ({marks})", chunk).fetchall()
    """
    items = list(values)
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        yield ",".join("?" * len(chunk)), chunk


class Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on error (the connection is in autocommit mode).

    ``IMMEDIATE`` takes the write lock at the start, so a transaction never fails half-way on a lock held
    by another process (it waits up to the busy timeout instead). A full disk or a read-only database
    (at ``BEGIN``, inside, or at ``COMMIT``) rolls back and raises :class:`StoreWriteError`.
    """

    def __init__(self, db: sqlite3.Connection, store: str = "", operation: str = "write") -> None:
        self._db = db
        self._store = store
        self._operation = operation

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            self._raise_write_error(e)
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.OperationalError as e:
                self._rollback()
                self._raise_write_error(e)
                raise
        self._rollback()
        if isinstance(exc, sqlite3.OperationalError):
            self._raise_write_error(exc)

    def _rollback(self) -> None:
        # SQLite may already have rolled back on its own (SQLITE_FULL, SQLITE_IOERR): then there is none left.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _raise_write_error(self, error: sqlite3.OperationalError) -> None:
        converted = write_error(self._store, self._operation, error)
        if converted is not None:
            raise converted from error

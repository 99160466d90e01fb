"""Small SQLite helpers the store modules share: timestamps, write transactions, chunked ``IN (...)`` lists."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

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
    by another process (it waits up to the busy timeout instead).
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")

"""Near-duplicate groups in the store: what the last duplicates run found, read by search's ``dedupe``.

Tables and the trigger are in :mod:`.duplicate_schema`. A run replaces every group at once
(:meth:`DuplicateTable.replace`, one transaction), so a reader sees the old groups or the new ones, never a mix.
The caller holds the store's writer lock (``CatalogStore.writer_lock``) as for any write.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from catalens.indexer.store.sql import Transaction, in_chunks

_RUN_COLUMNS = "threshold, model, generation, item_count, group_count, started_at, finished_at"


@dataclass(frozen=True)
class DuplicateMember:
    """One item of a duplicate group.

    Attributes:
        key: the item's key (its FAISS id).
        item_id: the item's external id.
        similarity: cosine similarity of its vector to the group's first member's (1.0 for the first member).
        exact: a byte-identical copy of another member (same content hash).
    """

    key: int
    item_id: str
    similarity: float
    exact: bool


@dataclass(frozen=True)
class DuplicateGroup:
    """Items showing the same picture; ``group_id`` is the smallest key of the group when it was found."""

    group_id: int
    members: list[DuplicateMember]


@dataclass(frozen=True)
class DuplicateRun:
    """One duplicates run: what it compared with and how much it found (timestamps as ``sql.now`` writes them)."""

    threshold: float
    model: str
    generation: int | None
    items: int
    groups: int
    started_at: str
    finished_at: str


class DuplicateTable:
    """Duplicate groups of one store, reached as ``CatalogStore.duplicates``; every method takes the store's
    connection lock.

    Args:
        db: the store's connection.
        guard: the lock serialising its use.
        transaction: opens one write transaction (the store's ``_transaction``).
    """

    def __init__(self, db: sqlite3.Connection, guard: threading.RLock, transaction: Callable[[], Transaction]) -> None:
        self._db = db
        self._guard = guard
        self._transaction = transaction

    def replace(self, groups: Sequence[DuplicateGroup], run: DuplicateRun) -> None:
        """Store a run's groups in place of every previous group, and record the run, in one transaction.

        Members are stored in the order given (the first is the group's first member). A member whose item was
        deleted meanwhile is dropped.
        """
        rows = [
            (member.key, group.group_id, position, float(member.similarity), int(member.exact), member.key)
            for group in groups
            for position, member in enumerate(group.members)
        ]
        with self._guard, self._transaction():
            self._db.execute("DELETE FROM duplicate_members")
            self._db.executemany(
                "INSERT INTO duplicate_members (item_key, group_id, position, similarity, exact) "
                "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM items WHERE key = ?)",
                rows,
            )
            self._db.execute(
                f"INSERT INTO duplicate_runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run.threshold, run.model, run.generation, run.items, run.groups, run.started_at, run.finished_at),
            )

    def group_of(self, keys: Iterable[int]) -> dict[int, int]:
        """Item key -> group id, for the given keys that are in a group (others are absent)."""
        found: dict[int, int] = {}
        with self._guard:
            for marks, chunk in in_chunks([int(k) for k in keys]):
                sql = f"SELECT item_key, group_id FROM duplicate_members WHERE item_key IN ({marks})"
                found.update((int(key), int(group)) for key, group in self._db.execute(sql, chunk))
        return found

    def groups(self, limit: int | None = None, offset: int = 0) -> list[DuplicateGroup]:
        """Groups that still have two members or more, by group id, each with its members in stored order."""
        with self._guard:
            ids = [
                int(group)
                for (group,) in self._db.execute(
                    "SELECT group_id FROM duplicate_members GROUP BY group_id HAVING COUNT(*) >= 2 "
                    "ORDER BY group_id LIMIT ? OFFSET ?",
                    (-1 if limit is None else int(limit), int(offset)),
                )
            ]
            members: dict[int, list[DuplicateMember]] = {group: [] for group in ids}
            for marks, chunk in in_chunks(ids):
                rows = self._db.execute(
                    "SELECT m.group_id, m.item_key, i.id, m.similarity, m.exact FROM duplicate_members m "
                    f"JOIN items i ON i.key = m.item_key WHERE m.group_id IN ({marks}) ORDER BY m.group_id, m.position",
                    chunk,
                )
                for group, key, item_id, similarity, exact in rows:
                    members[int(group)].append(DuplicateMember(int(key), item_id, float(similarity), bool(exact)))
        return [DuplicateGroup(group, found) for group, found in members.items()]

    def same_content(self) -> list[list[int]]:
        """Keys of indexed items sharing their image bytes (content hash), one sorted list per hash with two or
        more items, by smallest key: the exact duplicates, found without comparing any vector."""
        sql = (
            "SELECT group_concat(key) FROM (SELECT key, content_hash FROM items WHERE status = 'indexed' "
            "AND content_hash IS NOT NULL ORDER BY key) GROUP BY content_hash HAVING COUNT(*) > 1"
        )
        with self._guard:
            found = [sorted(int(k) for k in keys.split(",")) for (keys,) in self._db.execute(sql)]
        return sorted(found)

    def count(self) -> int:
        """How many groups still have two members or more."""
        with self._guard:
            sql = "SELECT COUNT(*) FROM (SELECT 1 FROM duplicate_members GROUP BY group_id HAVING COUNT(*) >= 2)"
            return int(self._db.execute(sql).fetchone()[0])

    def last_run(self) -> DuplicateRun | None:
        """The most recent run, or ``None`` before the first."""
        with self._guard:
            row = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM duplicate_runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        threshold, model, generation, items, groups, started, finished = tuple(row)
        return DuplicateRun(float(threshold), model, generation, int(items), int(groups), started, finished)

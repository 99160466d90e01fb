"""Schema version 5: the near-duplicate groups a duplicates run found, and the runs themselves.

* ``duplicate_members``: one row per item in a group, with the group's id (the smallest item key of the group when
  it was found), the item's place in the group (0 = the group's first member), its similarity to the first member
  and whether it is a byte-identical copy of another member (same content hash).
* ``duplicate_runs``: one row per run, with its provenance (threshold, model, index generation) and counts.

A member's row goes with its item (foreign key ``ON DELETE CASCADE``) and leaves its group when the item's image
changes or the item fails (a trigger): the similarity was measured on pixels the store no longer has. A group
left with one member dedupes nothing and is not listed. The tables start empty, so upgrading a version 4 store
reads no item.
"""

from __future__ import annotations

_TABLES = (
    """
CREATE TABLE IF NOT EXISTS duplicate_members (
    item_key   INTEGER PRIMARY KEY REFERENCES items (key) ON DELETE CASCADE,
    group_id   INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    similarity REAL NOT NULL,
    exact      INTEGER NOT NULL DEFAULT 0
)
""",
    "CREATE INDEX IF NOT EXISTS duplicate_members_group ON duplicate_members (group_id, position)",
    """
CREATE TABLE IF NOT EXISTS duplicate_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    threshold   REAL NOT NULL,
    model       TEXT NOT NULL,
    generation  INTEGER,
    item_count  INTEGER NOT NULL,
    group_count INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL
)
""",
    "CREATE TRIGGER IF NOT EXISTS items_duplicates_update AFTER UPDATE OF content_hash, status ON items "
    "WHEN OLD.content_hash IS NOT NEW.content_hash OR OLD.status IS NOT NEW.status "
    "BEGIN DELETE FROM duplicate_members WHERE item_key = OLD.key; END",
)

#: Version 5's statements, run one by one (inside the upgrade's transaction for an existing store).
SCHEMA_V5 = _TABLES

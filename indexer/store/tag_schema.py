"""Schema version 4: the tables of tagging jobs and the triggers that keep their counts exact.

* ``tag_runs``: one row per tagging run, with its provenance (taxonomy, model, calibration) and summary.
* ``tags``: one row per item, attribute and value: a model's proposal or a person's decision.
* ``tag_state``: which tagging signature (taxonomy + model + calibration) last tagged an item, and the image
  (content hash) it saw, so a re-run tags only new or changed items.

The ``facets`` table (version 3) gains two kinds, kept by triggers so ``/v1/info`` and the search page's filters
read a few hundred rows instead of scanning millions of tags:

* ``'tag_decision'`` (name = attribute, value = decision): the tags of indexed items, by decision;
* ``'tag'`` (name = attribute, value = value): the indexed items with that ACCEPTED tag whose catalog attributes
  do not already say the same (``CAST(json_extract(attributes, '$."name"') AS TEXT) = value``). Summed with the
  catalog's ``'attribute'`` count, it is exactly the number of indexed items an attribute filter matches (an item
  is counted once whether the catalog, a tag or both give it the value).

Both follow the items' status like the catalog facets do: the tags of a failed item are not counted. The
deltas read only the trigger's own OLD/NEW rows and tables no other trigger of the same statement changes, so
they hold whatever order SQLite fires triggers in. An item's tags are deleted by a ``BEFORE DELETE`` trigger
rather than only by the foreign key's cascade: SQLite cascades after the item row is gone, when the tags'
triggers could no longer tell whether they were counted.
"""

from __future__ import annotations

_TABLES = (
    """
CREATE TABLE IF NOT EXISTS tag_runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    signature      TEXT NOT NULL,
    taxonomy_hash  TEXT NOT NULL,
    taxonomy       TEXT NOT NULL,
    model          TEXT NOT NULL,
    calibration_id TEXT,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    summary        TEXT NOT NULL DEFAULT '{}'
)
""",
    """
CREATE TABLE IF NOT EXISTS tags (
    item_key             INTEGER NOT NULL REFERENCES items (key) ON DELETE CASCADE,
    attribute            TEXT NOT NULL,
    value                TEXT NOT NULL,
    confidence           REAL,
    decision             TEXT NOT NULL CHECK (decision IN ('accept', 'review', 'reject')),
    source               TEXT NOT NULL CHECK (source IN ('model', 'person')),
    runner_up            TEXT,
    runner_up_confidence REAL,
    run_id               INTEGER,
    decided_by           TEXT,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (item_key, attribute, value)
) WITHOUT ROWID
""",
    """
CREATE TABLE IF NOT EXISTS tag_state (
    item_key     INTEGER PRIMARY KEY REFERENCES items (key) ON DELETE CASCADE,
    signature    TEXT NOT NULL,
    content_hash TEXT
)
""",
    # An attribute filter's keys from tags: one range, in key order (as ``item_attributes`` gives the catalog's).
    "CREATE INDEX IF NOT EXISTS tags_accepted ON tags (attribute, value, item_key) WHERE decision = 'accept'",
    # The review queue, least confident first, per attribute and over all of them (the primary key follows).
    "CREATE INDEX IF NOT EXISTS tags_review ON tags (attribute, confidence) WHERE decision = 'review' "
    "AND source = 'model'",
    "CREATE INDEX IF NOT EXISTS tags_review_all ON tags (confidence) WHERE decision = 'review' AND source = 'model'",
    # People's decisions are few among millions of model rows: calibration reads them without a scan.
    "CREATE INDEX IF NOT EXISTS tags_person ON tags (attribute, value) WHERE source = 'person'",
)

# The same catalog-overlap test as ``item_attributes`` rows use: an attribute's value as text, a JSON null never.
_IN_CATALOG = (
    "EXISTS (SELECT 1 FROM json_each({item}.attributes) a WHERE a.key = {tag}.attribute "
    "AND CAST(a.value AS TEXT) = {tag}.value)"
)

# Deltas for one tag row ({row}: NEW or OLD of ``tags``), read against its item's current row.
_TAG_DELTAS = (
    "INSERT INTO facets SELECT 'tag_decision', {row}.attribute, {row}.decision, {d} FROM items i "
    "WHERE i.key = {row}.item_key AND i.status = 'indexed' ON CONFLICT DO UPDATE SET n = n + {d};",
    "INSERT INTO facets SELECT 'tag', {row}.attribute, {row}.value, {d} FROM items i "
    "WHERE i.key = {row}.item_key AND i.status = 'indexed' AND {row}.decision = 'accept' AND NOT "
    + _IN_CATALOG.format(item="i", tag="{row}")
    + " ON CONFLICT DO UPDATE SET n = n + {d};",
)

# Deltas for every tag of one item ({row}: NEW or OLD of ``items``) when its status or attributes change.
_ITEM_DELTAS = (
    "INSERT INTO facets SELECT 'tag_decision', t.attribute, t.decision, {d} FROM tags t "
    "WHERE t.item_key = {row}.key AND {row}.status = 'indexed' AND OLD.status IS NOT NEW.status "
    "ON CONFLICT DO UPDATE SET n = n + {d};",
    "INSERT INTO facets SELECT 'tag', t.attribute, t.value, {d} FROM tags t "
    "WHERE t.item_key = {row}.key AND t.decision = 'accept' AND {row}.status = 'indexed' AND NOT "
    + _IN_CATALOG.format(item="{row}", tag="t")
    + " ON CONFLICT DO UPDATE SET n = n + {d};",
)


def _body(deltas: tuple[str, ...], *rows: tuple[str, str]) -> str:
    return " ".join(delta.format(row=row, d=d) for row, d in rows for delta in deltas)


_TRIGGERS = (
    f"CREATE TRIGGER IF NOT EXISTS tags_facets_insert AFTER INSERT ON tags BEGIN {_body(_TAG_DELTAS, ('NEW', '1'))} "
    "END",
    f"CREATE TRIGGER IF NOT EXISTS tags_facets_delete AFTER DELETE ON tags BEGIN {_body(_TAG_DELTAS, ('OLD', '-1'))} "
    "END",
    "CREATE TRIGGER IF NOT EXISTS tags_facets_update AFTER UPDATE OF item_key, attribute, value, decision ON tags "
    "WHEN OLD.item_key IS NOT NEW.item_key OR OLD.attribute IS NOT NEW.attribute OR OLD.value IS NOT NEW.value "
    f"OR OLD.decision IS NOT NEW.decision BEGIN {_body(_TAG_DELTAS, ('OLD', '-1'), ('NEW', '1'))} END",
    "CREATE TRIGGER IF NOT EXISTS items_tags_update AFTER UPDATE OF status, attributes ON items "
    "WHEN OLD.status IS NOT NEW.status OR OLD.attributes IS NOT NEW.attributes "
    f"BEGIN {_body(_ITEM_DELTAS, ('OLD', '-1'), ('NEW', '1'))} END",
    "CREATE TRIGGER IF NOT EXISTS items_tags_delete BEFORE DELETE ON items "
    "BEGIN DELETE FROM tags WHERE item_key = OLD.key; END",
)

#: Version 4's statements, run one by one (inside the upgrade's transaction for an existing store). The new
#: tables start empty, so upgrading a version 3 store reads no item.
SCHEMA_V4 = (*_TABLES, *_TRIGGERS)

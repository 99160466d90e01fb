"""The SQLite schema of ``catalog.sqlite3``, how a connection is opened, and the step-by-step upgrades.

The schema version is SQLite's ``user_version`` (and the manifest's ``schema_version``): 0 is a new
database, :data:`UPGRADABLE_VERSIONS` are upgraded in place when opened, anything else is refused with
:class:`StoreVersionError`. The DDL below *is* the on-disk format: change it only together with a new
version and an upgrade step.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from catalens.indexer.errors import StoreVersionError
from catalens.indexer.lexical import FIELDS, TOKENIZER
from catalens.indexer.store.caption_schema import SCHEMA_V6, UPGRADE_V6
from catalens.indexer.store.duplicate_schema import SCHEMA_V5
from catalens.indexer.store.fulltext import index_text
from catalens.indexer.store.tag_schema import SCHEMA_V4

DB_NAME = "catalog.sqlite3"
#: Version 2 added captions, OCR text and the FTS5 index; version 3 the facet counts and the per-item attribute
#: rows kept by triggers, and the partial indexes of failed items and of prices; version 4 the tagging jobs'
#: runs, tags and per-item tagging state (:mod:`.tag_schema`); version 5 the near-duplicate groups and their runs
#: (:mod:`.duplicate_schema`); version 6 the caption counts per captioner spec (:mod:`.caption_schema`). Older
#: stores are upgraded in place on open, step by step.
SCHEMA_VERSION = 6
UPGRADABLE_VERSIONS = (1, 2, 3, 4, 5)
#: SQLite page size of a new database: a 512-d float32 vector row (2 KB) stays on its b-tree page, seven to a
#: page (2.3 KB an item on disk, against 4.7 KB at SQLite's default 4 KB pages). Existing files keep theirs.
PAGE_SIZE = 16384

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    origin       TEXT NOT NULL,
    source       TEXT NOT NULL,
    product_id   TEXT,
    title        TEXT,
    description  TEXT,
    category     TEXT,
    price        REAL,
    attributes   TEXT NOT NULL DEFAULT '{}',
    content_hash TEXT,
    stat         TEXT,
    width        INTEGER,
    height       INTEGER,
    status       TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
    error        TEXT,
    seq          INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_seq ON items (seq);
-- Keys whose vector left the store (deleted, or failed on re-indexing), by change sequence, so a reader
-- holding an older index generation knows which of its ids to ignore.
CREATE TABLE IF NOT EXISTS removals (
    key INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('seq', 0);
CREATE INDEX IF NOT EXISTS items_origin ON items (origin);
CREATE INDEX IF NOT EXISTS items_category ON items (category);
CREATE INDEX IF NOT EXISTS items_product ON items (product_id);
CREATE TABLE IF NOT EXISTS vectors (
    item_key INTEGER NOT NULL REFERENCES items (key) ON DELETE CASCADE,
    model    TEXT NOT NULL,
    vector   BLOB NOT NULL,
    PRIMARY KEY (item_key, model)
) WITHOUT ROWID;
"""

# Schema version 2: what the indexer learnt from the pixels, and the full-text index over every word.
# Separate statements (not a script), so an upgrade can run them inside its own transaction.
_SCHEMA_V2 = (
    """
CREATE TABLE IF NOT EXISTS enrichments (
    item_key     INTEGER NOT NULL REFERENCES items (key) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('caption', 'ocr')),
    spec         TEXT NOT NULL,
    content_hash TEXT,
    text         TEXT NOT NULL DEFAULT '',
    data         TEXT NOT NULL DEFAULT '{}',
    error        TEXT,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (item_key, kind)
) WITHOUT ROWID
""",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5({', '.join(FIELDS)}, tokenize = '{TOKENIZER}')",
)


# Schema version 3: what /v1/info and the search page's filters show, kept exact by triggers so a million-item
# store answers from a few hundred rows instead of scanning every item's JSON attributes (seconds at 1M).
# ``kind``: 'status' (every item, by status), 'category' (indexed items), 'attribute' (indexed items, by
# attribute name and value as text, as ``CAST(json_extract(...) AS TEXT)`` gives it) and 'name' (indexed
# items setting an attribute name, whatever its value). Rows whose count fell to 0 stay and are skipped.
_FACET_DELTAS = (
    "INSERT INTO facets SELECT 'status', '', {row}.status, {d} WHERE true ON CONFLICT DO UPDATE SET n = n + {d};",
    "INSERT INTO facets SELECT 'category', '', {row}.category, {d} WHERE {row}.status = 'indexed' "
    "AND {row}.category IS NOT NULL ON CONFLICT DO UPDATE SET n = n + {d};",
    "INSERT INTO facets SELECT 'attribute', key, CAST(value AS TEXT), {d} FROM json_each({row}.attributes) "
    "WHERE {row}.status = 'indexed' AND value IS NOT NULL ON CONFLICT DO UPDATE SET n = n + {d};",
    "INSERT INTO facets SELECT 'name', key, '', {d} FROM json_each({row}.attributes) "
    "WHERE {row}.status = 'indexed' ON CONFLICT DO UPDATE SET n = n + {d};",
)


def _facet_trigger(name: str, event: str, *rows: tuple[str, str]) -> str:
    body = " ".join(delta.format(row=row, d=d) for row, d in rows for delta in _FACET_DELTAS)
    return f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON items BEGIN {body} END"


# Also version 3: one row per indexed item and attribute with a value, so an attribute filter (``bucket=7``)
# reads its keys from one range of the primary key, never an item row: scanning every item's JSON took 2.5 s at
# a million items, and even looking up the status of each matching item costs ~30 µs a key (16 KB pages).
# ``value`` is the attribute's value as filters compare it, ``CAST(json_extract(attributes, '$."name"') AS
# TEXT)``: a string as is, a number or a boolean (1/0) as text, a nested object or list as its JSON text; a
# JSON null has no row (it matches no filter). Rows follow the items' status as the facet counts do.
_ATTRIBUTE_ROWS = (
    "SELECT key, CAST(value AS TEXT), {row}.key FROM json_each({row}.attributes) "
    "WHERE {row}.status = 'indexed' AND value IS NOT NULL"
)
_ADD_ATTRIBUTES = "INSERT INTO item_attributes " + _ATTRIBUTE_ROWS + " ON CONFLICT DO NOTHING;"
_DROP_ATTRIBUTES = "DELETE FROM item_attributes WHERE (name, value, item_key) IN (" + _ATTRIBUTE_ROWS + ");"
_ATTRIBUTE_TABLE = (
    """
CREATE TABLE IF NOT EXISTS item_attributes (
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    item_key INTEGER NOT NULL,
    PRIMARY KEY (name, value, item_key)
) WITHOUT ROWID
""",
    "CREATE TRIGGER IF NOT EXISTS items_attributes_insert AFTER INSERT ON items BEGIN "
    + _ADD_ATTRIBUTES.format(row="NEW")
    + " END",
    "CREATE TRIGGER IF NOT EXISTS items_attributes_delete AFTER DELETE ON items BEGIN "
    + _DROP_ATTRIBUTES.format(row="OLD")
    + " END",
    # An upsert names both columns in its SET list whether or not they changed: only a change touches the rows.
    "CREATE TRIGGER IF NOT EXISTS items_attributes_update AFTER UPDATE OF status, attributes ON items "
    "WHEN OLD.status IS NOT NEW.status OR OLD.attributes IS NOT NEW.attributes BEGIN "
    + _DROP_ATTRIBUTES.format(row="OLD")
    + " "
    + _ADD_ATTRIBUTES.format(row="NEW")
    + " END",
)
#: The attribute rows of the items already stored (one pass over them), when the table is made for them.
_FILL_ATTRIBUTES = (
    "DELETE FROM item_attributes",
    "INSERT INTO item_attributes SELECT a.key, CAST(a.value AS TEXT), i.key FROM items i, json_each(i.attributes) a "
    "WHERE i.status = 'indexed' AND a.value IS NOT NULL ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING",
)


_SCHEMA_V3 = (
    """
CREATE TABLE IF NOT EXISTS facets (
    kind  TEXT NOT NULL,
    name  TEXT NOT NULL,
    value TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (kind, name, value)
) WITHOUT ROWID
""",
    "CREATE INDEX IF NOT EXISTS facets_by_count ON facets (kind, name, n)",
    _facet_trigger("items_facets_insert", "INSERT", ("NEW", "1")),
    _facet_trigger("items_facets_delete", "DELETE", ("OLD", "-1")),
    _facet_trigger("items_facets_update", "UPDATE OF status, category, attributes", ("OLD", "-1"), ("NEW", "1")),
    "CREATE INDEX IF NOT EXISTS items_failed ON items (updated_at) WHERE status = 'failed'",
    "CREATE INDEX IF NOT EXISTS items_indexed_price ON items (price) WHERE status = 'indexed' AND price IS NOT NULL",
    # A category filter's keys, in key order, without reading the item rows (3 s for 280k keys at 1M without).
    "CREATE INDEX IF NOT EXISTS items_indexed_category ON items (category, key) WHERE status = 'indexed'",
    *_ATTRIBUTE_TABLE,
)

# Upgrading to version 3: the counts of the items already stored (one pass over them).
_FILL_FACETS = (
    "DELETE FROM facets",
    "INSERT INTO facets SELECT 'status', '', status, COUNT(*) FROM items GROUP BY status",
    "INSERT INTO facets SELECT 'category', '', category, COUNT(*) FROM items "
    "WHERE status = 'indexed' AND category IS NOT NULL GROUP BY category",
    "INSERT INTO facets SELECT 'attribute', a.key, CAST(a.value AS TEXT), COUNT(*) FROM items i, "
    "json_each(i.attributes) a WHERE i.status = 'indexed' AND a.value IS NOT NULL GROUP BY 2, 3",
    "INSERT INTO facets SELECT 'name', a.key, '', COUNT(*) FROM items i, json_each(i.attributes) a "
    "WHERE i.status = 'indexed' GROUP BY 2",
    *_FILL_ATTRIBUTES,
)


def open_database(db_path: Path, store: str, *, read_only: bool = False) -> sqlite3.Connection:
    """Connect to a store's database, creating the schema in a new one and upgrading an old one.

    The connection is in autocommit mode (writers open their own ``BEGIN IMMEDIATE`` transactions), WAL
    journaling, foreign keys on, and shared across threads (callers serialise its use).

    Args:
        db_path: the database file.
        store: the store directory, as errors name it.
        read_only: open without ever writing (see :func:`open_read_only`): no schema creation, no upgrade.

    Raises:
        StoreVersionError: the database has a schema version this catalens neither has nor can upgrade
            (or, read-only, one that needs an upgrade).
        sqlite3.DatabaseError: the file is not a readable database.
    """
    if read_only:
        return open_read_only(db_path, store)
    is_new = not db_path.is_file() or db_path.stat().st_size == 0
    db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    db.row_factory = sqlite3.Row
    if is_new:
        # Set before WAL (which fixes it): a 2 KB vector row does not fit a 4 KB page's local payload, so
        # at the default size each spilled to an overflow page of its own, 4.7 KB a 512-d vector.
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    db.execute("PRAGMA journal_mode = WAL")
    # NORMAL is durable against process crashes (kill -9) in WAL mode; only power loss can drop the
    # last transactions, and never corrupts the database.
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 10000")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        db.executescript(_SCHEMA)
        for statement in (*_SCHEMA_V2, *_SCHEMA_V3, *SCHEMA_V4, *SCHEMA_V5, *SCHEMA_V6):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    elif version in UPGRADABLE_VERSIONS:
        upgrade(db, version)
    elif version != SCHEMA_VERSION:
        db.close()
        raise StoreVersionError(store, version, SCHEMA_VERSION)
    return db


def open_read_only(db_path: Path, store: str) -> sqlite3.Connection:
    """Connect to a database that must not (or cannot) be written: a snapshot on a read-only filesystem.

    ``mode=ro`` never writes the database. A WAL database read that way still needs its ``-shm`` file,
    which SQLite creates next to it: when no ``-wal`` file with content is there (a cleanly closed store),
    the database is opened ``immutable=1`` instead, which needs neither file and takes no locks; when one
    is there, its committed transactions must be read, so ``mode=ro`` is used and, should SQLite be unable
    to open it that way, ``immutable=1`` (the WAL's last transactions are then not seen).

    Raises:
        StoreVersionError: the schema version is not this catalens's (an older one needs a writable upgrade).
        sqlite3.DatabaseError: the file is not a readable database.
    """
    if not db_path.is_file():
        raise sqlite3.OperationalError(f"unable to open database file {db_path.name}: it does not exist")
    wal = db_path.with_name(db_path.name + "-wal")
    has_wal = wal.is_file() and wal.stat().st_size > 0
    uri = db_path.resolve().as_uri()
    attempts = [f"{uri}?mode=ro", f"{uri}?mode=ro&immutable=1"] if has_wal else [f"{uri}?mode=ro&immutable=1"]
    db: sqlite3.Connection | None = None
    for n, attempt in enumerate(attempts):
        try:
            db = sqlite3.connect(attempt, uri=True, check_same_thread=False, isolation_level=None)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            break
        except sqlite3.OperationalError:
            if db is not None:
                db.close()
                db = None
            if n == len(attempts) - 1:
                raise
    assert db is not None
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA query_only = ON")
    if version == 0:
        db.close()
        raise sqlite3.DatabaseError("the database holds no catalens schema")
    if version != SCHEMA_VERSION:
        db.close()
        raise StoreVersionError(store, version, SCHEMA_VERSION, upgradable=version in UPGRADABLE_VERSIONS)
    return db


def upgrade(db: sqlite3.Connection, version: int) -> None:
    """Upgrade a database step by step to :data:`SCHEMA_VERSION`, each step in one transaction.

    Another process may be upgrading the same store: the version is re-read under the write lock.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 1:
            for statement in _SCHEMA_V2:
                db.execute(statement)
            index_text(db, "1", [])
            db.execute("PRAGMA user_version = 2")
            version = 2
        if version == 2:
            # One pass over the items (about a minute at a million items), once.
            for statement in (*_SCHEMA_V3, *_FILL_FACETS):
                db.execute(statement)
            db.execute("PRAGMA user_version = 3")
            version = 3
        if version == 3:
            # A version 3 store made before ``item_attributes`` joined version 3 (unreleased then) gets its rows
            # (one pass over the items); the tagging tables start empty, so this step is otherwise instant.
            present = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'item_attributes'"
            if db.execute(present).fetchone() is None:
                for statement in (*_ATTRIBUTE_TABLE, *_FILL_ATTRIBUTES):
                    db.execute(statement)
            for statement in SCHEMA_V4:
                db.execute(statement)
            db.execute("PRAGMA user_version = 4")
            version = 4
        if version == 4:
            # Empty tables and a trigger: instant whatever the store's size.
            for statement in SCHEMA_V5:
                db.execute(statement)
            db.execute("PRAGMA user_version = 5")
            version = 5
        if version == 5:
            # Triggers and one pass over the enrichments (about a second at a million captions).
            for statement in UPGRADE_V6:
                db.execute(statement)
            db.execute("PRAGMA user_version = 6")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise

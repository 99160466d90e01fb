"""Schema version 6: how many captions each recorded captioner spec has made, kept exact by triggers.

Hybrid ranking asks, on every query, whether a store's captions all came from a captioner that reads the
store's own image vectors (see :func:`catalens.indexer.store.enrichments.caption_sources`). Counting the
specs of a million captions takes about 0.2 s, too slow for every query after every write, so the counts live
in the ``facets`` table (schema version 3) as rows of kind ``caption_spec``, name the recorded spec, value ``''``:
successful captions only (a caption whose ``error`` is set has no words). Rows whose count fell to 0 stay and
are skipped, as the other facets' do.

The triggers follow every way a caption row changes: inserted, updated in place (``write_enrichments``
upserts, so a REPLACE's hidden delete, which fires no trigger, never happens), deleted directly (stale
results) or with its item (``ON DELETE CASCADE``).
"""

from __future__ import annotations

_COUNTED = "{row}.kind = 'caption' AND {row}.error IS NULL"
_ADD = (
    "INSERT INTO facets SELECT 'caption_spec', NEW.spec, '', 1 WHERE " + _COUNTED.format(row="NEW") + " "
    "ON CONFLICT DO UPDATE SET n = n + 1;"
)
_DROP = (
    "UPDATE facets SET n = n - 1 WHERE kind = 'caption_spec' AND name = OLD.spec AND value = '' AND "
    + _COUNTED.format(row="OLD")
    + ";"
)

_TRIGGERS = (
    f"CREATE TRIGGER IF NOT EXISTS enrichments_caption_insert AFTER INSERT ON enrichments BEGIN {_ADD} END",
    f"CREATE TRIGGER IF NOT EXISTS enrichments_caption_delete AFTER DELETE ON enrichments BEGIN {_DROP} END",
    "CREATE TRIGGER IF NOT EXISTS enrichments_caption_update AFTER UPDATE OF kind, spec, error ON enrichments "
    f"BEGIN {_DROP} {_ADD} END",
)

#: The counts of the captions already stored (one pass over the enrichments), when the triggers are made for them.
_FILL = (
    "DELETE FROM facets WHERE kind = 'caption_spec'",
    "INSERT INTO facets SELECT 'caption_spec', spec, '', COUNT(*) FROM enrichments "
    "WHERE kind = 'caption' AND error IS NULL GROUP BY spec",
)

#: Version 6's statements for a new store.
SCHEMA_V6 = _TRIGGERS
#: Version 6's statements for a version 5 store (inside the upgrade's transaction).
UPGRADE_V6 = (*_TRIGGERS, *_FILL)

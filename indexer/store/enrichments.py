"""What the indexer learnt from the pixels: one caption and one OCR result per item (``enrichments`` table).

A result is tied to the image it was produced from (its content hash) and to the captioner or OCR engine
that produced it (its spec): a changed image or another spec makes the item due again. The text is part of
the item's full-text row, refreshed in the transaction that stores the result.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from catalens.indexer.store.sql import in_chunks

EnrichmentKind = Literal["caption", "ocr"]


@dataclass(frozen=True)
class Enrichment:
    """What a captioner or OCR engine produced for one item's image.

    Attributes:
        kind: ``caption`` or ``ocr``.
        spec: the captioner or OCR engine that produced it; another spec means the item is done again.
        content_hash: the image it was produced from; an item whose image changed is done again.
        text: the caption, or the text read in the image (indexed for lexical search).
        data: kind-specific detail: ``{"tags": {...}, "scores": {...}}`` for captions, ``{"words": [...]}``
            (text, box, confidence) for OCR.
        error: why this item could not be done (the text is then empty); it is retried when the image or
            the spec changes.
    """

    kind: EnrichmentKind
    spec: str
    content_hash: str | None
    text: str
    data: dict[str, Any]
    error: str | None = None
    updated_at: str = ""


@dataclass(frozen=True)
class EnrichmentTask:
    """An indexed item that still needs a caption or OCR pass, with what it takes to read its image."""

    key: int
    id: str
    source: str
    content_hash: str | None


def enrichment_tasks(db: sqlite3.Connection, kind: EnrichmentKind, spec: str, redo: bool) -> list[EnrichmentTask]:
    """Indexed items that ``spec`` has not yet done for their current image (every one with ``redo``), by key."""
    sql = """SELECT i.key, i.id, i.source, i.content_hash FROM items i
             LEFT JOIN enrichments e ON e.item_key = i.key AND e.kind = ?
             WHERE i.status = 'indexed'"""
    if not redo:
        sql += " AND (e.item_key IS NULL OR e.spec != ? OR e.content_hash IS NOT i.content_hash)"
    rows = db.execute(sql + " ORDER BY i.key", (kind, spec) if not redo else (kind,)).fetchall()
    return [EnrichmentTask(int(r[0]), r[1], r[2], r[3]) for r in rows]


def write_enrichments(db: sqlite3.Connection, results: Iterable[tuple[int, Enrichment]], now: str) -> list[int]:
    """Store results inside the caller's transaction; returns the keys whose result was stored.

    A result for an item that was deleted, or whose image changed, while it was being processed is dropped
    (it describes pixels the store no longer has).
    """
    written: list[int] = []
    for key, result in results:
        cursor = db.execute(
            # An upsert, not INSERT OR REPLACE: REPLACE's delete of the old row fires no trigger, and the
            # caption counts per spec (:mod:`.caption_schema`) follow the triggers.
            """INSERT INTO enrichments (item_key, kind, spec, content_hash, text, data, error, updated_at)
               SELECT key, ?, ?, content_hash, ?, ?, ?, ? FROM items
               WHERE key = ? AND content_hash IS ? AND status = 'indexed'
               ON CONFLICT (item_key, kind) DO UPDATE SET spec = excluded.spec, content_hash = excluded.content_hash,
               text = excluded.text, data = excluded.data, error = excluded.error, updated_at = excluded.updated_at""",
            (
                result.kind,
                result.spec,
                result.text,
                json.dumps(result.data, ensure_ascii=False, separators=(",", ":")),
                result.error,
                now,
                key,
                result.content_hash,
            ),
        )
        if cursor.rowcount:
            written.append(key)
    return written


def drop_stale_enrichments(db: sqlite3.Connection, key: int, content_hash: str | None) -> None:
    """Delete an item's results that describe another image than ``content_hash`` (the pixels are gone)."""
    db.execute("DELETE FROM enrichments WHERE item_key = ? AND content_hash IS NOT ?", (key, content_hash))


def enrichments_of(db: sqlite3.Connection, keys: Sequence[int]) -> dict[int, dict[str, Enrichment]]:
    """Captions and OCR results by item key, then by kind; items without any are absent."""
    found: dict[int, dict[str, Enrichment]] = {}
    for marks, chunk in in_chunks(keys):
        rows = db.execute(
            f"""SELECT item_key, kind, spec, content_hash, text, data, error, updated_at FROM enrichments
                WHERE item_key IN ({marks})""",
            chunk,
        ).fetchall()
        for row in rows:
            found.setdefault(int(row[0]), {})[row[1]] = Enrichment(
                kind=row[1],
                spec=row[2],
                content_hash=row[3],
                text=row[4],
                data=json.loads(row[5] or "{}"),
                error=row[6],
                updated_at=row[7],
            )
    return found


def enrichment_counts(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Per kind and spec, how many indexed items are done and how many failed (as ``"<spec> (failed)"``).

    ``CROSS JOIN`` keeps the enrichments as the outer loop: SQLite otherwise scans every item for its status
    (0.7-10 s at a million items with no enrichment at all).
    """
    rows = db.execute(
        """SELECT e.kind, e.spec, e.error IS NOT NULL, COUNT(*) FROM enrichments e
           CROSS JOIN items i ON i.key = e.item_key AND i.status = 'indexed' GROUP BY 1, 2, 3"""
    ).fetchall()
    counts: dict[str, dict[str, int]] = {}
    for kind, spec, failed, n in rows:
        counts.setdefault(kind, {})[f"{spec} (failed)" if failed else spec] = int(n)
    return counts


def vector_caption_spec(captioner: str, model_key: str) -> str:
    """The spec recorded with captions a captioner made from the store's own image vectors: ``captioner@model``.

    The model key (:attr:`StoreManifest.model_key`) is in it because such captions change with the vectors;
    it is also how :func:`caption_sources` tells them from captions that read the pixels.
    """
    return f"{captioner}@{model_key}"


@dataclass(frozen=True)
class CaptionSources:
    """How many of a store's captions came from its own image vectors, and how many from elsewhere.

    Attributes:
        from_vectors: captions recorded with :func:`vector_caption_spec` for the store's current model (the
            ``attributes`` captioner: zero-shot labels of the very vectors vector search ranks by).
        other: every other successful caption (BLIP and BLIP-2 read the pixels with a model of their own;
            captions of an earlier model's vectors are due again and counted here until redone).
    """

    from_vectors: int
    other: int

    @property
    def only_from_vectors(self) -> bool:
        """Whether the store has captions and every one restates its own vectors."""
        return self.from_vectors > 0 and self.other == 0


def caption_sources(db: sqlite3.Connection, model_key: str) -> CaptionSources:
    """Count the captions by where their words came from, from the per-spec counts the triggers keep."""
    suffix = vector_caption_spec("", model_key)
    rows = db.execute("SELECT name, n FROM facets WHERE kind = 'caption_spec' AND n > 0").fetchall()
    from_vectors = sum(int(n) for spec, n in rows if str(spec).endswith(suffix))
    return CaptionSources(from_vectors, sum(int(n) for _, n in rows) - from_vectors)

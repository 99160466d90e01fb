"""Tagging results in the store: runs, per-item tags (a model's proposals, people's decisions), the review queue.

Tables and triggers are in :mod:`.tag_schema`. Rules every writer here keeps:

* a person's decision wins: model writes never replace or add to what a person decided (see :meth:`TagTable.write`);
* counts (:meth:`TagTable.counts`, facets, attribute filters) are the triggers' exact counts of indexed items;
* every write is one ``BEGIN IMMEDIATE`` transaction through the store's connection lock; the caller holds the
  store's writer lock (``CatalogStore.writer_lock``) as for any write.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from catalens.indexer.store.filters import ItemFilter, matching_keys
from catalens.indexer.store.sql import Transaction, in_chunks, now
from catalens.indexer.tagging.errors import TagDecisionError

Decision = Literal["accept", "review", "reject"]
#: What a person can do to a tag (``set_by_person`` takes any string and refuses others with a typed error, so
#: an action read from a request or a command line needs no cast).
PERSON_ACTIONS = ("accept", "correct", "reject")
DECISIONS: tuple[Decision, ...] = ("accept", "review", "reject")
#: Rows per page when :meth:`TagTable.rows` streams an export.
ROWS_PAGE = 5000

_TAG_COLUMNS = (
    "t.attribute, t.value, t.confidence, t.decision, t.source, t.runner_up, t.runner_up_confidence, t.run_id, "
    "t.decided_by, t.updated_at"
)
# For one item's tags: by attribute, accepted first, then review, reject; a person's first, then most confident.
_TAG_ORDER = (
    "t.attribute, CASE t.decision WHEN 'accept' THEN 0 WHEN 'review' THEN 1 ELSE 2 END, t.source = 'model', "
    "t.confidence DESC, t.value"
)


@dataclass(frozen=True)
class Tag:
    """One tag of an item: a model's proposal (``source='model'``) or a person's decision (``'person'``).

    Attributes:
        confidence: the model's probability for the value (kept when a person decides on a proposed value;
            ``None`` for a value a person chose that the model did not propose).
        decision: ``accept`` (an attribute of the item for filters and facets), ``review`` or ``reject``.
        runner_up, runner_up_confidence: the model's second value for a single-label attribute.
        run_id: the run that proposed it (``tag_runs``), ``None`` for a person's own value.
        decided_by: who decided (a person's rows), ``None`` for the model's.
    """

    attribute: str
    value: str
    confidence: float | None
    decision: str
    source: str
    runner_up: str | None
    runner_up_confidence: float | None
    run_id: int | None
    decided_by: str | None
    updated_at: str


@dataclass(frozen=True)
class TagRow(Tag):
    """A tag with its item's id and its run's provenance, as exports write it."""

    item_id: str
    model: str | None
    taxonomy: str | None
    calibration: str | None


@dataclass(frozen=True)
class ModelTag:
    """A tag a tagging run proposes for one item (what :meth:`TagTable.write` takes)."""

    attribute: str
    value: str
    confidence: float
    decision: str
    runner_up: str | None = None
    runner_up_confidence: float | None = None


@dataclass(frozen=True)
class TagRun:
    """A tagging run: what it tagged with, and its summary once finished (``finished_at`` ``None`` until then)."""

    id: int
    signature: str
    taxonomy_hash: str
    taxonomy: str
    model: str
    calibration_id: str | None
    started_at: str
    finished_at: str | None
    summary: dict[str, Any]


@dataclass(frozen=True)
class ReviewEntry:
    """A model's tag waiting for a person: the proposed value and the runner-up."""

    item_id: str
    attribute: str
    value: str
    confidence: float
    runner_up: str | None
    runner_up_confidence: float | None


def taxonomy_choices(text: str) -> dict[str, tuple[tuple[str, ...], bool]]:
    """``{attribute: (value names, multi_label)}`` from a taxonomy's canonical JSON (as ``tag_runs`` keeps it).

    Reads only what the store's rules need (the taxonomy module owns the format): ``attributes`` is a mapping of
    name to ``{"values": ..., "multi_label": ...}`` (or a list of such objects with a ``name``); values are
    names, ``{"name": ...}`` objects, or a mapping keyed by name.

    Raises:
        TagDecisionError: the text is not such a taxonomy.
    """
    try:
        raw = json.loads(text)
        attributes = raw["attributes"]
        if isinstance(attributes, list):
            attributes = {str(a["name"]): a for a in attributes}
        choices: dict[str, tuple[tuple[str, ...], bool]] = {}
        for name, spec in attributes.items():
            values = spec["values"] if isinstance(spec, dict) else spec
            names = (
                list(values) if isinstance(values, dict) else [v["name"] if isinstance(v, dict) else v for v in values]
            )
            multi = bool(spec.get("multi_label", False)) if isinstance(spec, dict) else False
            choices[str(name)] = (tuple(str(v) for v in names), multi)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise TagDecisionError(f"the last tagging run's taxonomy cannot be read ({e})") from e
    return choices


class TagTable:
    """Tags of one store, reached as ``CatalogStore.tags``; every method takes the store's connection lock.

    Args:
        db: the store's connection.
        guard: the lock serialising its use.
        transaction: opens one write transaction (the store's ``_transaction``).
        model: the store's model (``pending`` asks for items with a vector of it).
    """

    def __init__(
        self, db: sqlite3.Connection, guard: threading.RLock, transaction: Callable[[], Transaction], model: str
    ) -> None:
        self._db = db
        self._guard = guard
        self._transaction = transaction
        self._model = model

    # -- runs ------------------------------------------------------------------------------------------------

    def start_run(
        self, signature: str, taxonomy_hash: str, taxonomy_json: str, model: str, calibration_id: str | None
    ) -> int:
        """Record the start of a tagging run; returns its id (the ``run_id`` of the tags it writes)."""
        with self._guard, self._transaction():
            cursor = self._db.execute(
                "INSERT INTO tag_runs (signature, taxonomy_hash, taxonomy, model, calibration_id, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (signature, taxonomy_hash, taxonomy_json, model, calibration_id, now()),
            )
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, summary: dict[str, Any]) -> None:
        """Record a run's end and its summary (JSON-serialisable)."""
        with self._guard, self._transaction():
            self._db.execute(
                "UPDATE tag_runs SET finished_at = ?, summary = ? WHERE id = ?", (now(), json.dumps(summary), run_id)
            )

    def last_run(self) -> TagRun | None:
        """The most recently started run (finished or not), or ``None`` before the first."""
        with self._guard:
            row = self._db.execute("SELECT * FROM tag_runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return TagRun(
            int(row["id"]),
            row["signature"],
            row["taxonomy_hash"],
            row["taxonomy"],
            row["model"],
            row["calibration_id"],
            row["started_at"],
            row["finished_at"],
            json.loads(row["summary"] or "{}"),
        )

    # -- the model's writes ----------------------------------------------------------------------------------

    def pending(self, signature: str, where: ItemFilter | None = None) -> np.ndarray:
        """Keys (int64, ascending) of the indexed items with a vector that ``signature`` has not tagged as they
        are now: no tagging state, another signature, or another image (content hash) than the one tagged.

        One query: the items in key order, each with a primary-key lookup of its state and of its vector.
        ``where`` keeps only the items passing a metadata filter.
        """
        sql = (
            "SELECT i.key FROM items i LEFT JOIN tag_state s ON s.item_key = i.key WHERE i.status = 'indexed' "
            "AND (s.item_key IS NULL OR s.signature IS NOT ? OR s.content_hash IS NOT i.content_hash) "
            "AND EXISTS (SELECT 1 FROM vectors v WHERE v.item_key = i.key AND v.model = ?) ORDER BY i.key"
        )
        with self._guard:
            cursor = self._db.execute(sql, (signature, self._model))
            cursor.row_factory = None
            keys = np.fromiter((r[0] for r in cursor), dtype=np.int64)
            if where is not None and not where.is_empty:
                keys = keys[np.isin(keys, matching_keys(self._db, where), assume_unique=True)]
        return keys

    def write(
        self, run_id: int, signature: str, results: Sequence[tuple[int, Sequence[str], Sequence[ModelTag]]]
    ) -> None:
        """Store one batch of a run's results in one transaction (a crash keeps all of it or none).

        For each ``(item key, attributes scored, tags)``: the item's model rows of the scored attributes (and of
        any attribute a tag names) are replaced by ``tags``; a person's rows are never touched, a value a person
        decided on (accepted or rejected) is not written, and a single-label attribute (by the run's taxonomy)
        a person accepted a value of gets no model row. A value given twice keeps its first tag. Then the item's
        tagging state becomes ``(signature, its current content hash)``. Items deleted, or no longer indexed,
        meanwhile are skipped.
        """
        stamp = now()
        with self._guard, self._transaction():
            run = self._db.execute("SELECT taxonomy FROM tag_runs WHERE id = ?", (run_id,)).fetchone()
            multi = {a for a, (_, m) in taxonomy_choices(run[0]).items() if m} if run else set()
            keys = [int(key) for key, _, _ in results]
            live: dict[int, str | None] = {}
            people: dict[tuple[int, str], dict[str, str]] = {}
            for marks, chunk in in_chunks(keys):
                sql = f"SELECT key, content_hash FROM items WHERE key IN ({marks}) AND status = 'indexed'"
                live.update((int(k), h) for k, h in self._db.execute(sql, chunk))
                sql = f"SELECT item_key, attribute, value, decision FROM tags WHERE item_key IN ({marks}) "
                for key, attribute, value, decision in self._db.execute(sql + "AND source = 'person'", chunk):
                    people.setdefault((int(key), attribute), {})[value] = decision
            drops: list[tuple[int, str, str]] = []
            rows: dict[tuple[int, str, str], tuple[Any, ...]] = {}
            for key, scored, tags in results:
                key = int(key)
                if key not in live:
                    continue
                kept: dict[str, list[str]] = {a: [] for a in [*scored, *(t.attribute for t in tags)]}
                for tag in tags:
                    decided = people.get((key, tag.attribute), {})
                    if tag.value in decided or (tag.attribute not in multi and "accept" in decided.values()):
                        continue
                    if (key, tag.attribute, tag.value) not in rows:
                        kept[tag.attribute].append(tag.value)
                    rows.setdefault(
                        (key, tag.attribute, tag.value),
                        (
                            key,
                            tag.attribute,
                            tag.value,
                            float(tag.confidence),
                            tag.decision,
                            tag.runner_up,
                            tag.runner_up_confidence,
                            run_id,
                            stamp,
                        ),
                    )
                drops.extend((key, attribute, json.dumps(values)) for attribute, values in kept.items())
            # The model rows of other values go; a value the item keeps is updated in place, so a re-run that
            # agrees with the last one rewrites rows without their counts (the triggers) moving.
            self._db.executemany(
                "DELETE FROM tags WHERE item_key = ? AND attribute = ? AND source = 'model' "
                "AND value NOT IN (SELECT value FROM json_each(?))",
                drops,
            )
            self._db.executemany(
                "INSERT INTO tags (item_key, attribute, value, confidence, decision, source, runner_up, "
                "runner_up_confidence, run_id, updated_at) VALUES (?, ?, ?, ?, ?, 'model', ?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET confidence = excluded.confidence, decision = excluded.decision, "
                "runner_up = excluded.runner_up, runner_up_confidence = excluded.runner_up_confidence, "
                "run_id = excluded.run_id, updated_at = excluded.updated_at WHERE source = 'model'",
                rows.values(),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO tag_state (item_key, signature, content_hash) VALUES (?, ?, ?)",
                [(key, signature, content_hash) for key, content_hash in live.items()],
            )

    # -- people's decisions ----------------------------------------------------------------------------------

    def set_by_person(self, item_id: str, attribute: str, value: str, action: str, *, who: str = "cli") -> list[Tag]:
        """Record a person's decision on one item's attribute; returns the item's tags after it.

        ``accept`` and ``correct`` make ``value`` the item's accepted value (a single-label attribute's other
        rows go; a multi-label one keeps its other values); ``reject`` records the value as rejected, so no
        later run proposes it again. The attribute and value must be in the last run's taxonomy (a value is
        matched case-insensitively and stored as the taxonomy spells it).

        Raises:
            TagDecisionError: an unknown item, attribute, value or action, or no tagging run yet.
        """
        if action not in PERSON_ACTIONS:
            raise TagDecisionError(f"unknown action {action!r}: use accept, correct or reject")
        run = self.last_run()
        if run is None:
            raise TagDecisionError("no tagging run yet: run `catalens tag run` before deciding on tags")
        choices = taxonomy_choices(run.taxonomy)
        if attribute not in choices:
            raise TagDecisionError(f"unknown attribute {attribute!r}: the taxonomy has {', '.join(choices)}")
        values, multi = choices[attribute]
        canonical = {v.strip().casefold(): v for v in values}.get(value.strip().casefold())
        if canonical is None:
            shown = ", ".join(values[:20]) + (f" (and {len(values) - 20} more)" if len(values) > 20 else "")
            raise TagDecisionError(f"unknown value {value!r} of {attribute!r}: its values are {shown}")
        decision = "reject" if action == "reject" else "accept"
        stamp = now()
        with self._guard, self._transaction():
            row = self._db.execute("SELECT key FROM items WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                raise TagDecisionError(f"unknown item {item_id!r}")
            key = int(row[0])
            if decision == "accept" and not multi:
                self._db.execute(
                    "DELETE FROM tags WHERE item_key = ? AND attribute = ? AND value != ?", (key, attribute, canonical)
                )
            self._db.execute(
                "INSERT INTO tags (item_key, attribute, value, decision, source, decided_by, updated_at) "
                "VALUES (?, ?, ?, ?, 'person', ?, ?) ON CONFLICT DO UPDATE SET decision = excluded.decision, "
                "source = 'person', decided_by = excluded.decided_by, updated_at = excluded.updated_at",
                (key, attribute, canonical, decision, who, stamp),
            )
            return self._tags_of([key]).get(key, [])

    # -- reading ---------------------------------------------------------------------------------------------

    def for_items(self, keys: Iterable[int]) -> dict[int, list[Tag]]:
        """Tags by item key (every decision and source); items without tags are absent."""
        wanted = [int(k) for k in keys]
        with self._guard:
            return self._tags_of(wanted)

    def _tags_of(self, keys: list[int]) -> dict[int, list[Tag]]:
        found: dict[int, list[Tag]] = {}
        for marks, chunk in in_chunks(keys):
            sql = f"SELECT t.item_key, {_TAG_COLUMNS} FROM tags t WHERE t.item_key IN ({marks})"
            for row in self._db.execute(f"{sql} ORDER BY t.item_key, {_TAG_ORDER}", chunk):
                found.setdefault(int(row[0]), []).append(Tag(*row[1:]))
        return found

    def review_queue(
        self, attribute: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[ReviewEntry], int]:
        """The model's tags waiting for review (indexed items only), least confident first: ``(page, total)``.

        Read in order from a partial index of the review rows, so a page costs ``offset + limit`` rows; the
        total comes from the counts the triggers keep.
        """
        params: list[Any] = [int(limit), int(offset)]
        index, where = "tags_review_all", ""
        if attribute is not None:
            index, where, params = "tags_review", "AND t.attribute = ? ", [attribute, *params]
        sql = (
            f"SELECT i.id, t.attribute, t.value, t.confidence, t.runner_up, t.runner_up_confidence "
            f"FROM tags t INDEXED BY {index} CROSS JOIN items i ON i.key = t.item_key "
            f"WHERE t.decision = 'review' AND t.source = 'model' {where}AND i.status = 'indexed' "
            "ORDER BY t.confidence, t.item_key, t.attribute, t.value LIMIT ? OFFSET ?"
        )
        with self._guard:
            entries = [ReviewEntry(*row) for row in self._db.execute(sql, params)]
            total = sum(c["review"] for a, c in self._counts().items() if attribute is None or a == attribute)
        return entries, total

    def counts(self) -> dict[str, dict[str, int]]:
        """``{attribute: {"accept": n, "review": n, "reject": n}}`` over indexed items' tags (from the facet
        counts the triggers keep: a few rows, whatever the number of tags); attributes without tags are absent.
        """
        with self._guard:
            return self._counts()

    def _counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for name, decision, n in self._db.execute(
            "SELECT name, value, n FROM facets WHERE kind = 'tag_decision' AND n > 0 ORDER BY name"
        ):
            counts.setdefault(name, dict.fromkeys(DECISIONS, 0))[decision] = int(n)
        return counts

    def rows(self, decision: str | None = None, attribute: str | None = None) -> Iterator[TagRow]:
        """Every tag of the indexed items (optionally of one decision or attribute) with its item's id and its
        run's provenance, by item key, attribute and value; read in pages, so an export never holds them all.
        """
        conditions, params = "", []
        for column, wanted in (("decision", decision), ("attribute", attribute)):
            if wanted is not None:
                conditions += f" AND t.{column} = ?"
                params.append(wanted)
        sql = (
            f"SELECT t.item_key, {_TAG_COLUMNS}, i.id, r.model, r.taxonomy_hash, r.calibration_id FROM tags t "
            "CROSS JOIN items i ON i.key = t.item_key LEFT JOIN tag_runs r ON r.id = t.run_id "
            f"WHERE (t.item_key, t.attribute, t.value) > (?, ?, ?) AND i.status = 'indexed'{conditions} "
            "ORDER BY t.item_key, t.attribute, t.value LIMIT ?"
        )
        after: tuple[int, str, str] = (-1, "", "")
        while True:
            with self._guard:
                page = self._db.execute(sql, (*after, *params, ROWS_PAGE)).fetchall()
            for row in page:
                yield TagRow(*row[1:])
            if len(page) < ROWS_PAGE:
                return
            after = (int(page[-1][0]), page[-1][1], page[-1][2])

    def person_labels(self) -> list[tuple[str, str, str]]:
        """``(item id, attribute, value)`` of every value a person accepted on an indexed item (the labels
        ``calibrate`` learns from), by item key."""
        sql = (
            "SELECT i.id, t.attribute, t.value FROM tags t INDEXED BY tags_person CROSS JOIN items i "
            "ON i.key = t.item_key WHERE t.source = 'person' AND t.decision = 'accept' AND i.status = 'indexed' "
            "ORDER BY t.item_key, t.attribute, t.value"
        )
        with self._guard:
            return [(str(a), str(b), str(c)) for a, b, c in self._db.execute(sql)]

"""The FTS5 full-text index (``items_fts``): its rows, kept in step with every write, and BM25 queries over it.

One row per indexed item, keyed by the item's integer key (its ``rowid``), with the columns of
:data:`catalens.indexer.lexical.FIELDS`. Rows are rewritten inside the transaction of the write that changed
the item or its caption or OCR text, so the full-text index never disagrees with the items table.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from catalens.indexer.lexical import FIELD_WEIGHTS, FIELDS, MARK_CLOSE, MARK_OPEN, attribute_text
from catalens.indexer.store.filters import ItemFilter, filter_clauses
from catalens.indexer.store.generations import current_seq
from catalens.indexer.store.sql import in_chunks

_BM25 = f"bm25(items_fts, {', '.join(str(FIELD_WEIGHTS[f]) for f in FIELDS)})"
#: A phrase matching more rows than this is common: it is kept out of ``bm25()`` (see :func:`lexical_search`).
#: Scoring one match costs FTS5 about 5 µs, so the rare phrases of a query cost at most a few ms.
COMMON_ROWS = 500
#: Most combinations of common phrases read when rare phrases leave the list short.
MAX_TIERS = 8
#: Common phrases (the rarest) whose combinations are read.
MAX_COMBINED = 6
#: FTS5 rows the common-word combinations may read in all (at least 4 × the list asked for): a filter that
#: keeps 1 % of the items then costs a few ms, and the list may be shorter than asked (the vector list fills it).
TIER_SCAN_ROWS = 1000
#: FTS5's BM25 constant ``k1``.
_K1 = 1.2
# One quoted FTS5 phrase ("" is an escaped quote inside it).
_PHRASE = re.compile(r'"(?:[^"]|"")*"')


@dataclass(frozen=True)
class LexicalMatch:
    """One full-text match: the item key, its BM25 score (higher is better) and per-field snippets.

    ``snippets`` maps each matched field to a short excerpt whose matched words are wrapped in
    :data:`indexer.lexical.MARK_OPEN` / ``MARK_CLOSE``; it is empty unless snippets were asked for.
    """

    key: int
    score: float
    snippets: dict[str, str]


def index_text(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> None:
    """Insert the FTS rows of the indexed items matching ``where`` (SQL on ``items i``).

    Each row is built from the item's fields, caption and OCR text; the caller has deleted any old rows
    and holds the transaction.
    """
    rows = db.execute(
        f"""SELECT i.key, i.title, i.description, c.text, o.text, i.attributes FROM items i
            LEFT JOIN enrichments c ON c.item_key = i.key AND c.kind = 'caption'
            LEFT JOIN enrichments o ON o.item_key = i.key AND o.kind = 'ocr'
            WHERE ({where}) AND i.status = 'indexed'""",
        params,
    ).fetchall()
    db.executemany(
        f"INSERT INTO items_fts (rowid, {', '.join(FIELDS)}) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (r[0], r[1] or "", r[2] or "", r[3] or "", r[4] or "", attribute_text(json.loads(r[5] or "{}")))
            for r in rows
        ],
    )


def sync_text(db: sqlite3.Connection, keys: Iterable[int]) -> None:
    """Make the FTS rows of ``keys`` match their items and enrichments (inside the caller's transaction).

    Only indexed items are in the full-text index, exactly as only they are in the vector index.
    """
    unique = list(dict.fromkeys(int(k) for k in keys))
    for marks, chunk in in_chunks(unique):
        db.execute(f"DELETE FROM items_fts WHERE rowid IN ({marks})", chunk)
        index_text(db, f"i.key IN ({marks})", chunk)


def only_columns(expr: str, columns: Sequence[str] | None) -> str:
    """``expr`` matched in ``columns`` only (FTS5's column filter), or as is when ``columns`` is ``None``.

    Raises:
        ValueError: a column the full-text index does not have, or none at all.
    """
    if columns is None:
        return expr
    unknown = [c for c in columns if c not in FIELDS]
    if unknown or not columns:
        raise ValueError(f"full-text columns must be some of {', '.join(FIELDS)}; got {list(columns)}")
    return "{" + " ".join(columns) + "} : (" + expr + ")"


def lexical_search(
    db: sqlite3.Connection,
    match: str,
    where: ItemFilter,
    limit: int,
    stats: TermStats | None = None,
    columns: Sequence[str] | None = None,
) -> list[LexicalMatch]:
    """The best ``limit`` full-text matches of an FTS5 MATCH expression among items passing ``where``.

    When every phrase of ``match`` (an OR of quoted phrases, as :func:`indexer.lexical.match_expression`
    makes) matches at most :data:`COMMON_ROWS` rows, or ``match`` is any other expression, this is FTS5's
    BM25 ranking of every match. Otherwise the ranking is bounded (see :func:`_bounded_search`): its cost
    no longer grows with how many rows a common word such as "black" matches.

    Args:
        stats: cached document frequencies of common phrases, kept by the caller between queries (a
            fresh one per call if ``None``: correct, but each call then counts its common phrases' rows).
        columns: match in these full-text columns only (all of them if ``None``); a phrase is common by
            the rows it matches there. BM25 still weighs each column as :data:`FIELD_WEIGHTS` says.
    """
    phrases = _PHRASE.findall(match)
    if not phrases or match != " OR ".join(phrases):
        return exhaustive_search(db, only_columns(match, columns), where, limit)
    phrases = list(dict.fromkeys(phrases))
    common = [p for p in phrases if _is_common(db, only_columns(p, columns))]
    if not common:
        return exhaustive_search(db, only_columns(match, columns), where, limit)
    return _bounded_search(db, phrases, common, where, limit, stats or TermStats(), columns)


def exhaustive_search(db: sqlite3.Connection, match: str, where: ItemFilter, limit: int) -> list[LexicalMatch]:
    """FTS5's own BM25 ranking of every row ``match`` matches (its cost grows with the number of matches).

    Equal scores are ordered by item id, not by key: keys follow the order indexing finished in, so two stores
    of one catalog would otherwise rank the same tie differently (``make demo``'s words-alone MRR read 0.932 or
    0.933 between fresh builds for that reason alone).
    """
    clauses, params = filter_clauses(where, "i.")
    sql = f"""SELECT items_fts.rowid, {_BM25} AS rank FROM items_fts JOIN items i ON i.key = items_fts.rowid
              WHERE items_fts MATCH ? AND {" AND ".join(clauses)} ORDER BY rank, i.id LIMIT ?"""
    rows = db.execute(sql, (match, *params, int(limit))).fetchall()
    # SQLite's bm25() is negative with the best match lowest; callers get the usual "higher is better".
    return [LexicalMatch(int(r[0]), -float(r[1]), {}) for r in rows]


def _is_common(db: sqlite3.Connection, phrase: str) -> bool:
    """Whether ``phrase`` matches more than :data:`COMMON_ROWS` rows; stops counting there, so it is cheap."""
    sql = "SELECT count(*) FROM (SELECT 1 FROM items_fts WHERE items_fts MATCH ? LIMIT ?)"
    return int(db.execute(sql, (phrase, COMMON_ROWS + 1)).fetchone()[0]) > COMMON_ROWS


def _bounded_search(
    db: sqlite3.Connection,
    phrases: list[str],
    common: list[str],
    where: ItemFilter,
    limit: int,
    stats: TermStats,
    columns: Sequence[str] | None,
) -> list[LexicalMatch]:
    """Rank a bounded candidate set when some phrases are common, with scores on BM25's scale.

    FTS5's ``bm25()`` costs time for every row a phrase of the expression matches, even under a LIMIT: it
    counts each phrase's rows for its IDF and scores every match before sorting (about 25 ns and 5 µs a row;
    "black OR leather OR shoes" matches 40 % of a synthetic catalog). So common phrases are kept out of
    ``bm25()``:

    * rows matching a rare phrase (each matches at most :data:`COMMON_ROWS` rows) are scored by FTS5's
      BM25 over the rare phrases, plus, for each common phrase the row also matches, that phrase's IDF times
      the BM25 weight of one title hit (:func:`_common_bonus`); which rows match it is found by an FTS5
      ``AND`` walk of the rare rows, without scoring;
    * if fewer than ``limit`` such rows pass the filter, rows matching only common phrases fill the list:
      first rows matching every common phrase, then smaller combinations in decreasing summed IDF (a row
      matching more, and rarer, common words first), each read in key order with a LIMIT SQLite stops
      early on (see :func:`_tiers`), at most :data:`TIER_SCAN_ROWS` rows in all (so a
      selective filter leaves the list short rather than reading every match). A row found first in a
      combination matches exactly that combination, since every larger one was read to its end before;
      its score is the sum of their bonuses, so rows of one combination tie and keep key order (FTS5's
      length normalisation, which would order them, is what is given up).

    A rare match thus outranks a common-only one whenever its BM25 does, which IDF makes the usual case.
    With ``columns``, every expression read is matched in those columns only.
    """
    rare = [p for p in phrases if p not in common]
    rows, df = stats.frequencies(db, [only_columns(p, columns) for p in common])
    bonus = {p: _common_bonus(rows, df[only_columns(p, columns)]) for p in common}
    scores: dict[int, float] = {}
    if rare:
        rare_expr = " OR ".join(rare)
        found = exhaustive_search(db, only_columns(rare_expr, columns), where, COMMON_ROWS * len(rare))
        scores = {m.key: m.score for m in found}
        for phrase in common:
            sql = "SELECT rowid FROM items_fts WHERE items_fts MATCH ?"
            for (key,) in db.execute(sql, (only_columns(f"({rare_expr}) AND {phrase}", columns),)):
                if key in scores:
                    scores[key] += bonus[phrase]
    clauses, params = filter_clauses(where, "i.")
    # The filter is checked row by row on at most ``budget`` rows read in key order (SQLite stops early).
    # CROSS JOIN keeps the FTS5 cursor outermost, so rows stream in key order and reading stops at the break.
    tier_sql = f"""SELECT items_fts.rowid, ({" AND ".join(clauses)}) FROM items_fts CROSS JOIN items i
                   ON i.key = items_fts.rowid WHERE items_fts MATCH ? ORDER BY items_fts.rowid LIMIT ?"""
    budget = max(TIER_SCAN_ROWS, 4 * int(limit))
    for expr, score in _tiers(common, bonus):
        if len(scores) >= limit or budget <= 0:
            break
        if rare:
            expr = f"({expr}) NOT ({' OR '.join(rare)})"
        for key, passes in db.execute(tier_sql, (*params, only_columns(expr, columns), budget)):
            budget -= 1
            if passes and int(key) not in scores:
                scores[int(key)] = score
                if len(scores) >= limit:
                    break
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[: int(limit)]
    return [LexicalMatch(int(key), float(score), {}) for key, score in ranked]


def _tiers(common: list[str], bonus: dict[str, float]) -> list[tuple[str, float]]:
    """The MATCH expressions of the common-only rows, best first, with the score of their rows.

    Combinations of the :data:`MAX_COMBINED` rarest common phrases (a long query of common words would
    otherwise have millions), the largest summed bonus first, at most :data:`MAX_TIERS`; then, unless they
    already covered every phrase alone, rows matching any common phrase, scored as the least common bonus
    (a lower bound), so that the list is filled whenever enough rows match.
    """
    rarest = sorted(common, key=lambda p: -bonus[p])[:MAX_COMBINED]
    found = [c for size in range(len(rarest), 0, -1) for c in itertools.combinations(rarest, size)]
    found.sort(key=lambda c: -sum(bonus[p] for p in c))
    tiers = [(" AND ".join(c), sum(bonus[p] for p in c)) for c in found[:MAX_TIERS]]
    if len(found) > MAX_TIERS or len(rarest) < len(common):
        tiers.append((" OR ".join(common), min(bonus.values())))
    return tiers


def _common_bonus(rows: int, df: int) -> float:
    """BM25's contribution of a phrase matching ``df`` of ``rows`` rows, hit once in the title of a row of
    average length: FTS5's IDF (floored at 1e-6 as FTS5 does) times ``w·(k1+1)/(w+k1)``."""
    idf = max(math.log((rows - df + 0.5) / (df + 0.5)), 1e-6)
    weight = FIELD_WEIGHTS["title"]
    return idf * weight * (_K1 + 1.0) / (weight + _K1)


@dataclass
class TermStats:
    """Row counts of common phrases, valid for one change sequence of the store (see :func:`lexical_search`).

    Counting a phrase that matches a quarter of a million rows takes tens of milliseconds, so a reader
    keeps one of these between queries; it is recounted after the store changes. Callers serialise access
    (the store's lock). At most ``max_phrases`` phrases are kept.
    """

    max_phrases: int = 4096
    seq: int = -1
    rows: int = 0
    df: dict[str, int] = field(default_factory=dict)

    def frequencies(self, db: sqlite3.Connection, phrases: Sequence[str]) -> tuple[int, dict[str, int]]:
        """``(rows in the full-text index, {phrase: rows it matches})``, counted when not cached."""
        seq = current_seq(db)
        if seq != self.seq:
            self.seq, self.df = seq, {}
            self.rows = _row_count(db)
        for phrase in phrases:
            if phrase not in self.df:
                if len(self.df) >= self.max_phrases:
                    self.df.clear()
                sql = "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?"
                self.df[phrase] = int(db.execute(sql, (phrase,)).fetchone()[0])
        return self.rows, {p: self.df[p] for p in phrases}


def text_of(db: sqlite3.Connection, key: int) -> dict[str, str]:
    """An item's full-text row, field by field (empty when the item is not in the full-text index)."""
    row = db.execute(f"SELECT {', '.join(FIELDS)} FROM items_fts WHERE rowid = ?", (int(key),)).fetchone()
    return {field: str(value or "") for field, value in zip(FIELDS, row, strict=True)} if row else {}


def lexical_snippets(db: sqlite3.Connection, match: str, keys: list[int], tokens: int) -> dict[int, dict[str, str]]:
    """For each key, the fields ``match`` hits with a short marked-up excerpt of each (see LexicalMatch)."""
    if not keys:
        return {}
    columns = ", ".join(
        f"snippet(items_fts, {i}, '{MARK_OPEN}', '{MARK_CLOSE}', '…', {int(tokens)})" for i in range(len(FIELDS))
    )
    marks = ",".join("?" * len(keys))
    rows = db.execute(
        f"SELECT rowid, {columns} FROM items_fts WHERE items_fts MATCH ? AND rowid IN ({marks})",
        (match, *keys),
    ).fetchall()
    return {
        int(row[0]): {field: row[i + 1] for i, field in enumerate(FIELDS) if MARK_OPEN in (row[i + 1] or "")}
        for row in rows
    }


def _row_count(db: sqlite3.Connection) -> int:
    """Rows in the full-text index, as FTS5's ``bm25()`` counts them: the first varint of the table's
    "averages" record (``items_fts_data`` row 1, kept by FTS5 on every write), read in O(1) where counting
    the items of a million-item store takes a second; counted when that record cannot be read."""
    row = db.execute("SELECT block FROM items_fts_data WHERE id = 1").fetchone()
    block = bytes(row[0]) if row and row[0] is not None else b""
    value = 0
    for i, byte in enumerate(block[:9]):  # SQLite varint: 7 bits a byte, big-endian; the 9th byte has 8
        if i == 8:
            return (value << 8) | byte
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value
    return int(db.execute("SELECT count(*) FROM items_fts").fetchone()[0])

"""Metadata filters over indexed items, and the facet counts a search page offers as filters."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ItemFilter:
    """Metadata conditions on indexed items; all given conditions must hold.

    Attributes:
        categories: the item's category is one of these (none given: any category).
        price_min, price_max: inclusive price bounds; items without a price fail a bound.
        attributes: ``(name, value)`` pairs the item's attributes must equal, compared as text, case and all
            (a number as SQLite writes it, ``7`` or ``7.5``; a boolean as ``1``/``0``; a JSON null never). An
            accepted tag (decision ``accept``, by the model or a person) counts as an attribute: the pair holds
            when the catalog attributes or an accepted tag give the item that value.
    """

    categories: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    attributes: tuple[tuple[str, str], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.categories or self.attributes) and self.price_min is None and self.price_max is None


def filter_clauses(where: ItemFilter, prefix: str = "") -> tuple[list[str], list[Any]]:
    """SQL conditions (and their parameters) on ``items`` columns for an indexed item passing ``where``.

    Args:
        where: the filter.
        prefix: the table alias with its dot (``"i."``) when ``items`` is joined.
    """
    clauses = [f"{prefix}status = 'indexed'"]
    params: list[Any] = []
    if where.categories:
        clauses.append(f"{prefix}category IN ({','.join('?' * len(where.categories))})")
        params.extend(where.categories)
    if where.price_min is not None:
        clauses.append(f"{prefix}price >= ?")
        params.append(where.price_min)
    if where.price_max is not None:
        clauses.append(f"{prefix}price <= ?")
        params.append(where.price_max)
    for name, value in where.attributes:
        clauses.append(_has_attribute(f"{prefix}key"))
        params.extend(_attribute_params(name, value))
    return clauses, params


def _has_attribute(key: str) -> str:
    """The condition that item ``key`` (a column) has an attribute's value, from its catalog attributes or an
    accepted tag (four parameters: :func:`_attribute_params`).

    Two primary-key lookups: in the rows the schema's triggers keep (``value`` as ``CAST(json_extract(attributes,
    '$."name"') AS TEXT)`` gives it) rather than a parse of the item's JSON, and in ``tags`` (whose key starts
    with the item). Correlated, not ``key IN (SELECT ...)``: callers test rows one by one, and the IN list of a
    common value (10 % of a million items) would be built in full for every query. Callers check the item's
    status themselves (``filter_clauses``), so a failed item's tags never match.
    """
    return (
        f"(EXISTS (SELECT 1 FROM item_attributes WHERE name = ? AND value = ? AND item_key = {key}) "
        f"OR EXISTS (SELECT 1 FROM tags WHERE item_key = {key} AND attribute = ? AND value = ? "
        "AND decision = 'accept'))"
    )


def _attribute_params(name: str, value: str) -> list[str]:
    """The parameters of :func:`_has_attribute` for one ``(name, value)`` pair."""
    return [name, value, name, value]


# The indexed items with an attribute's value (two parameters: name, value, twice), each once, in key order: the
# catalog's rows and the accepted tags' index range, merged. A failed item has no catalog rows; its tags are
# kept out through the partial index of failed items (a handful of keys, looked up once per query).
_KEYS_WITH_VALUE = (
    "SELECT item_key FROM item_attributes WHERE name = ? AND value = ? "
    "UNION SELECT item_key FROM tags WHERE attribute = ? AND value = ? AND decision = 'accept' "
    "AND item_key NOT IN (SELECT key FROM items WHERE status = 'failed')"
)


def matching_keys(db: sqlite3.Connection, where: ItemFilter) -> np.ndarray:
    """Keys of the indexed items that satisfy ``where``, sorted (int64).

    With an attribute condition, the keys come from ``item_attributes`` and the accepted tags (indexed items
    only, in key order per value) and item rows are read only for a category or price condition: 1 % of a
    million items is 10,000 keys from one range of an index, where the scan of the items read every item's JSON
    (2.5 s), and even reading each matching item's row to check its status costs 30 µs a key.
    """
    if where.attributes:
        (name, value), *others = where.attributes
        conditions, params = ["true"], _attribute_params(name, value)
        for other in others:
            conditions.append(_has_attribute("a.item_key"))
            params.extend(_attribute_params(*other))
        join = ""
        columns = ItemFilter(where.categories, where.price_min, where.price_max)
        if not columns.is_empty:
            clauses, extra = filter_clauses(columns, "i.")
            join = " CROSS JOIN items i ON i.key = a.item_key"  # CROSS: the attribute's keys stay outermost
            conditions.extend(clauses)
            params.extend(extra)
        sql = (
            f"SELECT a.item_key FROM ({_KEYS_WITH_VALUE}) a{join} WHERE {' AND '.join(conditions)} ORDER BY a.item_key"
        )
        cursor = db.execute(sql, params)
    else:
        clauses, params = filter_clauses(where)
        cursor = db.execute(f"SELECT key FROM items WHERE {' AND '.join(clauses)} ORDER BY key", params)
    cursor.row_factory = None  # plain tuples, streamed into the array: a category can hold 100,000s of keys
    return np.fromiter((r[0] for r in cursor), dtype=np.int64)


def facet_counts(db: sqlite3.Connection, name: str, limit: int) -> list[tuple[str, int]]:
    """Indexed-item counts per value of ``category`` or of one attribute, most frequent first.

    Read from the ``facets`` counts the schema's triggers keep (never a scan of the items), through the
    ``(kind, name, n)`` index: even an attribute with a million distinct values answers at once. An attribute's
    count adds the items whose accepted tag (and not their catalog attributes) gives them the value, so it is
    the number of items the attribute filter matches. ``category`` is the catalog column only (what
    ``ItemFilter.categories`` matches). A value outside the catalog's ``limit`` best can only enter the list
    through its tags, so the catalog's best ``limit`` and the tagged values (a taxonomy's few) are all the
    candidates.
    """
    kind, facet = ("category", "") if name == "category" else ("attribute", name)
    ranked = "SELECT value, n FROM facets WHERE kind = ? AND name = ? AND n > 0 ORDER BY n DESC, value LIMIT ?"
    counts = {str(r[0]): int(r[1]) for r in db.execute(ranked, (kind, facet, limit))}
    if kind == "attribute":
        tagged = db.execute("SELECT value, n FROM facets WHERE kind = 'tag' AND name = ? AND n > 0", (name,))
        for value, n in tagged.fetchall():
            if value not in counts:
                row = db.execute(
                    "SELECT n FROM facets WHERE kind = 'attribute' AND name = ? AND value = ?", (name, value)
                ).fetchone()
                counts[value] = max(int(row[0]), 0) if row else 0
            counts[value] += int(n)
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]


def attribute_names(db: sqlite3.Connection, limit: int) -> list[tuple[str, int]]:
    """Attribute names set on indexed items with how many items set each, the most widely set first.

    A tagged attribute adds its accepted tags that the catalog does not repeat (for a single-label attribute,
    the items it tags; a multi-label one counts each accepted value, and an item whose catalog has the
    attribute with another value counts twice): a ranking of what is widely set, not a filter's count.
    """
    ranked = "SELECT name, n FROM facets WHERE kind = 'name' AND n > 0 ORDER BY n DESC, name LIMIT ?"
    counts = {str(r[0]): int(r[1]) for r in db.execute(ranked, (limit,))}
    tagged = db.execute("SELECT name, SUM(n) FROM facets WHERE kind = 'tag' AND n > 0 GROUP BY name")
    for name, n in tagged.fetchall():
        if name not in counts:
            row = db.execute("SELECT n FROM facets WHERE kind = 'name' AND name = ? AND value = ''", (name,)).fetchone()
            counts[name] = max(int(row[0]), 0) if row else 0
        counts[name] += int(n)
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]


def price_range(db: sqlite3.Connection) -> tuple[float, float] | None:
    """The lowest and highest price of the indexed items, or ``None`` when none has a price.

    Two ends of the partial index of indexed prices, rather than one scan of every item.
    """
    ends = [
        db.execute(
            f"SELECT price FROM items INDEXED BY items_indexed_price WHERE status = 'indexed' AND price IS NOT NULL "
            f"ORDER BY price {order} LIMIT 1"
        ).fetchone()
        for order in ("ASC", "DESC")
    ]
    return (float(ends[0][0]), float(ends[1][0])) if ends[0] is not None and ends[1] is not None else None

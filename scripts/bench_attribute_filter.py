#!/usr/bin/env python3
"""Attribute filters and the engine's size on a large store: the ``item_attributes`` rows against the JSON scan
they replaced, and a count of every vector against the change stamp a kept count is checked with.

On a store from ``scripts/scale_data.py`` (``bucket`` keeps 1 % of the items, ``colour`` about 8 %):

* ``matching_keys`` of ``bucket=7`` and of ``colour=red``, as the store answers now and with the former clause
  (``CAST(json_extract(attributes, '$."bucket"') AS TEXT) = ?``), timed interleaved, the key lists compared;
* lexical search with the same filters (its common-word tiers check the filter row by row), both ways;
* ``store.vector_count()`` (what ``SearchEngine.size`` cost on every call) and ``store.change_stamp()`` (what
  it costs now while the store is unchanged).

Opening a store made before ``item_attributes`` fills it (timed as ``fill_seconds``). Prints a final JSON line.
Run: ``python scripts/bench_attribute_filter.py --store /tmp/attr-100k``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from catalens.indexer.store import CatalogStore, ItemFilter, filters, fulltext  # noqa: E402

#: The clauses as the store builds them now (the benchmark patches the module's name with the former ones).
CURRENT_CLAUSES = filters.filter_clauses


def json_scan_clauses(where: ItemFilter, prefix: str = "") -> tuple[list[str], list[Any]]:
    """The attribute clause as it was before ``item_attributes``: every item's JSON read."""
    clauses, params = CURRENT_CLAUSES(ItemFilter(where.categories, where.price_min, where.price_max), prefix)
    for name, value in where.attributes:
        clauses.append(f"CAST(json_extract({prefix}attributes, ?) AS TEXT) = ?")
        params.extend([f'$."{name}"', value])
    return clauses, params


def json_scan_keys(db: Any, where: ItemFilter) -> np.ndarray:
    """``matching_keys`` as it was before ``item_attributes``: a scan of the items."""
    clauses, params = json_scan_clauses(where)
    rows = db.execute(f"SELECT key FROM items WHERE {' AND '.join(clauses)} ORDER BY key", params).fetchall()
    return np.array([row[0] for row in rows], dtype=np.int64)


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median milliseconds of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    store = CatalogStore.open(args.store)
    figures: dict[str, Any] = {
        "store": str(args.store),
        "open_and_fill_seconds": round(time.perf_counter() - started, 2),
    }
    db = store._db  # noqa: SLF001 (a benchmark: the former clause runs on the same connection)
    try:
        figures["items"] = store.status_counts()
        for name, value in (("bucket", "7"), ("colour", "red")):
            where = ItemFilter(attributes=((name, value),))
            new_ms, new_keys = timed(lambda w=where: store.matching_keys(w), args.repeat)
            old_ms, old_keys = timed(lambda w=where: json_scan_keys(db, w), args.repeat)
            assert np.array_equal(new_keys, old_keys), f"{name}={value}: the two filters disagree"
            figures[f"matching_keys_{name}={value}"] = {
                "keys": len(new_keys),
                "json_scan_ms": round(old_ms, 1),
                "table_ms": round(new_ms, 1),
            }
            for query in ('"red"', '"black" OR "mugs"'):
                new_ms, new_hits = timed(lambda w=where, q=query: fulltext.lexical_search(db, q, w, 20), args.repeat)
                with mock.patch.object(fulltext, "filter_clauses", json_scan_clauses):
                    old_ms, old_hits = timed(
                        lambda w=where, q=query: fulltext.lexical_search(db, q, w, 20), args.repeat
                    )
                assert [h.key for h in new_hits] == [h.key for h in old_hits], f"lexical {query} {name}={value}"
                figures[f"lexical_{query}_{name}={value}"] = {
                    "json_scan_ms": round(old_ms, 1),
                    "table_ms": round(new_ms, 1),
                }
        count_ms, count = timed(store.vector_count, args.repeat)
        stamp_ms, _ = timed(store.change_stamp, 50)
        figures["size"] = {
            "vectors": count,
            "vector_count_ms": round(count_ms, 1),
            "change_stamp_ms": round(stamp_ms, 3),
        }
    finally:
        store.close()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

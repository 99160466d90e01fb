#!/usr/bin/env python3
"""Lexical-leg benchmark: what does the hybrid mode's BM25 list cost next to the vector search?

Opens an existing store (e.g. one made by ``scripts/scale_data.py``, with its index built) with a loaded
model of the store's spec, and for each query measures, in interleaved rounds so that drifting machine
load affects all alike:

* ``lexical_ms``: the lexical leg alone: ``SearchEngine.search`` in lexical mode with ``k`` = the fusion
  depth (100), i.e. the BM25 list the hybrid mode fuses, with its hits' rows read;
* ``vector_ms``: ``SearchEngine.search_vector`` with the query's text vector (computed once beforehand);
* ``hybrid_ms``: ``SearchEngine.search_text`` with the engine's text cache already holding the query's
  vector, i.e. the default hybrid query minus its text encoding (a cache lookup remains);
* ``encode_ms``: ``encoder.encode_texts([q])`` alone (or ``--encode-ms`` if given, e.g. the time of the
  production text encoder measured elsewhere).

It also measures quality against FTS5's exhaustive BM25 ranking (``fulltext.exhaustive_search``, every
match scored): ``overlap_at_depth``, the share of the exhaustive top-``depth`` list the bounded list also
holds, and ``top10_overlap``. Queries are the shop phrases of ``scripts/bench_query.py`` plus phrases made
of the synthetic catalog's own words (all common, common with an item number, a brand), each also run with
a 1 % attribute filter (``bucket=7``) when ``--filters`` is given.

``--lexical-only`` times the lexical leg on the store's database alone (read-only SQLite, no model and no
vector index needed, any schema version): ``lexical_ms`` (bounded ranking plus reading the hits' item rows)
and ``exhaustive_ms`` (FTS5 scoring every match, what the leg did before; ``--exhaustive-rounds`` rounds).

Final JSON line: per-leg p50/p99 (legs with the filter are reported apart, ``filtered_*``),
``hybrid_over_vector`` (p50 hybrid minus encode / p50 vector) and
``hybrid_over_vector_with_encode`` ((p50 hybrid + encode) / (p50 vector + encode)), the target being 1.5.

    .venv/bin/python scripts/bench_lexical.py --store /tmp/lex-100k [--rounds 5] [--filters] [--encode-ms 10]
    .venv/bin/python scripts/bench_lexical.py --store /tmp/scale-1m --lexical-only [--filters]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from bench_query import QUERIES  # noqa: E402

from catalens.indexer.lexical import match_expression  # noqa: E402
from catalens.indexer.store import CatalogStore, ItemFilter  # noqa: E402
from catalens.indexer.store.fulltext import TermStats, exhaustive_search, lexical_search  # noqa: E402
from catalens.models import load_model  # noqa: E402
from catalens.search.engine import QueryPart, SearchEngine, SearchOptions  # noqa: E402

#: Phrases of the synthetic catalog's own words (scale_data.py): only common words, common words with an
#: item number, a brand, a bucket number.
CATALOG_QUERIES = (
    "black leather shoes", "red wool hats", "white cotton shirts", "blue denim jeans", "brown leather bags",
    "black leather shoes 4711", "green canvas backpacks 90210", "brand042", "brand007 watches", "bucket 7",
)  # fmt: skip


def percentiles(values_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(values_ms)
    return {"p50": round(float(np.percentile(arr, 50)), 3), "p99": round(float(np.percentile(arr, 99)), 3)}


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000.0


def quality(db_path: Path, queries: list[str], where: ItemFilter, depth: int) -> dict[str, float]:
    """Mean overlap of the bounded lexical list with the exhaustive BM25 list (top ``depth`` and top 10)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        full, top10 = [], []
        for query in queries:
            match = match_expression(query)
            if match is None:
                continue
            exact = [m.key for m in exhaustive_search(db, match, where, depth)]
            bounded = [m.key for m in lexical_search(db, match, where, depth)]
            if exact:
                full.append(len(set(exact) & set(bounded)) / len(exact))
                top10.append(len(set(exact[:10]) & set(bounded[:10])) / len(exact[:10]))
        return {"overlap_at_depth": round(float(np.mean(full)), 4), "top10_overlap": round(float(np.mean(top10)), 4)}
    finally:
        db.close()


def read_rows(db: sqlite3.Connection, keys: list[int]) -> int:
    """Read the hits' item rows, as the engine does for the lexical list."""
    if not keys:
        return 0
    return len(db.execute(f"SELECT * FROM items WHERE key IN ({','.join('?' * len(keys))})", keys).fetchall())


def lexical_only(args: argparse.Namespace, queries: list[str], wheres: list[ItemFilter]) -> dict[str, object]:
    """The lexical leg on the store's database alone (read-only, any schema version): bounded vs exhaustive."""
    db = sqlite3.connect(f"file:{args.store / 'catalog.sqlite3'}?mode=ro", uri=True)
    stats = TermStats()
    depth = 100
    times: dict[str, list[float]] = {}
    cases = [(q, w, match_expression(q)) for w in wheres for q in queries]
    cases = [(q, w, m) for q, w, m in cases if m is not None]
    for _, where, match in cases:  # warm-up: page cache, common words' row counts
        lexical_search(db, match, where, depth, stats)
    for round_ in range(args.rounds):
        for _, where, match in cases:
            tag = "" if where.is_empty else "filtered_"
            lap = timed(lambda m=match, w=where: read_rows(db, [x.key for x in lexical_search(db, m, w, depth, stats)]))
            times.setdefault(f"{tag}lexical", []).append(lap)
            if round_ < args.exhaustive_rounds:
                lap = timed(lambda m=match, w=where: read_rows(db, [x.key for x in exhaustive_search(db, m, w, depth)]))
                times.setdefault(f"{tag}exhaustive", []).append(lap)
    db.close()
    return {f"{leg}_ms": percentiles(v) for leg, v in times.items() if v}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--filters", action="store_true", help="also run every query with bucket=7")
    parser.add_argument("--encode-ms", type=float, default=None, help="use this text-encoding time instead")
    parser.add_argument("--no-quality", action="store_true", help="skip the comparison with exhaustive BM25")
    parser.add_argument(
        "--lexical-only", action="store_true", help="time the lexical leg on the database alone (no model, no index)"
    )
    parser.add_argument("--exhaustive-rounds", type=int, default=1, help="rounds that also time exhaustive BM25")
    args = parser.parse_args()
    queries = list(QUERIES) + list(CATALOG_QUERIES)
    wheres = [ItemFilter()] + ([ItemFilter(attributes=(("bucket", "7"),))] if args.filters else [])
    result: dict[str, object] = {"store": str(args.store), "queries": len(queries) * len(wheres), "rounds": args.rounds}
    if args.lexical_only:
        result |= lexical_only(args, queries, wheres)
    else:
        result |= engine_legs(args, queries, wheres)
    if not args.no_quality:
        for where in wheres:
            name = "quality" if where.is_empty else "quality_filtered"
            result[name] = quality(args.store / "catalog.sqlite3", queries, where, 100)
    print(json.dumps(result))
    return 0


def engine_legs(args: argparse.Namespace, queries: list[str], wheres: list[ItemFilter]) -> dict[str, object]:
    """Lexical leg, vector-only and hybrid-minus-encode through :class:`SearchEngine`, interleaved."""
    store = CatalogStore.open(args.store, read_only=True)
    encoder = load_model(store.manifest.model)
    engine = SearchEngine(store, encoder)
    depth = engine.fusion.depth
    vectors = {q: engine.embed_query([QueryPart(text=q)]) for q in queries}  # fills the text cache too
    times: dict[str, list[float]] = {}
    for where in wheres:  # warm-up: page caches, common words' row counts
        for q in queries:
            engine.search_text(q, SearchOptions(where=where))
    for _ in range(args.rounds):
        for where in wheres:
            tag = "" if where.is_empty else "filtered_"
            for q in queries:
                lexical = SearchOptions(mode="lexical", k=depth, where=where)
                lap = timed(lambda q=q, o=lexical: engine.search([QueryPart(text=q)], o))
                times.setdefault(f"{tag}lexical", []).append(lap)
                vector = SearchOptions(mode="vector", where=where)
                lap = timed(lambda q=q, o=vector: engine.search_vector(vectors[q], o))
                times.setdefault(f"{tag}vector", []).append(lap)
                hybrid = SearchOptions(where=where)
                times.setdefault(f"{tag}hybrid", []).append(timed(lambda q=q, o=hybrid: engine.search_text(q, o)))
                if args.encode_ms is None:
                    times.setdefault("encode", []).append(timed(lambda q=q: encoder.encode_texts([q])))
    stats = {leg: percentiles(v) for leg, v in times.items() if v}
    encode = args.encode_ms if args.encode_ms is not None else stats["encode"]["p50"]
    items = engine.size
    engine.close()
    result: dict[str, object] = {"items": items, **{f"{leg}_ms": s for leg, s in stats.items()}}
    result["encode_ms_used"] = encode
    for tag in ("", "filtered_") if len(wheres) > 1 else ("",):
        hybrid, vector = stats[f"{tag}hybrid"]["p50"], stats[f"{tag}vector"]["p50"]
        result[f"{tag}hybrid_over_vector"] = round(hybrid / vector, 3)
        result[f"{tag}hybrid_over_vector_with_encode"] = round((hybrid + encode) / (vector + encode), 3)
    return result


if __name__ == "__main__":
    raise SystemExit(main())

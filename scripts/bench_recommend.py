#!/usr/bin/env python3
"""Recommendation benchmark: what ``SearchEngine.recommend`` costs next to a plain search, and what it changes.

Latency, on a store of synthetic catalog vectors (``scripts/scale_data.py``: brand and category follow the
vector clusters, as in real catalogs), k=10, one query item per round, the variants interleaved within each
round so drifting machine load hits them alike:

* ``plain``: ``search_vector`` with the query item's vector (read beforehand);
* ``average``: ``recommend([item])``;
* ``best_score_5``: ``recommend`` with 5 positive examples (the item and four of its neighbours), best score;
* ``mmr_0.3``: ``recommend([item])`` with diversity 0.3 (MMR over the default pool of 50);
* ``max_per_brand_2``: ``recommend([item])`` with at most 2 results per brand.

Each variant's ``ratio`` is its p50 over plain's p50 (target: at most 2). Two more rows, timed in the same
rounds, show what no recommendation can go below: ``index_1`` and ``index_5`` are the vector index's own search
(the engine's index generation and search settings, one thread) for the one query vector and for the five
examples' vectors in one call. ``best_score_5`` searches around each example, so ``index_5`` bounds it from
below; ``max_per`` makes two searches, one after the other, whenever the first list runs out of brands.

Quality, on the demo catalog indexed with catalens-mini (``--quality demo``, the default) or on the latency
store (``--quality store``), every item (or ``--quality-queries`` of them) used as the one positive example:

* ``intra_list_similarity``: the mean pairwise cosine of the top 10, at diversity 0, 0.3 and 0.7, with the
  mean relevance (cosine to the query item) it costs;
* ``same_brand_share`` / ``same_category_share``: the share of the top 10 that has the query item's brand
  (category), without and with ``max_per`` (brand 2; category 3), and the most results one value got.

Usage::

    python scripts/scale_data.py --store /tmp/rec-100k -n 100000
    python scripts/bench_recommend.py --store /tmp/rec-100k            # indexes it (auto) when needed
    python scripts/bench_recommend.py --store /tmp/rec-2k --items 2000 --factory Flat --quality store  # quick

Progress on stderr, one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from catalens.indexer.errors import StoreModelMismatchError  # noqa: E402
from catalens.indexer.pipeline import IndexOptions, index_catalog, reindex  # noqa: E402
from catalens.indexer.publish import load_tuned  # noqa: E402
from catalens.indexer.store import CatalogStore, ItemFilter  # noqa: E402
from catalens.search.engine import RecommendOptions, SearchEngine, SearchOptions  # noqa: E402

DEMO_MANIFEST = REPO_ROOT / "scripts" / "data" / "demo_catalog" / "catalog.csv"
DIVERSITIES = (0.0, 0.3, 0.7)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class VectorsOnly:
    """Stands in for the store's model: the benchmark sends stored items and vectors, never text or images."""

    def __init__(self, spec: str, dim: int, weights_digest: str | None) -> None:
        self.spec = spec
        self.dim = dim
        self.weights_digest = weights_digest  # the store's own: the stored vectors are the only ones used
        self.logit_scale = 100.0

    def encode_images(self, images: Any) -> np.ndarray:
        raise RuntimeError("the benchmark encodes no images")

    def encode_texts(self, texts: Any) -> np.ndarray:
        raise RuntimeError("the benchmark encodes no texts")


def open_engine(path: Path, factory: str, items: int | None) -> SearchEngine:
    """The latency store's engine, filling (``items``) and indexing the store first when needed."""
    if items and not CatalogStore.exists(path):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from scale_data import fill_store

        log(f"filled a store with {items:,} synthetic items in {fill_store(path, items):.0f} s")
    with CatalogStore.open(path) as store:
        indexed = store.manifest.index is not None
        spec, dim, digest = store.manifest.model, store.manifest.dim, store.manifest.model_digest
    if not indexed:
        started = time.perf_counter()
        state = reindex(path, factory)
        log(f"indexed the store ({state.factory}) in {time.perf_counter() - started:.0f} s")
    store = CatalogStore.open(path)
    return SearchEngine(store, VectorsOnly(spec, dim, digest))  # type: ignore[arg-type]


def sample_ids(engine: SearchEngine, n: int, seed: int) -> list[str]:
    keys = engine.store.matching_keys(ItemFilter())
    chosen = np.random.default_rng(seed).choice(keys, size=min(n, len(keys)), replace=False)
    items = engine.store.get_items(chosen.tolist())
    return [items[int(k)].id for k in chosen if int(k) in items]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def measure_latency(engine: SearchEngine, rounds: int, seed: int) -> dict[str, Any]:
    """Interleaved latencies of plain search and each recommend variant, in milliseconds."""
    queries = sample_ids(engine, rounds, seed)
    vectors = {q: engine.item_vector(q) for q in queries}
    five = {}
    for q in queries:  # the item and four of its neighbours, as a "more like these" selection
        near = [h.id for h in engine.similar(q, SearchOptions(k=20, mode="vector")).hits]
        five[q] = [q, *near[4:20:4]][:5]
    k10 = SearchOptions(k=10)
    assert engine.store.manifest.index is not None
    index, _ = load_tuned(engine.store, engine.store.manifest.index)  # the engine's generation, searched alone
    matrices = {q: np.stack([engine.item_vector(i) for i in five[q]]) for q in queries}
    variants: dict[str, Callable[[str], object]] = {
        "plain": lambda q: engine.search_vector(vectors[q], k10),
        "average": lambda q: engine.recommend([q], options=k10),
        "best_score_5": lambda q: engine.recommend(
            five[q], options=k10, recommend=RecommendOptions(strategy="best_score")
        ),
        "mmr_0.3": lambda q: engine.recommend([q], options=k10, recommend=RecommendOptions(diversity=0.3)),
        "max_per_brand_2": lambda q: engine.recommend(
            [q], options=k10, recommend=RecommendOptions(max_per={"brand": 2})
        ),
        "index_1": lambda q: index.search(vectors[q], 10, threads=1),
        "index_5": lambda q: index.search(matrices[q], 10, threads=1),
    }
    for q in queries[: min(5, len(queries))]:  # warm the page cache and the index
        for run in variants.values():
            run(q)
    timings: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for n, q in enumerate(queries):
        for name in names[n % len(names) :] + names[: n % len(names)]:  # rotate who goes first
            started = time.perf_counter()
            variants[name](q)
            timings[name].append((time.perf_counter() - started) * 1000)
        if (n + 1) % 50 == 0:
            log(f"  latency round {n + 1} of {len(queries)}")
    plain = statistics.median(timings["plain"])
    result: dict[str, Any] = {}
    for name, values in timings.items():
        p50 = statistics.median(values)
        result[name] = {
            "p50_ms": round(p50, 3),
            "p90_ms": round(percentile(values, 90), 3),
            "ratio": round(p50 / plain, 2),
        }
    result["all_within_2x"] = all(v["ratio"] <= 2.0 for k, v in result.items() if k != "plain" and k[:6] != "index_")
    return result


def demo_engine(work: Path, model: str) -> SearchEngine:
    """The demo catalog's store under ``work``, brought up to date with ``model``.

    An existing store is indexed again (only what changed is embedded), so one left by earlier weights or another
    model is re-embedded rather than measured as it is: reusing it would report the old model's figures.
    """
    store = work / "demo-store"
    started = time.perf_counter()
    options = IndexOptions(model=model, device="cpu")
    try:
        report = index_catalog(DEMO_MANIFEST, store, options)
    except StoreModelMismatchError as error:
        log(f"the demo store was made with another model or weights ({error}); re-embedding it")
        report = index_catalog(DEMO_MANIFEST, store, replace(options, rebuild=True))
    if report.embedded:
        seconds = time.perf_counter() - started
        log(f"embedded {report.embedded} of the demo catalog's items ({model}) in {seconds:.0f} s")
    return SearchEngine.open(store, device="cpu")


def intra_list_similarity(vectors: np.ndarray) -> float:
    n = len(vectors)
    if n < 2:
        return 0.0
    sims = vectors @ vectors.T
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def value_of(item: Any, name: str) -> str | None:
    value = getattr(item, name) if name == "category" else item.attributes.get(name)
    return None if value in (None, "") else str(value)


def measure_quality(engine: SearchEngine, queries: int, seed: int) -> dict[str, Any]:
    """Intra-list similarity by diversity, and the share of results sharing the query's brand or category."""
    chosen = sample_ids(engine, queries, seed)
    items = engine.store.get_items_by_id(chosen)
    k10 = SearchOptions(k=10)
    ils: dict[str, list[float]] = {str(d): [] for d in DIVERSITIES}
    relevance: dict[str, list[float]] = {str(d): [] for d in DIVERSITIES}
    shares: dict[str, dict[str, list[float]]] = {}
    most: dict[str, dict[str, list[int]]] = {}
    caps = {"brand": 2, "category": 3}
    for n, q in enumerate(chosen):
        for d in DIVERSITIES:
            hits = engine.recommend([q], options=k10, recommend=RecommendOptions(diversity=d)).hits
            vectors = np.stack([engine.item_vector(h.id) for h in hits])
            ils[str(d)].append(intra_list_similarity(vectors))
            relevance[str(d)].append(float(np.mean(vectors @ engine.item_vector(q))))
        for name, cap in caps.items():
            own = value_of(items[q], name)
            for label, settings in (("without_max_per", RecommendOptions()), (f"max_per_{cap}", None)):
                settings = settings or RecommendOptions(max_per={name: cap})
                hits = engine.recommend([q], options=k10, recommend=settings).hits
                values = [value_of(h, name) for h in hits]
                if own is not None:
                    shares.setdefault(name, {}).setdefault(label, []).append(
                        sum(v == own for v in values) / max(len(values), 1)
                    )
                counted = Counter(v for v in values if v is not None)
                most.setdefault(name, {}).setdefault(label, []).append(max(counted.values(), default=0))
        if (n + 1) % 25 == 0:
            log(f"  quality query {n + 1} of {len(chosen)}")
    return {
        "queries": len(chosen),
        "intra_list_similarity": {d: round(statistics.mean(v), 4) for d, v in ils.items()},
        "mean_relevance": {d: round(statistics.mean(v), 4) for d, v in relevance.items()},
        **{
            f"same_{name}_share": {label: round(statistics.mean(v), 4) for label, v in by_label.items()}
            for name, by_label in shares.items()
        },
        **{
            f"most_per_{name}": {label: round(statistics.mean(v), 2) for label, v in by_label.items()}
            for name, by_label in most.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="a scale_data.py store (indexed if needed)")
    parser.add_argument("--items", type=int, help="fill the store with this many synthetic items if it does not exist")
    parser.add_argument("--factory", default="auto", help="index factory when the store needs indexing")
    parser.add_argument("--rounds", type=int, default=300, help="query items timed per variant")
    parser.add_argument("--quality", choices=("demo", "store", "none"), default="demo")
    parser.add_argument("--quality-queries", type=int, default=170, help="query items for the quality measures")
    parser.add_argument("--model", default="catalens-mini", help="model for the demo catalog")
    parser.add_argument("--work", type=Path, default=REPO_ROOT / ".cache" / "bench_recommend")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    engine = open_engine(args.store, args.factory, args.items)
    out: dict[str, Any] = {"items": engine.size, "generation": engine.generation}
    try:
        log(f"latency: {args.rounds} rounds over {engine.size:,} items")
        out["latency"] = measure_latency(engine, args.rounds, args.seed)
        for name, row in out["latency"].items():
            if isinstance(row, dict):
                log(f"  {name:16s} p50 {row['p50_ms']:8.2f} ms  p90 {row['p90_ms']:8.2f} ms  x{row['ratio']}")
        if args.quality == "store":
            out["quality"] = {"catalog": "store", **measure_quality(engine, args.quality_queries, args.seed)}
    finally:
        engine.close()
    if args.quality == "demo":
        args.work.mkdir(parents=True, exist_ok=True)
        with demo_engine(args.work, args.model) as demo:
            log(f"quality on the demo catalog ({demo.size} items)")
            out["quality"] = {"catalog": "demo", **measure_quality(demo, args.quality_queries, args.seed)}
    if "quality" in out:
        log(f"  intra-list similarity by diversity: {out['quality']['intra_list_similarity']}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

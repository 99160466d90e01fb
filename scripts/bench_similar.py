#!/usr/bin/env python3
"""What "similar items" gain from the item's own words, and what that costs: vector vs hybrid ``similar``.

Opens a store with the model of its spec and, for a seeded sample of indexed items, asks
``SearchEngine.similar`` in each mode:

* quality: how many of each item's 3 nearest items share its category (``at3``) and whether the nearest does
  (``at1``), averaged over the sample, against ``chance`` (the share a random neighbour would have);
* latency: per call, in interleaved rounds (each round runs the modes in turn, the order alternating) so
  drifting machine load affects every mode alike; p50 and p99 in milliseconds, and their ratio.

Prints a table, then one JSON line.

    .venv/bin/python scripts/bench_similar.py --store .demo/store [--items 200] [--rounds 3] [-k 10]
    .venv/bin/python scripts/bench_similar.py --store /tmp/scale-100k --items 300
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from catalens.indexer.store import ItemFilter  # noqa: E402
from catalens.search.engine import SearchEngine, SearchMode, SearchOptions  # noqa: E402

MODES: tuple[SearchMode, ...] = ("vector", "hybrid")


def sample(engine: SearchEngine, n: int, seed: int) -> dict[str, str | None]:
    """``n`` indexed items drawn with ``seed``: id -> category."""
    keys = engine.store.matching_keys(ItemFilter())
    chosen = np.random.default_rng(seed).choice(keys, size=min(n, len(keys)), replace=False)
    items = engine.store.get_items(sorted(int(k) for k in chosen))
    return {item.id: item.category for item in items.values()}


def agreement(engine: SearchEngine, items: dict[str, str | None], mode: SearchMode) -> dict[str, float]:
    """Share of each item's 3 nearest (and of the nearest) in its own category, over items with one."""
    at3, at1 = [], []
    for item_id, category in items.items():
        if category is None:
            continue
        hits = engine.similar(item_id, SearchOptions(k=3, mode=mode)).hits
        same = [h.category == category for h in hits]
        at3.append(sum(same) / 3)
        at1.append(float(same[0]) if same else 0.0)
    return {"at3": round(float(np.mean(at3)), 4) if at3 else float("nan"), "at1": round(float(np.mean(at1)), 4)}


def chance(engine: SearchEngine) -> float:
    """The share of a random other item in an item's category, averaged over the items."""
    counts = Counter(dict(engine.store.facet_counts("category", limit=100_000)))
    total = sum(counts.values())
    return sum(n * (n - 1) for n in counts.values()) / (total * (total - 1)) if total > 1 else 0.0


def latencies(engine: SearchEngine, ids: list[str], rounds: int, k: int) -> dict[SearchMode, list[float]]:
    """Milliseconds per ``similar`` call, per mode, modes interleaved and their order alternating."""
    times: dict[SearchMode, list[float]] = {mode: [] for mode in MODES}
    for round_number in range(rounds):
        for n, item_id in enumerate(ids):
            order = MODES if (n + round_number) % 2 == 0 else MODES[::-1]
            for mode in order:
                start = time.perf_counter()
                engine.similar(item_id, SearchOptions(k=k, mode=mode))
                times[mode].append((time.perf_counter() - start) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--items", type=int, default=200, help="items sampled (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="latency rounds over the sample")
    parser.add_argument("-k", type=int, default=10, help="hits per similar call when timing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with SearchEngine.open(args.store) as engine:
        items = sample(engine, args.items, args.seed)
        for item_id in list(items)[:5]:  # warm the caches and the index once
            for mode in MODES:
                engine.similar(item_id, SearchOptions(k=args.k, mode=mode))
        quality = {mode: agreement(engine, items, mode) for mode in MODES}
        times = latencies(engine, list(items), args.rounds, args.k)
        result: dict[str, Any] = {
            "store": str(args.store),
            "items_in_store": engine.size,
            "sampled": len(items),
            "chance": round(chance(engine), 4),
            "modes": {
                mode: {
                    **quality[mode],
                    "p50_ms": round(float(np.percentile(times[mode], 50)), 3),
                    "p99_ms": round(float(np.percentile(times[mode], 99)), 3),
                }
                for mode in MODES
            },
        }
    vector, hybrid = result["modes"]["vector"], result["modes"]["hybrid"]
    result["hybrid_over_vector_p50"] = round(hybrid["p50_ms"] / vector["p50_ms"], 2)
    print(f"{'mode':<8} {'at3':>6} {'at1':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for mode, row in result["modes"].items():
        print(f"{mode:<8} {row['at3']:>6.3f} {row['at1']:>6.3f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}")
    print(f"chance {result['chance']:.3f}; {result['sampled']} items of {result['items_in_store']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Scale benchmark: a store of N synthetic 512-d vectors (issue 13's generator), indexed with ``auto`` and
beside it ``Flat``, ``HNSW32`` and an IVF-PQ choice, each measured the same way.

Steps, all through catalens's own code paths:

1. Fill a store with N vectors from :mod:`scale_data` (the fixed low-intrinsic-dimension generator) through
   ``CatalogStore.write_batch``, with metadata; an existing store made by ``scale_data.py`` with the same N
   is reused (``--store``), since filling 1M items takes about ten minutes on two cores.
2. For each factory, run ``catalens reindex --store S --index F [--index-memory M] --retrain --json`` in a
   child process: build time (wall, tuning included), its peak RSS (``wait4``), and the tuning it recorded.
3. Load the published generation as the engine does (tuned settings, re-rank depth) and measure on 1,000
   held-out query vectors that are not in the store (a separate stream of the generator): recall@10 against
   the exact answer, single-thread latency p50/p95 (search plus re-ranking from SQLite, as served),
   queries per second with 1 and with 8 concurrent threads, bytes per vector (the index file).
4. The filtered path through ``SearchEngine.search_vector`` with ``bucket=7`` (exactly 1 % of the items,
   independent of the vectors): recall@10 against the exact filtered answer, and latency.
5. Optionally (``--autofaiss PYTHON``) autofaiss on the same vectors and budget, via
   ``scripts/autofaiss_compare.py`` in its own virtual environment (it pins numpy<2).

Prints a human summary on stderr and one JSON line last on stdout:
``{"n", "auto": {"factory", "recall_at_10", "qps", "bytes_per_vector", ...}, "flat": {...}, "hnsw": {...},
"ivfpq": {...}, "speedup_vs_flat", "filter_1pct": {...}, "autofaiss": {...}}``.

    python scripts/bench_scale.py -n 1000000 --store /tmp/scale-1m --index-memory 128MB
    python scripts/bench_scale.py -n 100000            # a temporary store, a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import scale_data  # noqa: E402

from catalens.indexer.publish import index_summary, load_tuned  # noqa: E402
from catalens.indexer.store import CatalogStore  # noqa: E402
from catalens.indexer.store.filters import ItemFilter  # noqa: E402
from catalens.indexer.vectors.rerank import rerank  # noqa: E402
from catalens.indexer.vectors.tuning import recall  # noqa: E402

K = 10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def exact_top(queries: np.ndarray, n: int, seed: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Exact top-K keys (1-based, as the store numbers items) of each query over the first ``n`` points."""
    best_s = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), K), -1, dtype=np.int64)
    generator = scale_data.Generator.make(seed)
    for first, _, vectors in generator.stream(n):
        keys = np.arange(first + 1, first + 1 + len(vectors), dtype=np.int64)
        scores = queries @ vectors.T
        if allowed is not None:
            scores[:, ~np.isin(keys, allowed)] = -np.inf
        merged_s = np.concatenate([best_s, scores], axis=1)
        merged_i = np.concatenate([best_i, np.broadcast_to(keys, scores.shape)], axis=1)
        order = np.argsort(-merged_s, axis=1)[:, :K]
        best_s = np.take_along_axis(merged_s, order, axis=1)
        best_i = np.take_along_axis(merged_i, order, axis=1)
    return np.where(np.isfinite(best_s), best_i, -1)


def build(store: Path, factory: str, memory: str | None) -> dict[str, Any]:
    """``catalens reindex`` in a child process: its JSON output, wall time and peak RSS."""
    command = [sys.executable, "-m", "catalens.search.cli", "reindex", "--store", str(store), "--index", factory]
    command += ["--retrain", "--quiet", "--json"] + (["--index-memory", memory] if memory else [])
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    assert child.stdout is not None and child.stderr is not None
    out, err = child.stdout.read(), child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"reindex {factory} failed: {err.decode()[-2000:]}")
    result = json.loads(out.decode())
    result["build_seconds"] = round(time.perf_counter() - started, 1)
    result["build_peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # kB on Linux
    return result


def measure(
    store_path: Path,
    queries: np.ndarray,
    truth: np.ndarray,
    filtered_truth: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Recall, latency and QPS of the store's current generation, searched as the engine searches it.

    With ``filtered_truth`` (allowed keys, exact filtered answers of the first queries) the index is also
    searched with the allowed set, widening as the engine does, to show its filtered recall at scale.
    """
    store = CatalogStore.open(store_path)
    try:
        state = store.manifest.index
        assert state is not None
        index, depth = load_tuned(store, state)

        def lookup(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return store.vectors_for(keys.tolist())

        def one(query: np.ndarray) -> np.ndarray:
            found = index.search(query, max(K, depth), threads=1)
            if depth:
                return rerank(query, found.ids[0], lookup)[0][:K]
            return found.ids[0][:K]

        for query in queries[:20]:
            one(query)  # warm the page cache and FAISS's lazy structures
        found = np.full((len(queries), K), -1, dtype=np.int64)
        times = []
        for row, query in enumerate(queries):
            started = time.perf_counter()
            ids = one(query)
            times.append((time.perf_counter() - started) * 1000)
            found[row, : len(ids)] = ids
        qps8 = concurrent_qps(one, queries, 8)
        summary = index_summary(state)
        extra = {}
        if filtered_truth is not None:
            extra["filter_1pct_in_index"] = filtered_in_index(index, depth, lookup, queries, *filtered_truth)
        return {
            **extra,
            "factory": state.factory,
            "search_params": summary.get("search_params"),
            "recall_at_10": round(recall(found, truth), 4),
            "recall_at_10_tuning": summary.get("recall_at_10"),
            "p50_ms": round(statistics.median(times), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3),
            "qps": round(1000 / statistics.mean(times), 1),
            "qps_8_threads": round(qps8, 1),
            "bytes_per_vector": summary.get("bytes_per_vector"),
            "index_mb": round(state.file_bytes / 1e6, 1),
        }
    finally:
        store.close()


def filtered_in_index(
    index: Any, depth: int, lookup: Any, queries: np.ndarray, allowed: np.ndarray, truth: np.ndarray
) -> dict[str, Any]:
    """The index searched with an allowed set (what the engine does for filters over its exact-scan limit),
    widening up to 4 times until K matches are found, then re-ranked: recall against the exact filtered top K."""
    found = np.full((len(truth), K), -1, dtype=np.int64)
    times = []
    for row, query in enumerate(queries[: len(truth)]):
        started = time.perf_counter()
        for attempt in range(5):
            result = index.search(query, max(K, depth), allowed=allowed, attempt=attempt, threads=1)
            ids = result.ids[0][result.ids[0] >= 0]
            if len(ids) >= K or result.exhaustive:
                break
        if depth:
            ids = rerank(query, ids, lookup)[0]
        times.append((time.perf_counter() - started) * 1000)
        found[row, : min(K, len(ids))] = ids[:K]
    return {
        "recall_at_10": round(recall(found, truth), 4),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "short_pages": int(((found >= 0).sum(axis=1) < K).sum()),
    }


def concurrent_qps(search: Any, queries: np.ndarray, threads: int) -> float:
    """Queries per second with ``threads`` threads each searching its share of ``queries``."""
    shares = np.array_split(queries, threads)
    started = time.perf_counter()
    workers = [threading.Thread(target=lambda part=part: [search(q) for q in part]) for part in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(queries) / (time.perf_counter() - started)


def filtered(store_path: Path, queries: np.ndarray, n: int, seed: int) -> dict[str, Any]:
    """The 1 % filter (``bucket=7``) through the engine's own filtered path, against the exact answer."""
    from catalens.search.engine import SearchOptions
    from catalens.search.engine.retrieval import VectorRetriever
    from catalens.search.engine.snapshot import Snapshots

    store = CatalogStore.open(store_path)
    try:
        where = ItemFilter(attributes=(("bucket", "7"),))
        allowed = store.matching_keys(where)
        truth = exact_top(queries, n, seed, allowed)
        # The engine's vector path without a model (query vectors are given): its snapshot and retriever.
        snaps = Snapshots(store, store.manifest.model)
        retriever = VectorRetriever(store)
        options = SearchOptions(k=K, where=where)
        found = np.full((len(queries), K), -1, dtype=np.int64)
        times = []
        for row, query in enumerate(queries):
            started = time.perf_counter()
            hits = retriever.page(snaps.current, query, options)
            times.append((time.perf_counter() - started) * 1000)
            keys = [int(h.id.removeprefix("sku-")) + 1 for h in hits]
            found[row, : len(keys)] = keys
        return {
            "matching": int(len(allowed)),
            "recall_at_10": round(recall(found, truth), 4),
            "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(float(np.percentile(times, 95)), 2),
            "short_pages": int(((found >= 0).sum(axis=1) < K).sum()),
        }
    finally:
        store.close()


def autofaiss(python: str, n: int, seed: int, queries: np.ndarray, memory: str, work: Path) -> dict[str, Any]:
    """autofaiss on the same vectors and budget (its own venv), via scripts/autofaiss_compare.py."""
    base, qfile = work / "base.npy", work / "queries.npy"
    if not base.exists():
        np.save(base, scale_data.catalog_vectors(n, seed))
    np.save(qfile, queries)
    command = [python, str(REPO_ROOT / "scripts" / "autofaiss_compare.py"), "--base", str(base)]
    command += ["--queries", str(qfile), "--memory", memory, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr[-1000:]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000, help="items (default 1,000,000)")
    parser.add_argument("--store", type=Path, help="reuse or create this store (default: a temporary one)")
    parser.add_argument("--index-memory", default="128MB", help="auto's memory budget (default 128MB)")
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--factories",
        default="auto,Flat,HNSW32,ivfpq",
        help="comma-separated; `ivfpq` is IVF{4√n},PQ64, `current` measures the published generation without "
        "building (default auto,Flat,HNSW32,ivfpq)",
    )
    parser.add_argument("--default-budget", action="store_true", help="also build auto with the default budget")
    parser.add_argument("--autofaiss", metavar="PYTHON", help="a python with autofaiss installed, to compare")
    args = parser.parse_args()

    from catalens.indexer.vectors.auto import ivf_lists

    temp = tempfile.TemporaryDirectory(prefix="catalens-scale-")
    store = args.store or Path(temp.name) / "store"
    result: dict[str, Any] = {"n": args.n, "dim": scale_data.DIM, "index_memory": args.index_memory}
    if not CatalogStore.exists(store):
        log(f"filling a store with {args.n:,} synthetic vectors ...")
        result["fill_seconds"] = round(scale_data.fill_store(store, args.n, seed=args.seed), 1)
    queries = scale_data.query_vectors(args.queries, args.seed)
    log("exact answers for the held-out queries ...")
    truth = exact_top(queries, args.n, args.seed)
    with CatalogStore.open(store) as opened:
        allowed = opened.matching_keys(ItemFilter(attributes=(("bucket", "7"),)))
    filter_queries = min(200, len(queries))
    filtered_truth = (allowed, exact_top(queries[:filter_queries], args.n, args.seed, allowed))
    names = {"auto": "auto", "Flat": "flat", "HNSW32": "hnsw", "ivfpq": "ivfpq"}
    for wanted in [f.strip() for f in args.factories.split(",") if f.strip()]:
        factory = f"IVF{ivf_lists(args.n)},PQ64" if wanted == "ivfpq" else wanted
        if wanted == "current":  # measure the published generation again, without building
            built = {"build_seconds": None, "build_peak_rss_mb": None}
        else:
            log(f"building {factory} ...")
            built = build(store, factory, args.index_memory if wanted == "auto" else None)
        measured = measure(store, queries, truth, filtered_truth)
        entry = {**measured, **{k: built[k] for k in ("build_seconds", "build_peak_rss_mb")}}
        entry["chosen_by"], entry["reason"] = built.get("chosen_by"), built.get("reason")
        result[names.get(wanted, wanted)] = entry
        log(f"  {json.dumps(entry)}")
    result["filter_1pct"] = filtered(store, queries[:filter_queries], args.n, args.seed)
    log(f"  1 % filter through the engine: {json.dumps(result['filter_1pct'])}")
    if args.default_budget:
        built = build(store, "auto", None)
        result["auto_default_budget"] = {**measure(store, queries, truth), "build_seconds": built["build_seconds"]}
        log(f"  default budget: {json.dumps(result['auto_default_budget'])}")
    if "auto" in result and "flat" in result:
        result["speedup_vs_flat"] = round(result["auto"]["qps"] / result["flat"]["qps"], 1)
    if args.autofaiss:
        log("autofaiss ...")
        result["autofaiss"] = autofaiss(args.autofaiss, args.n, args.seed, queries, args.index_memory, Path(temp.name))
    temp.cleanup()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

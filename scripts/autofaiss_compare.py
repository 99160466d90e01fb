#!/usr/bin/env python3
"""What autofaiss builds for the same vectors and memory budget, measured like catalens's own recipes (issue 13).

autofaiss (PyPI 2.18.0) pins ``numpy<2`` and therefore cannot share catalens's environment; run this script
with its own virtual environment, which needs no catalens import::

    python3 -m venv /tmp/afvenv
    /tmp/afvenv/bin/pip install autofaiss "pyarrow<18"   # pyarrow>=18 wants numpy>=2 and breaks the import
    /tmp/afvenv/bin/python scripts/autofaiss_compare.py --base base.npy --queries queries.npy --memory 128MB --json

``--base`` is an ``(n, d)`` float32 ``.npy`` of unit vectors (``scale_data.catalog_vectors``), ``--queries``
held-out queries (``scale_data.query_vectors``). The script lets ``autofaiss.build_index`` pick and tune the
index (``metric_type="ip"``, the budget from ``--memory``), then measures it on the held-out queries:
recall@10 against an exact ``IndexFlatIP`` (the ground truth is computed here unless ``--gt`` gives an
``(nq, >=10)`` int ``.npy`` of true neighbour rows), and the single-thread p50 latency and QPS of one query
at a time, at the search parameters autofaiss chose. ``--rerank 100,1000`` also reports recall and latency
when the top R candidates are re-scored with the exact vectors (compute only: fetching them from a store is
not counted here). Build time is the wall time of ``build_index``, which includes autofaiss's own
hyper-parameter tuning. The last line of stdout is one JSON object (with ``--json`` it is the only one).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

K = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="(n, d) float32 .npy of unit vectors")
    parser.add_argument("--queries", type=Path, required=True, help="(nq, d) float32 .npy of held-out queries")
    parser.add_argument("--memory", default="128MB", help="autofaiss max_index_memory_usage (e.g. 128MB, 2GB)")
    parser.add_argument("--available", default="8G", help="autofaiss current_memory_available")
    parser.add_argument("--max-query-ms", type=float, default=10.0, help="autofaiss max_index_query_time_ms")
    parser.add_argument("--gt", type=Path, default=None, help="(nq, >=10) .npy of exact neighbour rows")
    parser.add_argument("--timed", type=int, default=200, help="queries timed one at a time, single thread")
    parser.add_argument("--rerank", default="", help="comma-separated R: also re-score the top R exactly")
    parser.add_argument("--threads", type=int, default=2, help="threads for building and ground truth")
    parser.add_argument("--json", action="store_true", help="print only the final JSON line on stdout")
    return parser.parse_args(argv)


def exact_neighbours(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Rows of the true top-K by inner product (multi-threaded exact scan)."""
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    return flat.search(queries, K)[1]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the true top-K rows among the first K found rows."""
    hits = sum(len(np.intersect1d(f[:K], t[:K])) for f, t in zip(found, truth, strict=True))
    return hits / (K * len(truth))


def timed_search(index: faiss.Index, base: np.ndarray, queries: np.ndarray, k: int, rerank: bool) -> list[float]:
    """Seconds per query, one query at a time on one thread (with the exact re-score when ``rerank``)."""
    faiss.omp_set_num_threads(1)
    times = []
    for i in range(len(queries)):
        started = time.perf_counter()
        _, rows = index.search(queries[i : i + 1], k)
        if rerank:
            rows = rows[0][rows[0] >= 0]
            np.argsort(-(base[rows] @ queries[i]))[:K]
        times.append(time.perf_counter() - started)
    return times


def rescored(base: np.ndarray, queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The top-K rows of each candidate list after an exact inner-product re-score."""
    out = np.full((len(queries), K), -1, dtype=np.int64)
    for i, rows in enumerate(candidates):
        rows = rows[rows >= 0]
        top = rows[np.argsort(-(base[rows] @ queries[i]))[:K]]
        out[i, : len(top)] = top
    return out


def latency_figures(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1e3
    return {"p50_ms": round(float(np.median(ms)), 3), "p90_ms": round(float(np.percentile(ms, 90)), 3),
            "qps_1thread": round(1e3 / float(np.mean(ms)), 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from autofaiss import build_index  # imported late: it is slow and only exists in the autofaiss venv

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    base = np.ascontiguousarray(np.load(args.base), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(args.queries), dtype=np.float32)
    faiss.omp_set_num_threads(args.threads)
    truth = np.load(args.gt)[:, :K] if args.gt else exact_neighbours(base, queries)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        index, infos = build_index(
            embeddings=base,
            index_path=str(Path(tmp) / "knn.index"),
            index_infos_path=str(Path(tmp) / "infos.json"),
            save_on_disk=True,
            max_index_memory_usage=args.memory,
            current_memory_available=args.available,
            max_index_query_time_ms=args.max_query_ms,
            min_nearest_neighbors_to_retrieve=K,
            metric_type="ip",
            nb_cores=args.threads,
            verbose=logging.WARNING,
        )
        build_s = time.perf_counter() - started
        index_bytes = (Path(tmp) / "knn.index").stat().st_size if index is not None else 0
    if index is None:
        print(json.dumps({"error": "autofaiss built no index", "memory": args.memory}))
        return 1
    infos = dict(infos or {})
    say(f"autofaiss chose {infos.get('index_key')} ({infos.get('index_param')}) in {build_s:.0f} s")

    faiss.omp_set_num_threads(args.threads)
    _, found = index.search(queries, K)
    timed = queries[: args.timed]
    result: dict[str, object] = {
        "tool": "autofaiss",
        "memory_budget": args.memory,
        "n": len(base),
        "index_key": infos.get("index_key"),
        "index_param": infos.get("index_param"),
        "index_bytes": index_bytes,
        "bytes_per_vector": round(index_bytes / len(base), 1),
        "build_s": round(build_s, 1),
        "recall_at_10": round(recall_at_k(found, truth), 4),
        **latency_figures(timed_search(index, base, timed, K, rerank=False)),
        "autofaiss_infos": {k: v for k, v in infos.items() if k not in ("index_key", "index_param")},
    }
    reranked = []
    for r in [int(x) for x in args.rerank.split(",") if x.strip()]:
        faiss.omp_set_num_threads(args.threads)
        candidates = index.search(queries, r)[1]
        figures = latency_figures(timed_search(index, base, timed, r, rerank=True))
        reranked.append({"R": r, "recall_at_10": round(recall_at_k(rescored(base, queries, candidates), truth), 4),
                         **figures})  # fmt: skip
        say(f"re-rank R={r}: {reranked[-1]}")
    if reranked:
        result["rerank"] = reranked
    say(f"recall@10 {result['recall_at_10']}, p50 {result['p50_ms']} ms, {result['qps_1thread']} QPS")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

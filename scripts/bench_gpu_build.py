#!/usr/bin/env python3
"""FAISS build benchmark, GPU against CPU: the index build path catalens takes when faiss sees a GPU.

``FaissIndex.build`` trains (k-means, PCA, quantizers) and adds on the GPUs when faiss has any
(``faiss.index_cpu_to_all_gpus``), and falls back to the CPU for index types FAISS has no GPU version of
(HNSW). This script builds the same factory over the same vectors twice, each in a child process through
catalens's own ``FaissIndex.create(...).build(...)``:

* ``gpu``: as catalens runs on a machine with a GPU;
* ``cpu``: the same code with ``CUDA_VISIBLE_DEVICES=""``, so faiss sees no GPU (every CPU core used).

For each it reports the build time (training sample, training and adding; vector generation excluded),
whether the GPU was actually used for that index type, and recall@10 of the built index against the exact
answer on held-out queries at a fixed ``nprobe``, so a fast GPU build that is worse is visible.
The vectors are issue 13's generator (``scripts/scale_data.py``, 512-d).

Prints a human summary on stderr and one JSON line last on stdout::

    python scripts/bench_gpu_build.py -n 1000000 --factory "PCAR96,IVF4096,SQ8" --factory "IVF4096,PQ64"
    python scripts/bench_gpu_build.py -n 20000 --factory IVF64,SQ8      # a quick check on any machine
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_data  # noqa: E402

CHUNK = 100_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def exact_top(base: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact top-k by inner product (the vectors are unit length), in blocks to bound memory."""
    top = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 100):
        scores = queries[start : start + 100] @ base.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        top[start : start + 100] = np.take_along_axis(part, order, axis=1)
    return top


def worker(args: argparse.Namespace) -> int:
    """Build one factory in this process and print its measurements as JSON."""
    import faiss

    from catalens.indexer.vectors.faiss_backend import FaissIndex, gpu_count

    base = np.load(args.base)
    queries = scale_data.query_vectors(args.queries, args.seed)
    truth = np.load(args.truth)
    ids = np.arange(len(base), dtype=np.int64)

    def chunks() -> Any:
        for start in range(0, len(base), CHUNK):
            yield ids[start : start + CHUNK], base[start : start + CHUNK]

    index = FaissIndex.create(args.factory, base.shape[1])
    gpus = gpu_count()
    on_gpu = False
    if gpus:  # does FAISS have a GPU version of this index type? (catalens falls back to the CPU if not)
        try:
            faiss.index_cpu_to_all_gpus(index.native)
            on_gpu = True
        except (RuntimeError, AttributeError):
            on_gpu = False
    started = time.perf_counter()
    index.build(chunks, len(base))
    seconds = time.perf_counter() - started
    knob = index.search_knob()
    if knob is not None and knob.name == "nprobe":
        index.configure({"nprobe": args.nprobe})
    found = index.search(queries, 10).ids
    recall = float(np.mean([len(set(found[i]) & set(truth[i])) / 10 for i in range(len(queries))]))
    result = {
        "faiss_gpus": gpus,
        "built_on_gpu": on_gpu,
        "build_seconds": round(seconds, 2),
        "recall_at_10": round(recall, 4),
        "nprobe": args.nprobe if knob is not None and knob.name == "nprobe" else None,
        "count": index.size,
    }
    print(json.dumps(result))
    return 0


def run_child(args: argparse.Namespace, factory: str, base: Path, truth: Path, device: str) -> dict[str, Any]:
    env = dict(os.environ)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    command = [sys.executable, __file__, "--worker", "--factory", factory, "--truth", str(truth)]
    command += ["--base", str(base)]
    command += ["-n", str(args.n), "--queries", str(args.queries), "--seed", str(args.seed)]
    command += ["--nprobe", str(args.nprobe)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000, help="vectors (default 1,000,000)")
    parser.add_argument("--factory", action="append", help="FAISS factory string; repeat for several")
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries for recall@10 (default 1000)")
    parser.add_argument("--nprobe", type=int, default=64, help="lists probed when measuring recall (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--devices", default="gpu,cpu", help="which builds to run (default gpu,cpu)")
    parser.add_argument("--out", type=Path, default=Path("/tmp"), help="where the exact answers are kept")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--truth", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.factory = args.factory[0]
        return worker(args)

    factories = args.factory or ["PCAR96,IVF4096,SQ8", "IVF4096,PQ64"]
    log(f"{args.n:,} vectors and the exact answers for {args.queries} held-out queries ...")
    base_file = args.out / f"gpu-build-base-{args.n}-{args.seed}.npy"
    truth_file = args.out / f"gpu-build-truth-{args.n}-{args.queries}-{args.seed}.npy"
    if not base_file.exists() or not truth_file.exists():
        base = scale_data.catalog_vectors(args.n, args.seed)
        np.save(base_file, base)
        np.save(truth_file, exact_top(base, scale_data.query_vectors(args.queries, args.seed)))
        del base
    result: dict[str, Any] = {"n": args.n, "dim": scale_data.DIM, "nprobe": args.nprobe, "factories": []}
    for factory in factories:
        entry: dict[str, Any] = {"factory": factory}
        for device in [d.strip() for d in args.devices.split(",") if d.strip()]:
            log(f"building {factory} ({device}) ...")
            entry[device] = run_child(args, factory, base_file, truth_file, device)
            log(f"  {json.dumps(entry[device])}")
        gpu, cpu = entry.get("gpu", {}), entry.get("cpu", {})
        if gpu.get("build_seconds") and cpu.get("build_seconds"):
            entry["speedup"] = round(cpu["build_seconds"] / gpu["build_seconds"], 1)
        result["factories"].append(entry)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

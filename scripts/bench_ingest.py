#!/usr/bin/env python3
"""Ingest benchmark: does the indexing pipeline keep the model busy?

Generates N photo-like JPEGs, then measures in one run:

* ``model_images_per_s``: the model's forward pass alone on the same images, already decoded and
  preprocessed, with the same batch size;
* ``pipeline_images_per_s``: the indexing pipeline end to end over the files (read, hash, decode,
  preprocess in the worker pool, embed, write to SQLite), with the same model instance, excluding model
  loading and the final index build;
* ``ratio`` = pipeline / model. 1.0 means decoding and storage are completely hidden behind inference;
* ``end_to_end_images_per_s``: images over the whole ``index_catalog`` call, index build included (the
  figure the catalens-mini target of 100 images/s on 2 cores is about:
  ``scripts/bench_ingest.py --model catalens-mini -n 1000``).

``--writer-ceiling N`` measures instead what bounds any number of embedding workers, local or on a cluster: the
store's one writer. N synthetic items (catalog metadata from ``scripts/scale_data.py`` and 512-d unit vectors,
made beforehand) are committed through ``CatalogStore.write_batch`` in batches of ``--batch-size`` (default 256,
the pipeline's batch on a GPU), each batch one transaction with its full-text rows, as results arriving faster
than any model would be; ``writer_items_per_s`` is how many items per second one writer commits.

``--ray`` measures instead indexing through a local Ray against the local pipeline on this machine: the same
model spec, images and batch size, one store per run, runs interleaved (local, Ray, local, Ray, ...). One local
Ray is started for the whole benchmark (``ray_start_s``, not counted in any run); each Ray run still starts
its actor pool and loads the model in every actor, the fixed cost a small job pays (``first_commit_s``: from
the start of the embedding phase to the first committed batch; ``commit_offsets_s_last_run`` shows whether
results stream in or arrive together). Per mode it reports the median images/s over the report's
``embed_seconds`` and over the whole ``index_catalog`` call, the rate from the first commit to the last, Ray's
per-node figures and pool shape, the model's forward pass alone here (``all_threads``, and ``one_thread``: a
CPU actor's share), and the largest difference between the two modes' vectors (``max_abs_vector_diff``, same
items expected, to 1e-5). Its defaults: 1,000 images, catalens-mini, 2 repeats:
``scripts/bench_ingest.py --ray -n 1000 --model catalens-mini``.

Shared machines are noisy (the same forward pass varies by 30 % from minute to minute here), so the two
measurements are interleaved ``--repeats`` times (model, pipeline, model, pipeline, ..., model) and the
ratio is taken between their medians.

Prints a human summary, then one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalens.indexer.images import decode_image  # noqa: E402
from catalens.indexer.pipeline import IndexOptions, IndexReport, default_workers, index_catalog  # noqa: E402
from catalens.models import LoadOptions, load_model  # noqa: E402


def make_images(folder: Path, count: int, size: tuple[int, int], seed: int) -> list[Path]:
    """Smooth colour gradients with noise and shapes: JPEGs that cost about as much to decode as photos."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for i in range(count):
        base = rng.uniform(0, 255, size=3)
        slope = rng.uniform(-0.3, 0.3, size=(3, 2))
        pixels = np.stack([base[c] + slope[c, 0] * xx + slope[c, 1] * yy for c in range(3)], axis=-1)
        pixels += rng.normal(0, 12, size=pixels.shape)
        x0, y0 = rng.integers(0, width // 2), rng.integers(0, height // 2)
        pixels[y0 : y0 + height // 3, x0 : x0 + width // 3] = rng.uniform(0, 255, size=3)
        path = folder / f"product-{i:05d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def time_model(model: object, pixels: np.ndarray, batch_size: int) -> float:
    """Images per second of the forward pass alone."""
    started = time.perf_counter()
    for start in range(0, len(pixels), batch_size):
        model.encode_pixels(pixels[start : start + batch_size])  # type: ignore[attr-defined]
    return len(pixels) / (time.perf_counter() - started)


def writer_ceiling(n: int, batch_size: int, seed: int) -> dict[str, object]:
    """Items per second the store's one writer commits when results arrive faster than any model."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scale_data import DIM, STORE_MODEL, Generator, item_record

    from catalens.indexer.store import CatalogStore, EmbeddedItem

    rng = np.random.default_rng([seed, 99])
    items = []
    for first, clusters, vectors in Generator.make(seed).stream(n):
        items += [
            EmbeddedItem(item_record(first + j, int(c), rng), f"{first + j:032x}", 800, 800, vectors[j])
            for j, c in enumerate(clusters)
        ]
    with tempfile.TemporaryDirectory(prefix="catalens-writer-") as tmp:
        store = CatalogStore.create(Path(tmp) / "store", STORE_MODEL, DIM, "Flat")
        try:
            with store.writer_lock():
                started = time.perf_counter()
                for start in range(0, n, batch_size):
                    store.write_batch(embedded=items[start : start + batch_size])
                    if (start // batch_size) % 200 == 0:
                        print(f"  committed {start:,} of {n:,}", file=sys.stderr, flush=True)
                seconds = time.perf_counter() - started
            size = store.size_on_disk()
        finally:
            store.close()
    rate = n / seconds
    print(f"one writer commits {rate:,.0f} items/s ({n:,} items, batches of {batch_size})", file=sys.stderr)
    return {
        "mode": "writer_ceiling",
        "items": n,
        "batch_size": batch_size,
        "dim": DIM,
        "seconds": round(seconds, 2),
        "writer_items_per_s": round(rate, 1),
        "store_bytes_per_item": round(size / n),
    }


class CommitClock:
    """A progress sink that notes when the embedding phase starts and when each batch is committed (the
    pipeline advances its sink once per committed batch), so a run's fixed start-up cost and its steady rate
    can be told apart."""

    def __init__(self) -> None:
        self.phase_started: float | None = None
        self.commits: list[tuple[float, int]] = []
        self._embedding = False

    def start(self, phase: str, total: int | None) -> None:
        self._embedding = phase.startswith("embedding")
        if self._embedding:
            self.phase_started, self.commits = time.perf_counter(), []

    def advance(self, n: int = 1) -> None:
        if self._embedding:
            self.commits.append((time.perf_counter(), n))

    def finish(self) -> None:
        self._embedding = False

    def note(self, message: str) -> None:
        print(f"  note: {message}", file=sys.stderr)

    def figures(self) -> tuple[float | None, float | None]:
        """Seconds to the first committed batch, and items/s from the first commit to the last."""
        if self.phase_started is None or not self.commits:
            return None, None
        (first, first_n), last = self.commits[0], self.commits[-1][0]
        rest = sum(n for _, n in self.commits) - first_n
        return round(first - self.phase_started, 2), (rest / (last - first) if last > first else None)

    def offsets(self, most: int = 32) -> list[float]:
        """Seconds from the phase's start to each commit (the first ``most``): shows whether results stream."""
        start = self.phase_started or 0.0
        return [round(t - start, 2) for t, _ in self.commits[:most]]


def store_vectors(path: Path) -> dict[str, np.ndarray]:
    """Every item's vector in a store, by item id."""
    from catalens.indexer.store import CatalogStore

    found: dict[str, np.ndarray] = {}
    with CatalogStore.open(path, read_only=True) as store:
        for keys, vectors in store.iter_vectors():
            items = store.get_items(int(k) for k in keys)
            found.update((items[int(k)].id, v) for k, v in zip(keys, vectors, strict=True))
    return found


def vector_difference(one: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> float:
    """The largest absolute difference between two stores' vectors (infinite when their items differ)."""
    if one.keys() != other.keys() or not one:
        return float("inf")
    return max(float(np.max(np.abs(one[i] - other[i]))) for i in one)


def model_alone(model: object, pixels: np.ndarray, batch_size: int, threads: int) -> dict[str, float]:
    """The forward pass alone with ``threads`` torch threads and with one (a CPU actor's share)."""
    import torch

    rates = {}
    for key, count in (("all_threads", threads), ("one_thread", 1)):
        torch.set_num_threads(count)
        rates[key] = time_model(model, pixels, batch_size)
    torch.set_num_threads(threads)
    return rates


def index_keeping_threads(*args: Any, **kwargs: Any) -> IndexReport:
    """``index_catalog``, then this thread's torch threads put back as they were.

    The index build's recall tuning searches FAISS with one OpenMP thread (``threads=1``), a per-thread
    setting torch shares, so after a run that publishes an index the calling thread's torch is left on one
    thread; a second run (or a model-only timing) in the same process would otherwise be measured on half
    of these two cores.
    """
    import torch

    threads = torch.get_num_threads()
    try:
        return index_catalog(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


@dataclass
class RunFigures:
    """One ``index_catalog`` call: its report, its wall time and its commit times."""

    report: IndexReport
    call_seconds: float
    clock: CommitClock


def ray_benchmark(args: argparse.Namespace, size: tuple[int, int]) -> dict[str, object]:
    """Index the same images locally and through one local Ray, interleaved; see the module docstring."""
    import ray
    import torch

    from catalens.indexer.distributed import RayOptions

    runs: dict[str, list[RunFigures]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory(prefix="catalens-bench-ray-") as tmp:
        folder = Path(tmp) / "catalog"
        folder.mkdir()
        paths = make_images(folder, args.images, size, args.seed)
        model = load_model(args.model, LoadOptions(device="cpu"))
        batch_size = args.batch_size or model.default_batch_size
        pixels = np.stack(
            [model.preprocess(decode_image(p.read_bytes(), draft_size=model.image_size).image) for p in paths]
        )
        model.encode_pixels(pixels[:batch_size])  # warm-up: first-call allocations are not throughput
        threads = torch.get_num_threads()
        alone = [model_alone(model, pixels, batch_size, threads)]
        started = time.perf_counter()
        # address="local": a new Ray of our own, even when another Ray runs on this machine (ray.init would join it).
        ray.init(
            address="local",
            num_cpus=args.ray_num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
        ray_start = time.perf_counter() - started
        pool = RayOptions(actors=args.ray_actors, cpus_per_actor=args.ray_cpus_per_actor, num_cpus=args.ray_num_cpus)
        local = IndexOptions(model=args.model, batch_size=batch_size, workers=args.workers, device="cpu")
        modes = {"local": local, "ray": replace(local, ray=pool)}
        differences = []
        try:
            for repeat in range(args.repeats):
                vectors = {}
                for mode, options in modes.items():
                    clock, store = CommitClock(), Path(tmp) / f"store-{mode}-{repeat}"
                    started = time.perf_counter()
                    # Both get the instance loaded here: its spec is what Ray's actors load, once per run.
                    report = index_keeping_threads(folder, store, options, progress=clock, encoder=model)
                    seconds = time.perf_counter() - started
                    runs[mode].append(RunFigures(report, seconds, clock))
                    vectors[mode] = store_vectors(store)
                    shutil.rmtree(store)
                    print(
                        f"  {mode} run {repeat + 1}: {report.images_per_second:.1f} img/s embedding, "
                        f"{args.images / seconds:.1f} img/s whole call, first commit after {clock.figures()[0]} s",
                        file=sys.stderr,
                        flush=True,
                    )
                differences.append(vector_difference(vectors["local"], vectors["ray"]))
                alone.append(model_alone(model, pixels, batch_size, threads))
        finally:
            ray.shutdown()
    shape = {"cpus_per_actor": pool.cpus_per_actor, "read_cpus": pool.read_cpus, "ray_num_cpus": args.ray_num_cpus}
    return ray_result(args, size, batch_size, runs, alone, ray_start, shape, max(differences))


def mode_figures(images: int, runs: list[RunFigures]) -> dict[str, Any]:
    """One mode's medians over its runs."""

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(float(np.median(known)), 2) if known else None

    return {
        "indexed": [r.report.indexed_total for r in runs],
        "failed": max(len(r.report.failed) for r in runs),
        "embed_images_per_s": median([r.report.images_per_second for r in runs]),
        "call_images_per_s": median([images / r.call_seconds for r in runs]),
        "steady_images_per_s": median([r.clock.figures()[1] for r in runs]),
        "first_commit_s": median([r.clock.figures()[0] for r in runs]),
        "commits": [len(r.clock.commits) for r in runs],
        "commit_offsets_s_last_run": runs[-1].clock.offsets(),
        "embed_seconds_runs": [round(r.report.embed_seconds, 2) for r in runs],
        "call_seconds_runs": [round(r.call_seconds, 2) for r in runs],
    }


def ray_result(
    args: argparse.Namespace,
    size: tuple[int, int],
    batch_size: int,
    runs: dict[str, list[RunFigures]],
    alone: list[dict[str, float]],
    ray_start: float,
    shape: dict[str, Any],
    difference: float,
) -> dict[str, object]:
    """The JSON figures of :func:`ray_benchmark`; prints its human summary."""
    local, on_ray = mode_figures(args.images, runs["local"]), mode_figures(args.images, runs["ray"])
    summary = runs["ray"][-1].report.ray or {}
    on_ray["pool"] = {"actors": summary.get("actors"), "gpus_per_actor": summary.get("gpus_per_actor"), **shape}
    on_ray["nodes"] = summary.get("nodes", [])
    model_rates = {k: round(float(np.median([a[k] for a in alone])), 2) for k in alone[0]}
    result: dict[str, object] = {
        "mode": "ray",
        "images": args.images,
        "image_size": f"{size[0]}x{size[1]}",
        "model": args.model,
        "batch_size": batch_size,
        "workers": args.workers,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "ray_start_s": round(ray_start, 2),
        "local": local,
        "ray": on_ray,
        "ratio_embed": round(on_ray["embed_images_per_s"] / local["embed_images_per_s"], 3),
        "ratio_call": round(on_ray["call_images_per_s"] / local["call_images_per_s"], 3),
        "model_alone_images_per_s": model_rates,
        "same_items": len(set(local["indexed"] + on_ray["indexed"])) == 1,
        "max_abs_vector_diff": difference if np.isfinite(difference) else None,
    }
    nodes = "; ".join(
        f"{n['host']} read {n['read']}, embedded {n['processed']}, model {n['model_items_per_second']} img/s"
        for n in on_ray["nodes"]
    )
    print(
        f"local {local['embed_images_per_s']} img/s embedding ({local['call_images_per_s']} over the whole call), "
        f"Ray {on_ray['embed_images_per_s']} ({on_ray['call_images_per_s']}): ratio {result['ratio_embed']} "
        f"({result['ratio_call']})\n"
        f"Ray start {result['ray_start_s']} s (once); first commit after {on_ray['first_commit_s']} s on Ray, "
        f"{local['first_commit_s']} s locally; after it {on_ray['steady_images_per_s']} img/s on Ray, "
        f"{local['steady_images_per_s']} locally\n"
        f"pool {on_ray['pool']}; per node: {nodes}; model alone here {model_rates} img/s\n"
        f"same items: {result['same_items']}, largest vector difference {result['max_abs_vector_diff']} "
        f"({args.images} {size[0]}x{size[1]} JPEGs, {args.model}, batch {batch_size})",
        file=sys.stderr,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--images", type=int, help="default: 512, or 1000 with --ray")
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--model", help="default: ViT-B-32:random, or catalens-mini with --ray")
    parser.add_argument("--batch-size", type=int, help="default: the model's default for the device")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, help="pipeline runs, interleaved with model-only runs (default 3; 2 with --ray)"
    )
    parser.add_argument(
        "--writer-ceiling", type=int, metavar="N", help="measure the store's one writer on N precomputed items instead"
    )
    parser.add_argument("--ray", action="store_true", help="compare indexing through a local Ray with a local run")
    parser.add_argument("--ray-actors", type=int, help="model replicas (default: one per spare CPU)")
    parser.add_argument("--ray-cpus-per-actor", type=float, default=1.0)
    parser.add_argument("--ray-num-cpus", type=int, default=os.cpu_count(), help="CPUs the local Ray may use")
    args = parser.parse_args()
    if args.writer_ceiling:
        print(json.dumps(writer_ceiling(args.writer_ceiling, args.batch_size or 256, args.seed)))
        return 0
    args.images = args.images or (1000 if args.ray else 512)
    args.model = args.model or ("catalens-mini" if args.ray else "ViT-B-32:random")
    args.repeats = args.repeats or (2 if args.ray else 3)
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.ray:
        print(json.dumps(ray_benchmark(args, (width, height))))
        return 0

    with tempfile.TemporaryDirectory(prefix="catalens-bench-") as tmp:
        folder = Path(tmp) / "catalog"
        folder.mkdir()
        paths = make_images(folder, args.images, (width, height), args.seed)
        model = load_model(args.model, LoadOptions(device=args.device))
        args.batch_size = args.batch_size or model.default_batch_size
        pixels = np.stack(
            [model.preprocess(decode_image(p.read_bytes(), draft_size=model.image_size).image) for p in paths]
        )
        model.encode_pixels(pixels[: args.batch_size])  # warm-up: first-call allocations are not throughput
        options = IndexOptions(model=args.model, batch_size=args.batch_size, workers=args.workers, device=args.device)
        model_runs = [time_model(model, pixels, args.batch_size)]
        pipeline_runs, total_seconds, failed = [], [], 0
        for repeat in range(args.repeats):
            started = time.perf_counter()
            # The pipeline gets the very model instance timed alone, so the ratio compares like with like.
            report = index_keeping_threads(folder, Path(tmp) / f"store-{repeat}", options, encoder=model)
            total_seconds.append(time.perf_counter() - started)
            pipeline_runs.append(report.images_per_second)
            failed = max(failed, len(report.failed))
            model_runs.append(time_model(model, pixels, args.batch_size))

    model_ips = float(np.median(model_runs))
    pipeline_ips = float(np.median(pipeline_runs))
    result = {
        "images": args.images,
        "image_size": f"{width}x{height}",
        "model": args.model,
        "device": model.device,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "model_images_per_s": round(model_ips, 2),
        "model_images_per_s_runs": [round(v, 2) for v in model_runs],
        "pipeline_images_per_s": round(pipeline_ips, 2),
        "pipeline_images_per_s_runs": [round(v, 2) for v in pipeline_runs],
        "ratio": round(pipeline_ips / model_ips, 3),
        "run_seconds_including_index_build": [round(v, 2) for v in total_seconds],
        "end_to_end_images_per_s": round(args.images / float(np.median(total_seconds)), 2),
        "failed": failed,
    }
    print(
        f"model alone {model_ips:.1f} img/s, pipeline {pipeline_ips:.1f} img/s, ratio {result['ratio']:.2f}, "
        f"end to end {result['end_to_end_images_per_s']:.1f} img/s "
        f"({args.images} {width}x{height} JPEGs, {args.model}, batch {args.batch_size}, {args.workers} workers)",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

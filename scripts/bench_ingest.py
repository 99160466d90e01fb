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

Shared machines are noisy (the same forward pass varies by 30 % from minute to minute here), so the two
measurements are interleaved ``--repeats`` times (model, pipeline, model, pipeline, ..., model) and the
ratio is taken between their medians.

Prints a human summary, then one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalens.indexer.images import decode_image  # noqa: E402
from catalens.indexer.pipeline import IndexOptions, default_workers, index_catalog  # noqa: E402
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--images", type=int, default=512)
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--model", default="ViT-B-32:random")
    parser.add_argument("--batch-size", type=int, help="default: the model's default for the device")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="pipeline runs, interleaved with model-only runs")
    parser.add_argument(
        "--writer-ceiling", type=int, metavar="N", help="measure the store's one writer on N precomputed items instead"
    )
    args = parser.parse_args()
    if args.writer_ceiling:
        print(json.dumps(writer_ceiling(args.writer_ceiling, args.batch_size or 256, args.seed)))
        return 0
    width, height = (int(v) for v in args.size.lower().split("x"))

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
            report = index_catalog(folder, Path(tmp) / f"store-{repeat}", options, encoder=model)
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

#!/usr/bin/env python
"""OCR benchmark: which engine reads the brands printed on product images, how many false words, how fast.

    .venv/bin/python scripts/bench_ocr.py --n 60 --no-text 20
    .venv/bin/python scripts/bench_ocr.py --catalog /tmp/text-catalog     # made by make_text_catalog.py

Reads every image of a text catalog made by ``scripts/make_text_catalog.py`` (generated into a temporary
directory unless ``--catalog`` is given) and a set of images without any text (plain products, gradients,
noise textures), with each engine in turn per image, so that drifting machine load affects all alike.
Engines run with ``min_confidence=0`` and the confidence threshold is applied afterwards, so one run
scores several thresholds. Per engine:

* ``brand_read``: the fraction of items whose brand is one of the recognised words (case-insensitive,
  surrounding punctuation ignored) — what a lexical search for the brand needs;
* ``brand_in_text``: the fraction whose brand appears anywhere in the recognised text with spaces
  removed (the brand was read but perhaps glued to a neighbouring word);
* ``model_read``: the same as ``brand_read`` for model numbers ("XR-2040"), over the items that have one;
* ``false_words_per_image`` and ``images_with_false_words``: words at or above the threshold read in
  the text-free images;
* ``mean_s``, ``p95_s`` and ``max_s``: seconds per image (all images; ``read`` only, after one warm-up image), and
  ``load_s`` for loading the engine.

The headline numbers use the default threshold, ``OcrOptions().min_confidence``; ``thresholds`` repeats
the quality numbers for each ``--thresholds`` value. Prints a table on stderr, then one JSON line last on
stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_text_catalog  # noqa: E402

from catalens.models.ocr import OcrEngine, OcrOptions, OcrResult, list_ocr_engines, load_ocr  # noqa: E402

PUNCTUATION = ".,:;!?'\"()[]{}*_"


@dataclass(frozen=True)
class Truth:
    id: str
    image: Path
    brand: str
    model: str | None


@dataclass
class Run:
    """What one engine read and how long it took."""

    engine: str
    load_s: float
    seconds: list[float] = field(default_factory=list)
    items: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # id -> (word, confidence)
    no_text: list[list[tuple[str, float]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def load_truth(catalog: Path) -> list[Truth]:
    rows = [json.loads(line) for line in (catalog / "printed.jsonl").read_text().splitlines() if line.strip()]
    return [Truth(r["id"], catalog / "images" / f"{r['id']}.jpg", r["brand"], r.get("model")) for r in rows]


def words_of(result: OcrResult) -> list[tuple[str, float]]:
    return [(w.text, w.confidence) for w in result.words]


def normal(word: str) -> str:
    return word.strip(PUNCTUATION).lower()


def read(engine: OcrEngine, path: Path, run: Run) -> list[tuple[str, float]] | None:
    with Image.open(path) as img:
        image = img.convert("RGB")
    start = time.perf_counter()
    try:
        result = engine.read(image)
    except Exception as e:  # a failure is scored as reading nothing, and reported
        run.errors.append(f"{path.name}: {e}")
        return None
    finally:
        run.seconds.append(time.perf_counter() - start)
    return words_of(result)


def score(run: Run, truth: list[Truth], threshold: float) -> dict[str, Any]:
    brand_hits = brand_loose = model_hits = models = 0
    misses = []
    for item in truth:
        words = [w for w, c in run.items.get(item.id, []) if c >= threshold]
        seen = {normal(w) for w in words}
        glued = "".join(words).lower()
        brand_hits += item.brand.lower() in seen
        brand_loose += item.brand.lower() in glued
        if item.brand.lower() not in seen:
            misses.append(f"{item.id} {item.brand!r}: read {' '.join(words)!r}")
        if item.model:
            models += 1
            model_hits += item.model.lower() in seen
    false_words = [sum(c >= threshold for _, c in words) for words in run.no_text]
    n = max(len(truth), 1)
    return {
        "threshold": threshold,
        "brand_read": round(brand_hits / n, 4),
        "brand_in_text": round(brand_loose / n, 4),
        "model_read": round(model_hits / models, 4) if models else None,
        "false_words_per_image": round(statistics.fmean(false_words), 4) if false_words else None,
        "images_with_false_words": sum(f > 0 for f in false_words),
        "misses": misses,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def bench(
    catalog: Path, no_text: list[Path], engines: list[str], threads: int, thresholds: list[float]
) -> dict[str, Any]:
    truth = load_truth(catalog)
    default = OcrOptions().min_confidence
    options = OcrOptions(min_confidence=0.0, num_threads=threads)
    loaded: dict[str, OcrEngine] = {}
    runs: dict[str, Run] = {}
    for name in engines:
        start = time.perf_counter()
        loaded[name] = load_ocr(name, options)
        runs[name] = Run(name, time.perf_counter() - start)
        with Image.open(truth[0].image) as img:
            loaded[name].read(img.convert("RGB"))  # warm-up: first-call allocations are not per-image cost
    for i, item in enumerate(truth):
        for name in engines:
            runs[name].items[item.id] = read(loaded[name], item.image, runs[name]) or []
        if sys.stderr.isatty():
            print(f"\r{i + 1}/{len(truth)} catalog images", end="", file=sys.stderr, flush=True)
    for path in no_text:
        for name in engines:
            runs[name].no_text.append(read(loaded[name], path, runs[name]) or [])
    if sys.stderr.isatty():
        print(file=sys.stderr)
    results = {}
    for name, run in runs.items():
        headline = score(run, truth, default)
        results[name] = {
            **{k: v for k, v in headline.items() if k != "misses"},
            "mean_s": round(statistics.fmean(run.seconds), 4),
            "p95_s": round(percentile(run.seconds, 0.95), 4),
            "max_s": round(max(run.seconds), 4),
            "load_s": round(run.load_s, 3),
            "errors": len(run.errors),
            "misses": headline["misses"][:10],
            "false_words": sorted({w for words in run.no_text for w, c in words if c >= default})[:20],
            "thresholds": [
                {k: v for k, v in score(run, truth, t).items() if k != "misses"} for t in sorted(set(thresholds))
            ],
        }
    return {
        "catalog": str(catalog),
        "items": len(truth),
        "items_with_model": sum(t.model is not None for t in truth),
        "no_text_images": len(no_text),
        "threads": threads,
        "default_threshold": default,
        "engines": results,
    }


def table(result: dict[str, Any]) -> str:
    head = f"{'engine':<10} {'brand':>6} {'in text':>8} {'model':>6} {'false/img':>9} {'mean s':>7} {'p95 s':>6}"
    lines = [
        f"{result['items']} items ({result['items_with_model']} with a model number), "
        f"{result['no_text_images']} text-free images, threshold {result['default_threshold']}",
        head,
    ]
    for name, r in result["engines"].items():
        model = "-" if r["model_read"] is None else f"{r['model_read']:.2f}"
        false = "-" if r["false_words_per_image"] is None else f"{r['false_words_per_image']:.2f}"
        lines.append(
            f"{name:<10} {r['brand_read']:>6.2f} {r['brand_in_text']:>8.2f} {model:>6} {false:>9} "
            f"{r['mean_s']:>7.3f} {r['p95_s']:>6.3f}"
        )
    lines.append("by threshold (brand / model / false words per text-free image):")
    for name, r in result["engines"].items():
        cells = []
        for t in r["thresholds"]:
            model_rate, false_rate = t["model_read"] or 0.0, t["false_words_per_image"] or 0.0
            cells.append(f"{t['threshold']:.2f}: {t['brand_read']:.2f}/{model_rate:.2f}/{false_rate:.2f}")
        lines.append(f"  {name:<10} " + "  ".join(cells))
    for name, r in result["engines"].items():
        if r["misses"]:
            lines.append(f"{name} missed brands (first {len(r['misses'])}):")
            lines += [f"  {m}" for m in r["misses"]]
        if r["false_words"]:
            lines.append(f"{name} false words: {', '.join(r['false_words'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, help="a directory made by make_text_catalog.py (with printed.jsonl)")
    parser.add_argument("--n", type=int, default=60, help="items to generate when --catalog is not given")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", type=int, default=480, help="image side when generating")
    parser.add_argument("--no-text", type=int, default=20, help="text-free images when the catalog has none")
    parser.add_argument("--engines", default=",".join(list_ocr_engines()), help="comma-separated engine specs")
    parser.add_argument("--threads", type=int, default=2, help="threads per engine (OcrOptions.num_threads)")
    parser.add_argument("--thresholds", default="0.3,0.5,0.6,0.7,0.8,0.9")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    with tempfile.TemporaryDirectory(prefix="catalens-ocr-") as tmp:
        catalog = args.catalog
        if catalog is None:
            catalog = Path(tmp) / "catalog"
            make_text_catalog.generate(catalog, args.n, args.seed, args.size, args.no_text)
        no_text = sorted((catalog / "notext").glob("*.jpg"))
        if not no_text and args.no_text:
            extra = Path(tmp) / "extra"
            make_text_catalog.generate(extra, 1, args.seed, args.size, args.no_text)
            no_text = sorted((extra / "notext").glob("*.jpg"))
        result = bench(catalog, no_text, engines, args.threads, thresholds)
    print(table(result), file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

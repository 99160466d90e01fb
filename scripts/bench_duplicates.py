#!/usr/bin/env python3
"""Near-duplicate grouping measured: precision and recall of ``find_duplicates`` on generated copies.

Two image sets, each indexed with the shipped offline model ``catalens-mini`` (the model a store gets here):

* ``demo``: the demo catalog's product shots (``scripts/data/demo_catalog``: OpenMoji icons on their category's
  background with a floor shadow), so the unrelated images are look-alikes by construction;
* ``clipart``: openclipart PNGs (``/usr/share/openclipart/png``, Debian's ``openclipart-png``), composited on
  white and scaled to at most 400 px, bases and unrelated images drawn evenly from the same 8 folders
  (:data:`CLIPART_CATEGORIES`), **only drawings catalens-mini never saw** (``scripts/clipart_unseen.py``): those of
  the held-out authors (``clipart_data.choose_held_out``), because copies of a training picture may sit closer
  together than copies of a new one. Drawings are distinct by content and counted in the folder of their real
  file. The pool is smaller than the default sizes ask for (184 drawings for 500: 12 in plants to 39 in people):
  a folder gives what it has, never a training picture, the bases are drawn first and the unrelated images get
  the rest; the JSON's ``sets.clipart.pool`` records, per folder, how many were available and used.
  ``--clipart-pool unseen`` adds the drawings the training split drops (road signs and five card decks here:
  catalens-mini puts warning triangles, and cards of one value or neighbouring values, above 0.95 of each other,
  and those are scored as wrong pairs, so precision at 0.95 falls below 0.4);
  ``--clipart-pool train`` takes the training split, only to measure how much training on the pictures changes
  the figures (``outside_training_split: false``).

Every base image gets one copy of each kind in :data:`~catalens.indexer.duplicates.variants.VARIANT_KINDS`
(JPEG q70, half size, 5 % crop, small watermark, mirror) and some bases a byte-identical copy; the other images of
the set are unrelated. Grouping is scored pairwise: the true pairs are the pairs within a base's family (the base
and its copies), the found pairs those within a found group. Per threshold: precision, recall, F1 and F0.5 overall,
the recall without mirrored copies (the model is not mirror-invariant: no threshold catches most of them) and,
per copy kind, the recall of (base, copy) pairs and the precision of found pairs involving such a copy. Also the
cosine of each copy kind to its base and of each base to its nearest unrelated image, and the recommended default
threshold: the best F0.5 over both sets' pairs together, the higher threshold on a tie. F0.5 weighs precision twice
as much as recall, because a wrong group hides a distinct product from every results page that dedupes, while a
missed copy only shows a picture twice. ``--scale STORE`` also times the finder on an
existing store (e.g. ``scripts/scale_data.py --store /tmp/dup-100k -n 100000`` then ``catalens reindex``).

    .venv/bin/python scripts/bench_duplicates.py [--scale /tmp/dup-100k]

Progress goes to stderr; the final line on stdout is one JSON document.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from catalens.indexer.duplicates import find_duplicates  # noqa: E402
from catalens.indexer.duplicates.variants import VARIANT_KINDS, make_variant  # noqa: E402
from catalens.indexer.store import CatalogStore  # noqa: E402
from catalens.search.cli import main as catalens  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
import clipart_unseen  # noqa: E402

DEMO = REPO / "scripts" / "data" / "demo_catalog"
CLIPART = clipart_unseen.clipart_data.PNG_ROOT
CLIPART_CATEGORIES = ("animals", "food", "people", "transportation", "tools", "office", "recreation", "plants")
THRESHOLDS = (0.90, 0.93, 0.95, 0.97, 0.99)
MODEL = "catalens-mini"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def demo_images(bases: int, rng: random.Random) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(bases, unrelated) as (category, path): every demo product shot, ``bases`` of them drawn as bases."""
    with (DEMO / "catalog.csv").open(newline="") as f:
        rows = [(row["category"], DEMO / row["image"]) for row in csv.DictReader(f)]
    rng.shuffle(rows)
    return rows[:bases], rows[bases:]


def clipart_images(
    bases: int, unrelated: int, rng: random.Random, pool: str, cache: Path, work: Path
) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]], dict[str, str], dict[str, Any]]:
    """(bases, unrelated) drawn evenly from :data:`CLIPART_CATEGORIES` out of ``pool``, distinct by content.

    A PNG too large to decode is drawn from its SVG into ``work`` (:func:`clipart_unseen.decodable`).

    Returns:
        The bases and the unrelated images as (category, path), each path's origin, and the pool report.
    """
    catalogue = clipart_unseen.load_catalogue(cache)
    per = -(-(bases + unrelated) // len(CLIPART_CATEGORIES))
    picked_by, counts = clipart_unseen.draw(catalogue, list(CLIPART_CATEGORIES), per, pool, rng)
    picked: list[tuple[str, Path]] = []
    origins: dict[str, str] = {}
    for category, drawings in picked_by.items():
        for drawing in drawings:
            path = clipart_unseen.decodable(drawing.path, work / "from-svg")
            picked.append((category, path))
            origins[str(path)] = drawing.origin
    rng.shuffle(picked)
    report = clipart_unseen.pool_report(pool, counts, catalogue)
    report["requested"] = {"bases": bases, "unrelated": unrelated}
    per_folder = ", ".join(f"{c} {sum(n['used'].values())}" for c, n in counts.items())
    log(f"[clipart] {report['used']} drawings ({pool} pool, {report['available']} available) for {bases} bases and "
        f"{unrelated} unrelated: {per_folder}")  # fmt: skip
    return picked[:bases], picked[bases : bases + unrelated], origins, report


def as_photo(path: Path) -> Image.Image:
    """The picture as an RGB image at most 400 px wide or high (transparency composited on white)."""
    with Image.open(path) as opened:
        image = opened.convert("RGBA")
    image.thumbnail((400, 400))
    canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(canvas, image).convert("RGB")


def build_catalog(
    folder: Path, bases: list[tuple[str, Path]], unrelated: list[tuple[str, Path]], copies: int, seed: int
) -> Path:
    """Write the images and ``catalog.csv`` (id, image, category); ids: ``bN``, ``bN~kind``, ``bN~copy``, ``xN``."""
    images = folder / "images"
    images.mkdir(parents=True)
    rows: list[tuple[str, str, str]] = []

    def save(item_id: str, image: Image.Image, fmt: str, category: str) -> Path:
        path = images / f"{item_id.replace('~', '_')}.{'jpg' if fmt == 'JPEG' else 'png'}"
        image.save(path, fmt, **({"quality": 70} if fmt == "JPEG" else {}))
        rows.append((item_id, str(path), category))
        return path

    for n, (category, source) in enumerate(bases):
        photo = as_photo(source)
        base = save(f"b{n}", photo, "PNG", category)
        for k, kind in enumerate(VARIANT_KINDS):
            variant, fmt = make_variant(photo, kind, seed=seed * 1000 + n * 10 + k)
            save(f"b{n}~{kind}", variant, fmt, category)
        if n < copies:
            copy = images / f"b{n}_copy.png"
            shutil.copyfile(base, copy)
            rows.append((f"b{n}~copy", str(copy), category))
    for n, (category, source) in enumerate(unrelated):
        save(f"x{n}", as_photo(source), "PNG", category)
    manifest = folder / "catalog.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "image", "category"])
        writer.writerows(rows)
    return manifest


def pairs_within(groups: Iterable[Iterable[str]]) -> set[tuple[str, str]]:
    return {(a, b) if a < b else (b, a) for group in groups for a, b in itertools.combinations(list(group), 2)}


def family(item_id: str) -> str:
    return item_id.split("~")[0]


def f_score(precision: float, recall: float, beta: float) -> float:
    weight = beta * beta
    return (1 + weight) * precision * recall / (weight * precision + recall) if precision + recall else 0.0


def score(found: set[tuple[str, str]], true: set[tuple[str, str]], ids: list[str]) -> dict[str, Any]:
    """Pairwise precision / recall / F1 overall and per copy kind."""
    hit = len(found & true)
    precision = hit / len(found) if found else 1.0
    recall = hit / len(true) if true else 1.0
    out: dict[str, Any] = {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f_score(precision, recall, 1.0), 4),
        "f05": round(f_score(precision, recall, 0.5), 4),
        "found_pairs": len(found),
        "true_found": hit,
        "true_pairs": len(true),
        "kinds": {},
    }
    unmirrored = {p for p in true if not p[0].endswith("~mirror") and not p[1].endswith("~mirror")}
    out["recall_without_mirror"] = round(len(found & unmirrored) / len(unmirrored), 4) if unmirrored else 1.0
    for kind in (*VARIANT_KINDS, "copy"):
        copies = [i for i in ids if i.endswith(f"~{kind}")]
        if not copies:
            continue
        kind_true = {tuple(sorted((family(c), c))) for c in copies}
        involving = {p for p in found if p[0].endswith(f"~{kind}") or p[1].endswith(f"~{kind}")}
        out["kinds"][kind] = {
            "recall": round(len(kind_true & found) / len(kind_true), 4),
            "precision": round(len(involving & true) / len(involving), 4) if involving else None,
        }
    return out


def similarity_profile(store: CatalogStore) -> dict[str, Any]:
    """Cosine of each copy kind to its base, and of each base to its nearest image outside its family."""
    keys, vectors = (np.concatenate(parts) for parts in zip(*store.iter_vectors(), strict=True))
    ids = [store.get_items(keys.tolist())[int(k)].id for k in keys]
    index = {item_id: n for n, item_id in enumerate(ids)}
    cosines = vectors @ vectors.T
    profile: dict[str, Any] = {}
    for kind in (*VARIANT_KINDS, "copy"):
        values = [float(cosines[index[i], index[family(i)]]) for i in ids if i.endswith(f"~{kind}")]
        if values:
            profile[kind] = {q: round(float(np.quantile(values, p)), 4) for q, p in (("min", 0), ("p10", 0.1),
                                                                                     ("median", 0.5))}  # fmt: skip
    families = np.array([family(i) for i in ids])
    nearest = []
    for n, item_id in enumerate(ids):
        if "~" in item_id or not item_id.startswith("b"):
            continue
        row = np.where(families == item_id, -np.inf, cosines[n])
        nearest.append(float(row.max()))
    profile["nearest_unrelated_to_base"] = {
        q: round(float(np.quantile(nearest, p)), 4) for q, p in (("median", 0.5), ("p90", 0.9), ("max", 1.0))
    }
    return profile


def measure_set(
    name: str, work: Path, bases: list, unrelated: list, copies: int, seed: int, origins: dict[str, str] | None = None
) -> dict[str, Any]:
    """Index one set with its copies and score the finder per threshold.

    ``origins`` (source path -> origin) adds, per threshold, the wrong pairs counted by their two pictures' origins.
    """
    kinds = len(VARIANT_KINDS)
    origin_of: dict[str, str] = {}
    if origins:
        origin_of = {f"b{n}": origins[str(path)] for n, (_, path) in enumerate(bases)}
        origin_of |= {f"x{n}": origins[str(path)] for n, (_, path) in enumerate(unrelated)}
    log(f"[{name}] {len(bases)} bases x {kinds} copy kinds, {copies} byte copies, {len(unrelated)} unrelated")
    folder = work / name
    manifest = build_catalog(folder, bases, unrelated, copies, seed)
    store_dir = folder / "store"
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        code = catalens(["index", str(manifest), "--store", str(store_dir), "--model", MODEL, "--quiet"])
    if code != 0:
        raise SystemExit(f"indexing {name} failed with exit code {code}")
    log(f"[{name}] indexed in {time.perf_counter() - started:.1f} s")
    with CatalogStore.open(store_dir) as store:
        keys = np.concatenate([k for k, _ in store.iter_vectors()])
        ids = sorted(item.id for item in store.get_items(keys.tolist()).values())
        true = pairs_within([[i for i in ids if family(i) == f] for f in {family(i) for i in ids if "~" in i}])
        by_threshold: dict[str, Any] = {}
        for threshold in THRESHOLDS:
            report = find_duplicates(store, threshold)
            found = pairs_within([[m.item_id for m in g.members] for g in report.groups])
            by_threshold[f"{threshold:.2f}"] = {**score(found, true, ids), "groups": len(report.groups),
                                                "seconds": round(report.seconds, 3)}  # fmt: skip
            if origin_of:
                wrong = Counter("+".join(sorted(origin_of[family(i)] for i in pair)) for pair in found - true)
                by_threshold[f"{threshold:.2f}"]["wrong_pairs_by_origin"] = dict(sorted(wrong.items()))
            row = by_threshold[f"{threshold:.2f}"]
            per_kind = " ".join(f"{k}:{v['recall']:.2f}" for k, v in row["kinds"].items())
            log(f"[{name}] t={threshold:.2f} precision {row['precision']:.3f} recall {row['recall']:.3f} "
                f"f0.5 {row['f05']:.3f} {per_kind}")  # fmt: skip
        profile = similarity_profile(store)
        index = store.manifest.index
        weights = store.manifest.model_digest  # which release of the weights made these figures
    return {
        "weights_digest": weights,
        "images": len(ids),
        "bases": len(bases),
        "unrelated": len(unrelated),
        "index": index.factory if index else None,
        "thresholds": by_threshold,
        "similarity": profile,
    }


def time_scale(path: Path, threshold: float) -> dict[str, Any]:
    """The finder's wall time on an existing (large) store, its index as published."""
    with CatalogStore.open(path) as store:
        index = store.manifest.index
        started = time.perf_counter()
        report = find_duplicates(store, threshold)
        seconds = time.perf_counter() - started
    log(f"[scale] {report.run.items:,} items, index {index.factory if index else None}: {seconds:.1f} s, "
        f"{report.run.groups:,} groups")  # fmt: skip
    return {
        "store": str(path),
        "items": report.run.items,
        "index": index.factory if index else None,
        "threshold": threshold,
        "seconds": round(seconds, 2),
        "items_per_second": round(report.run.items / seconds, 1),
        "groups": report.run.groups,
        "pairs": report.pairs,
        "exact_compared": report.exact_compared,
    }


def recommend(sets: dict[str, dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    """The threshold with the best F0.5 over every set's pairs together (the higher one on a tie)."""
    pooled: dict[str, Any] = {}
    for threshold in THRESHOLDS:
        key = f"{threshold:.2f}"
        rows = [s["thresholds"][key] for s in sets.values()]
        true = sum(r["true_pairs"] for r in rows)
        found = sum(r["found_pairs"] for r in rows)
        hit = sum(r["true_found"] for r in rows)
        precision, recall = (hit / found if found else 1.0), (hit / true if true else 1.0)
        pooled[key] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f_score(precision, recall, 1.0), 4),
            "f05": round(f_score(precision, recall, 0.5), 4),
        }
    best = max(THRESHOLDS, key=lambda t: (pooled[f"{t:.2f}"]["f05"], t))
    return best, pooled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-bases", type=int, default=60)
    parser.add_argument("--clipart-bases", type=int, default=100)
    parser.add_argument(
        "--clipart-unrelated", type=int, default=400, help="at most this many (the held-out pool has fewer)"
    )
    parser.add_argument("--copies", type=int, default=10, help="byte-identical copies per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the catalogs and stores here (default: a temp folder)")
    parser.add_argument("--scale", type=Path, help="also time the finder on this existing store")
    parser.add_argument("--scale-threshold", type=float, default=0.95)
    parser.add_argument(
        "--clipart-pool", choices=list(clipart_unseen.POOLS), default="held-out", help=clipart_unseen.POOL_HELP
    )
    parser.add_argument(
        "--cache", type=Path, default=clipart_unseen.DEFAULT_CACHE, help="where the clip-art sorting is cached"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-duplicates-"))
    sets: dict[str, dict[str, Any]] = {}
    try:
        bases, unrelated = demo_images(args.demo_bases, rng)
        sets["demo"] = measure_set("demo", work, bases, unrelated, args.copies, args.seed)
        if CLIPART.is_dir():
            bases, unrelated, origins, pool = clipart_images(
                args.clipart_bases, args.clipart_unrelated, rng, args.clipart_pool, args.cache, work
            )
            measured = measure_set("clipart", work, bases, unrelated, args.copies, args.seed, origins)
            sets["clipart"] = {**measured, "pool": pool}
        else:
            log(f"{CLIPART} not found (Debian package openclipart-png): clipart set skipped")
        best, pooled = recommend(sets)
        result: dict[str, Any] = {"model": MODEL, "sets": sets, "pooled": pooled, "recommended_threshold": best}
        if args.scale:
            result["scale"] = time_scale(args.scale, args.scale_threshold)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Tagging benchmark: can a merchandiser trust the accepted tags, and what do labelled items buy?

For each catalog (the demo catalog of 170 emoji product shots in 13 shop categories; clip art from Debian's
``openclipart-png`` in 10 folders, a second style of picture, when installed), indexed with the given model:

1. **Learning curve**: with 5, 10 and 20 labelled items per value (where the catalog has that many, keeping at
   least a few per value aside), the accuracy on all the other items of zero-shot, calibrated zero-shot, the
   linear probe on the stored vectors, and their blend (``learning_curve`` in
   :mod:`catalens.indexer.tagging.calibration`; mean of ``--repeats`` draws).
2. **Trust**: half of each category is labelled (the calibration set), the other half held out;
   ``calibrate_store`` fits on the labelled half for ``--target-precision``, ``tag_store`` tags the store
   with that calibration, and the accepted ``category`` tags of the held-out items are compared with their
   catalog category: the measured precision (must hold the target - 0.05) and coverage (share accepted).
   Uncalibrated zero-shot with the taxonomy's default threshold is measured the same way beside it.
3. Optionally (``--scale STORE``) tagging speed on a big store (issue 13's 1M synthetic store, copied first:
   tags are written into it): items/s of ``tag_store`` with a three-attribute taxonomy, uncalibrated.

Prints a human summary on stderr and one JSON line last on stdout::

    python scripts/bench_tagging.py                        # demo + clip art with catalens-mini (~2 min)
    python scripts/bench_tagging.py --catalogs demo --shots 5 --repeats 1   # what the test runs
    python scripts/bench_tagging.py --catalogs none --scale /tmp/scale-1m-copy
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO_CATALOG = REPO / "scripts" / "data" / "demo_catalog" / "catalog.csv"
DEMO_TAXONOMY = REPO / "scripts" / "data" / "taxonomies" / "demo.yaml"
CLIPART = Path("/usr/share/openclipart/png")
#: Clip-art folders used as categories, with the prompt texts of each (the folder names are not all nouns).
CLIPART_CATEGORIES = {
    "animals": ["an animal", "a wild animal", "a pet"],
    "food": ["food", "a meal", "fruit and vegetables"],
    "transportation": ["a vehicle", "a car", "a truck"],
    "people": ["a person", "people", "a man or a woman"],
    "tools": ["a tool", "a hammer", "a wrench"],
    "office": ["office supplies", "a pen and paper"],
    "plants": ["a plant", "a flower", "a tree"],
    "buildings": ["a building", "a house"],
    "computer": ["a computer", "a computer icon"],
    "recreation": ["sports and games", "a ball", "a musical instrument"],
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def clipart_catalog(folder: Path, per_category: int, seed: int) -> Path:
    """A manifest of ``per_category`` clip-art PNGs from each folder of :data:`CLIPART_CATEGORIES`."""
    rng = random.Random(seed)
    manifest = folder / "clipart.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "image", "title", "category"])
        for category in CLIPART_CATEGORIES:
            files = sorted(p for p in (CLIPART / category).rglob("*.png") if not p.is_symlink())
            for path in rng.sample(files, min(per_category, len(files))):
                title = path.stem.replace("_", " ")
                writer.writerow([f"{category}/{path.stem}", str(path), title, category])
    taxonomy = folder / "clipart.json"
    values = [{"name": name, "prompts": prompts} for name, prompts in CLIPART_CATEGORIES.items()]
    taxonomy.write_text(json.dumps({"attributes": {"category": {"values": values}}}, indent=1))
    return manifest


def truth_by_id(store: Path) -> dict[str, str]:
    from catalens.indexer.store import CatalogStore, ItemFilter

    with CatalogStore.open(store, read_only=True) as opened:
        keys = opened.matching_keys(ItemFilter())
        return {item.id: str(item.category) for item in opened.get_items(keys).values() if item.category}


def split_half(truth: dict[str, str], seed: int) -> tuple[list[str], list[str]]:
    """Per category, half of the items labelled and half held out (seeded)."""
    rng = random.Random(seed)
    labelled, held = [], []
    by_category: dict[str, list[str]] = {}
    for item_id, category in sorted(truth.items()):
        by_category.setdefault(category, []).append(item_id)
    for ids in by_category.values():
        rng.shuffle(ids)
        half = len(ids) // 2
        labelled += ids[:half]
        held += ids[half:]
    return labelled, held


def measure_catalog(name: str, manifest: Path, taxonomy_path: Path, work: Path, args: argparse.Namespace) -> dict:
    from catalens.indexer.pipeline import IndexOptions, index_catalog
    from catalens.indexer.store import CatalogStore
    from catalens.indexer.tagging.curve import learning_curve
    from catalens.indexer.tagging.job import (
        TagOptions,
        calibrate_store,
        label_vectors_for,
        labelled_sets,
        load_text_model,
        tag_store,
    )
    from catalens.indexer.tagging.labelled import LabelledRow
    from catalens.indexer.tagging.taxonomy import load_taxonomy

    store = work / f"{name}-store"
    started = time.perf_counter()
    report = index_catalog(manifest, store, IndexOptions(model=args.model, device="cpu"))
    log(f"[{name}] indexed {report.indexed_total} items with {args.model} in {time.perf_counter() - started:.0f} s")
    taxonomy = load_taxonomy(taxonomy_path)
    values = taxonomy.attribute("category").value_names()
    truth = {i: c for i, c in truth_by_id(store).items() if c in values}
    with CatalogStore.open(store, read_only=True) as opened:
        model = load_text_model(opened, "cpu")
        label_vectors = label_vectors_for(opened, taxonomy, model)
        rows = [LabelledRow(i, "category", c, 0) for i, c in truth.items()]
        sets, _ = labelled_sets(opened, taxonomy, rows, label_vectors)
    data = sets["category"]
    smallest = int(np.bincount(data.labels, minlength=len(values)).min())
    shots = [s for s in args.shots if s <= smallest - 2]  # keep at least two items per value to measure on
    curve = learning_curve(
        data.cosines, data.vectors, data.labels, model.logit_scale, shots=tuple(shots), repeats=args.repeats
    )
    log(f"[{name}] learning curve ({len(truth)} items, smallest class {smallest}): {json.dumps(curve)}")

    labelled, held = split_half(truth, args.seed)
    calibration, _ = calibrate_store(
        store,
        taxonomy,
        [LabelledRow(i, "category", truth[i], 0) for i in labelled],
        target_precision=args.target_precision,
        include_people=False,
        model=model,
    )
    trust = {}
    for label, cal in (("calibrated", calibration), ("uncalibrated", None)):
        tag_store(store, taxonomy, calibration=cal, options=TagOptions(device="cpu"), model=model)
        trust[label] = held_out_precision(store, held, truth)
        log(f"[{name}] {label}: {json.dumps(trust[label])}")
    target = args.target_precision
    calibrated = trust["calibrated"]
    return {
        "items": len(truth),
        "values": len(values),
        "model": args.model,
        "learning_curve": curve,
        "target_precision": target,
        "held_out": trust,
        "calibration_report": {k: v for k, v in calibration.attributes["category"].report.items() if k != "values"},
        "precision_holds": calibrated["precision"] is None or calibrated["precision"] >= target - 0.05,
    }


def held_out_precision(store: Path, held: list[str], truth: dict[str, str]) -> dict[str, Any]:
    """Precision and coverage of the accepted ``category`` tags of the held-out items, and the decision shares."""
    from catalens.indexer.store import CatalogStore

    with CatalogStore.open(store, read_only=True) as opened:
        items = opened.get_items_by_id(held)
        tags = opened.tags.for_items(item.key for item in items.values())
    accepted = correct = reviewed = 0
    for item_id in held:
        rows = [t for t in tags.get(items[item_id].key, []) if t.attribute == "category"]
        if any(t.decision == "accept" for t in rows):
            accepted += 1
            correct += any(t.decision == "accept" and t.value == truth[item_id] for t in rows)
        elif any(t.decision == "review" for t in rows):
            reviewed += 1
    return {
        "held_out": len(held),
        "accepted": accepted,
        "precision": round(correct / accepted, 4) if accepted else None,
        "coverage": round(accepted / len(held), 4),
        "review_share": round(reviewed / len(held), 4),
    }


def measure_scale(store: Path) -> dict[str, Any]:
    """Tag every item of a big synthetic store (3 attributes, uncalibrated): items per second."""
    from catalens.indexer.tagging.job import TagOptions, tag_store
    from catalens.indexer.tagging.taxonomy import parse_taxonomy

    sys.path.insert(0, str(REPO / "scripts"))
    import scale_data

    taxonomy = parse_taxonomy(
        json.dumps(
            {
                "attributes": {
                    "category": {"values": list(scale_data.CATEGORIES)},
                    "colour": {"values": list(scale_data.COLOURS)},
                    "material": {"values": list(scale_data.MATERIALS), "applies_to": {"category": ["bags", "shoes"]}},
                }
            }
        ),
        source="scale-taxonomy",
    )
    first = tag_store(store, taxonomy, options=TagOptions(device="cpu", redo=True))
    log(f"[scale] tagged {first.tagged:,} items in {first.seconds:.1f} s ({first.items_per_second:,.0f}/s)")
    again = tag_store(store, taxonomy, options=TagOptions(device="cpu"))
    log(f"[scale] re-run: {again.tagged:,} tagged, {again.up_to_date:,} up to date in {again.seconds:.1f} s")
    return {
        "model": first.model,
        "attributes": [a.name for a in taxonomy.attributes],
        "items": first.tagged,
        "seconds": round(first.seconds, 1),
        "items_per_second": round(first.items_per_second, 1),
        "decisions": dict(first.decisions),
        "rerun_seconds": round(again.seconds, 1),
        "rerun_tagged": again.tagged,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogs", default="demo,clipart", help="demo, clipart, both (default) or none")
    parser.add_argument("--model", default="catalens-mini")
    parser.add_argument("--shots", type=lambda s: [int(x) for x in s.split(",")], default=[5, 10, 20])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target-precision", type=float, default=0.9)
    parser.add_argument("--clipart-per-category", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=Path, help="also time tagging this (writable) big store")
    parser.add_argument("--work", type=Path, help="keep the stores here (default: a temporary folder)")
    args = parser.parse_args()

    temp = tempfile.TemporaryDirectory(prefix="catalens-tagging-")
    work = args.work or Path(temp.name)
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"model": args.model, "target_precision": args.target_precision}
    wanted = [c.strip() for c in args.catalogs.split(",") if c.strip() and c.strip() != "none"]
    if "demo" in wanted:
        result["demo"] = measure_catalog("demo", DEMO_CATALOG, DEMO_TAXONOMY, work, args)
    if "clipart" in wanted:
        if CLIPART.is_dir():
            manifest = clipart_catalog(work, args.clipart_per_category, args.seed)
            result["clipart"] = measure_catalog("clipart", manifest, work / "clipart.json", work, args)
        else:
            result["clipart"] = {"skipped": f"{CLIPART} is missing (apt-get install openclipart-png)"}
    if args.scale:
        result["scale"] = measure_scale(args.scale)
    temp.cleanup()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

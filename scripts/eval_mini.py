#!/usr/bin/env python
"""Evaluate an image–text model on the held-out OpenMoji style with catalens's own tools.

    .venv/bin/python scripts/eval_mini.py --model catalens-mini
    .venv/bin/python scripts/eval_mini.py --model .cache/catalens-mini/run-scratch --json

OpenMoji (CC-BY-SA 4.0, npm ``openmoji``) is never used for training, so this measures how well a model
generalises to a drawing style it has not seen. The script writes the 1,914 standard OpenMoji emoji as
PNGs on white with a CSV manifest, indexes them with ``catalens index`` (Python API), and runs
``catalens eval`` on three labelled sets:

* ``names.jsonl`` – one query per emoji, its CLDR name (e.g. "red apple"); the one image is relevant.
* ``paraphrases.jsonl`` – queries written by hand (``scripts/data/mini_paraphrases.tsv``), e.g.
  "footwear for running" for the running shoe.
* ``groups.jsonl`` – zero-shot classification of every emoji into the 9 Unicode emoji groups.

Prints a table per set, then one JSON line with every metric.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mini_data  # noqa: E402

from catalens.indexer.pipeline import IndexOptions, index_catalog  # noqa: E402
from catalens.search.engine import SearchEngine  # noqa: E402
from catalens.search.evaluation import EvalReport, evaluate, load_eval_set  # noqa: E402

PARAPHRASES = Path(__file__).resolve().parent / "data" / "mini_paraphrases.tsv"


def write_held_out(cache: Path, out: Path) -> tuple[Path, dict[str, Path]]:
    """Write the OpenMoji catalog and the three labelled sets; returns (manifest, {set name: path})."""
    emoji = mini_data.load_emoji(cache)
    held_out = mini_data.held_out_set(cache, emoji)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    by_label: dict[str, str] = {}
    manifest = out / "catalog.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "title", "category"])
        for hexcode, pixels in zip(held_out.hexcodes, held_out.images, strict=True):
            rgba = Image.fromarray(pixels, "RGBA")
            white = Image.new("RGB", rgba.size, (255, 255, 255))
            white.paste(rgba, mask=rgba.getchannel("A"))
            white.save(images / f"{hexcode}.png")
            e = emoji[hexcode]
            by_label[e.label] = hexcode
            writer.writerow([hexcode, f"images/{hexcode}.png", "", mini_data.GROUP_NAMES[e.group]])
    sets = {
        "names": [{"query": mini_data.clean_label(label), "relevant": [h]} for label, h in by_label.items()],
        "paraphrases": _paraphrases(by_label),
        "groups": [{"id": h, "label": mini_data.GROUP_NAMES[emoji[h].group]} for h in by_label.values()],
    }
    paths = {}
    for name, rows in sets.items():
        paths[name] = out / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest, paths


def _paraphrases(by_label: dict[str, str]) -> list[dict[str, object]]:
    rows = []
    for line in PARAPHRASES.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        query, labels = line.split("\t")
        relevant = [by_label[label] for label in labels.split("|") if label in by_label]
        if relevant:
            rows.append({"query": query, "relevant": relevant})
    return rows


def run(model: str, cache: Path, work: Path) -> dict[str, EvalReport]:
    """Index the held-out catalog with ``model`` and evaluate the three sets."""
    manifest, sets = write_held_out(cache, work)
    store = work / "store"
    index_catalog(manifest, store, IndexOptions(model=model, rebuild=True))
    with SearchEngine.open(store) as engine:
        return {name: evaluate(engine, load_eval_set(path)) for name, path in sets.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="catalens-mini", help="model spec to evaluate")
    parser.add_argument("--cache", type=Path, default=Path(".cache/catalens-mini"), help="npm and render cache")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="catalens-heldout-") as tmp:
        reports = run(args.model, args.cache, Path(tmp))
    summary: dict[str, object] = {"model": args.model, "held_out": "openmoji@17.0.0"}
    for name, report in reports.items():
        data = report.to_dict()
        if name == "groups":
            cls = data["classification"]
            summary[name] = {k: cls[k] for k in ("items", "top1", "top5") if k in cls}
        else:
            summary[name] = data["retrieval"]
        if not args.json:
            print(f"{name}: {json.dumps(summary[name])}")
    summary["seconds"] = round(time.time() - started, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

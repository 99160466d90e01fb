#!/usr/bin/env python
"""Evaluate an image–text model on the held-out sets of catalens-mini with catalens's own tools.

    .venv/bin/python scripts/eval_mini.py --model catalens-mini
    .venv/bin/python scripts/eval_mini.py --model .cache/catalens-mini/run-scratch --json
    .venv/bin/python scripts/eval_mini.py --model catalens-mini --sets clipart,demo
    .venv/bin/python scripts/eval_mini.py --model catalens-mini --sets stamps   # needs tuxpaint-stamps-default

OpenMoji (CC-BY-SA 4.0, npm ``openmoji``) is never used for training, so this measures how well a model
generalises to a drawing style it has not seen. The script writes the 1,914 standard OpenMoji emoji as
PNGs on white with a CSV manifest, indexes them with ``catalens index`` (Python API), and runs
``catalens eval`` on three labelled sets:

* ``names.jsonl`` – one query per emoji, its CLDR name (e.g. "red apple"); the one image is relevant.
* ``paraphrases.jsonl`` – queries written by hand (``scripts/data/mini_paraphrases.tsv``), e.g.
  "footwear for running" for the running shoe.
* ``groups.jsonl`` – zero-shot classification of every emoji into the 9 Unicode emoji groups.

The same emoji staged as catalog product shots (``--sets shots``, ``product_shot``: the object on 45-80 % of the
frame, a pale plain or graded backdrop, a floor shadow half the time, JPEG), measured with vectors alone:

* ``shots_names`` – the name queries again; ``shots_groups`` – the 9 groups again (top-1, balanced).

The held-out clip-art slice (``--sets clipart``; ``scripts/clipart_data.py``: Debian's public-domain
openclipart, whole authors never used for training) is written the same way, as PNGs on white, and measured
with vectors alone (its manifest has no titles):

* ``clipart_titles`` – one query per distinct cleaned title (e.g. "apple bitten"); every held-out drawing
  with that title is relevant. R@k, MRR, nDCG@10.
* ``clipart_kinds`` – zero-shot classification of every held-out drawing that has a kind ("animal", "food",
  "vehicle", ...; ``clipart_data.KIND_BY_FOLDER``) into those kinds: top-1, top-5 and balanced accuracy
  (the mean of the per-kind recalls, so a big kind cannot carry the figure).

The demo catalog (``--sets demo``) is the one ``make demo`` indexes (``scripts/demo.py``'s ``CATALOG``),
measured on its own labelled set exactly as ``make demo`` runs ``catalens eval`` there with ``--mode vector``:
vector-only retrieval over its 244 queries and zero-shot top-1 over its 13 shop categories.

Picture → picture (``catalens similar``), for OpenMoji and the demo catalog: ``openmoji_similar`` and
``demo_similar`` (:func:`neighbour_agreement`) – how many of each item's 3 nearest stored neighbours share its
Unicode subgroup ("food-fruit", "musical-instrument"; 98 among the held-out emoji) or its shop category (13),
averaged over items (``at3``), the same for the nearest one (``at1``), and what random neighbours would score
(``chance``). It is the measurable side of "the teddy bear's similar items read as sensible".

Issue 17's kept-aside set (``--sets stamps``, not run by default: ``apt-get install tuxpaint-stamps-default``;
``scripts/stamps_data.py``): Tux Paint's stamps, never used for training, measured with vectors alone:

* ``stamps_texts`` – one query per stamp, its English description, over all ~950 stamps.
* ``stamps_kinds`` – zero-shot classification of the stamps in the issue's 8 folders (animals, food, clothes,
  vehicles, plants, household, space, sports) into those 8: top-1, top-5 and balanced accuracy.

Prints a table per set, then one JSON line with every metric.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import clipart_data  # noqa: E402
import demo  # noqa: E402
import mini_data  # noqa: E402
import stamps_data  # noqa: E402

from catalens.indexer.pipeline import IndexOptions, index_catalog  # noqa: E402
from catalens.search.engine import SearchEngine, SearchMode, SearchOptions  # noqa: E402
from catalens.search.evaluation import EvalReport, evaluate, load_eval_set  # noqa: E402

PARAPHRASES = Path(__file__).resolve().parent / "data" / "mini_paraphrases.tsv"
SETS = ("openmoji", "shots", "clipart", "demo", "stamps")
#: What runs without ``--sets``: ``stamps`` needs a Debian package the other sets do not.
DEFAULT_SETS = ("openmoji", "shots", "clipart", "demo")


def write_held_out(cache: Path, emoji: dict[str, mini_data.Emoji], out: Path) -> tuple[Path, dict[str, Path]]:
    """Write the OpenMoji catalog and the three labelled sets; returns (manifest, {set name: path})."""
    held_out = mini_data.held_out_set(cache, emoji)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    by_label: dict[str, str] = {}
    manifest = out / "catalog.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "title", "category"])
        for hexcode, pixels in zip(held_out.hexcodes, held_out.images, strict=True):
            save_on_white(pixels, images / f"{hexcode}.png")
            e = emoji[hexcode]
            by_label[e.label] = hexcode
            writer.writerow([hexcode, f"images/{hexcode}.png", "", mini_data.GROUP_NAMES[e.group]])
    sets = {
        "names": [{"query": mini_data.clean_label(label), "relevant": [h]} for label, h in by_label.items()],
        "paraphrases": _paraphrases(by_label),
        "groups": [{"id": h, "label": mini_data.GROUP_NAMES[emoji[h].group]} for h in by_label.values()],
    }
    return manifest, write_sets(out, sets)


def save_on_white(pixels: np.ndarray, path: Path) -> None:
    """An RGBA drawing composited onto white and saved, as a catalog's product shot would be."""
    rgba = Image.fromarray(pixels, "RGBA")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    white.save(path)


def write_sets(out: Path, sets: dict[str, list[dict[str, Any]]]) -> dict[str, Path]:
    """Each labelled set as ``{out}/{name}.jsonl``; returns {set name: path}."""
    paths = {}
    for name, rows in sets.items():
        paths[name] = out / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(row) + "\n" for row in rows))
    return paths


def index_and_evaluate(
    model: str, manifest: Path, store: Path, sets: dict[str, Path], mode: SearchMode = "hybrid"
) -> dict[str, EvalReport]:
    """Index ``manifest`` into a new ``store`` with ``model`` and evaluate each labelled set on it."""
    index_catalog(manifest, store, IndexOptions(model=model, rebuild=True))
    with SearchEngine.open(store) as engine:
        return {name: evaluate(engine, load_eval_set(path), mode=mode) for name, path in sets.items()}


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


def neighbour_agreement(store: Path, groups: dict[str, str], k: int = 3) -> dict[str, float]:
    """How often ``similar`` (vectors) answers an item with items of its own group.

    ``at{k}``: the share of each item's ``k`` nearest stored neighbours (itself excluded) in its group, averaged
    over the items of ``groups``; ``at1``: the same for the nearest; ``chance``: the mean share a random
    neighbour would have, ``(n_g - 1) / (n - 1)``, which a model that has learnt nothing scores.
    """
    sizes = Counter(groups.values())
    first, share = [], []
    with SearchEngine.open(store) as engine:
        for item, group in groups.items():
            hits = engine.similar(item, SearchOptions(k=k, mode="vector")).hits
            same = [groups.get(hit.id) == group for hit in hits]
            first.append(float(same[0]) if same else 0.0)
            share.append(sum(same) / k)
    chance = sum((sizes[g] - 1) / (len(groups) - 1) for g in groups.values()) / len(groups)
    return {
        "items": len(groups),
        "groups": len(sizes),
        f"at{k}": round(float(np.mean(share)), 6),
        "at1": round(float(np.mean(first)), 6),
        "chance": round(chance, 6),
    }


def catalog_groups(manifest: Path, column: str = "category") -> dict[str, str]:
    """Each item's ``column`` value from a catalog CSV (the demo catalog's shop category)."""
    with manifest.open(newline="") as handle:
        return {row["id"]: row[column] for row in csv.DictReader(handle)}


def run(model: str, cache: Path, work: Path) -> tuple[dict[str, EvalReport], dict[str, float]]:
    """Index the held-out catalog with ``model``; evaluate the three sets and the neighbours' subgroups."""
    emoji = mini_data.load_emoji(cache)
    manifest, sets = write_held_out(cache, emoji, work)
    reports = index_and_evaluate(model, manifest, work / "store", sets)
    subgroups = {item: emoji[item].subgroup for item in catalog_groups(manifest)}
    return reports, neighbour_agreement(work / "store", subgroups)


def product_shot(pixels: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An RGBA drawing staged as a catalog product shot, at random: the object covers 45-80 % of the frame's
    side, a little off centre, on a pale plain or graded backdrop of any hue, with a floor shadow half the time.

    The demo catalog's shots share the idea but not the numbers (its object covers 75 %, its backdrop's hue
    follows the category, every shot has a shadow): this set is a held-out measure of staging, not of the demo.
    """
    rgba = Image.fromarray(pixels, "RGBA")
    side = round(rgba.width / rng.uniform(0.45, 0.8))
    colour = rng.integers(215, 251, size=3)
    grade = np.linspace(10, -20, side) if rng.random() < 0.5 else np.zeros(side)
    shade = colour[None, :] + grade[:, None]  # one colour per row
    backdrop = np.broadcast_to(np.clip(shade, 0, 255)[:, None, :], (side, side, 3)).astype(np.uint8)
    shot = Image.fromarray(np.ascontiguousarray(backdrop), "RGB")
    spare = side - rgba.width
    left = round(spare / 2 + rng.uniform(-0.1, 0.1) * spare)
    top = round(spare * rng.uniform(0.25, 0.5))
    if rng.random() < 0.5:
        floor = top + rgba.height
        shadow = Image.new("L", shot.size, 0)
        ellipse = (left + rgba.width * 0.1, floor - 6, left + rgba.width * 0.9, floor + 6)
        ImageDraw.Draw(shadow).ellipse(ellipse, fill=90)
        shot.paste((90, 90, 90), mask=shadow.filter(ImageFilter.GaussianBlur(4)))
    shot.paste(rgba, (left, top), mask=rgba.getchannel("A"))
    return shot


def write_shots(cache: Path, out: Path, seed: int = 0) -> tuple[Path, dict[str, Path]]:
    """The held-out OpenMoji staged as product shots (JPEG), with their name queries and group labels."""
    emoji = mini_data.load_emoji(cache)
    held_out = mini_data.held_out_set(cache, emoji)
    rng = np.random.default_rng(seed)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    manifest = out / "catalog.csv"
    names, groups = [], []
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "title", "category"])
        for hexcode, pixels in zip(held_out.hexcodes, held_out.images, strict=True):
            product_shot(pixels, rng).save(images / f"{hexcode}.jpg", quality=85)
            writer.writerow([hexcode, f"images/{hexcode}.jpg", "", ""])  # vectors alone are measured
            names.append({"query": mini_data.clean_label(emoji[hexcode].label), "relevant": [hexcode]})
            groups.append({"id": hexcode, "label": mini_data.GROUP_NAMES[emoji[hexcode].group]})
    return manifest, write_sets(out, {"shots_names": names, "shots_groups": groups})


def run_shots(model: str, cache: Path, work: Path) -> dict[str, EvalReport]:
    """Index the held-out OpenMoji as product shots with ``model``; names and groups, vectors alone."""
    manifest, sets = write_shots(cache, work)
    return index_and_evaluate(model, manifest, work / "store", sets, mode="vector")


def write_clipart(cache: Path, out: Path, size: int = clipart_data.STORE_SIZE) -> tuple[Path, dict[str, Path]]:
    """Write the held-out clip-art slice as PNGs on white, its manifest and its two labelled sets."""
    held = clipart_data.load_clipart(cache, "held_out", size)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    by_title: dict[str, list[str]] = {}
    kinds: list[dict[str, str]] = []
    manifest = out / "catalog.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "title", "category"])
        for i, pixels in enumerate(held.images):
            item = f"clip-{i:05d}"
            save_on_white(pixels, images / f"{item}.png")
            writer.writerow([item, f"images/{item}.png", "", ""])  # no words: the vectors alone are measured
            if held.title_sources[i] in ("svg", "file"):  # a keyword or folder stand-in is no one's title
                by_title.setdefault(held.titles[i], []).append(item)
            if held.kinds[i]:
                kinds.append({"id": item, "label": str(held.kinds[i])})
    sets = {
        "clipart_titles": [{"query": title, "relevant": ids} for title, ids in sorted(by_title.items())],
        "clipart_kinds": kinds,
    }
    return manifest, write_sets(out, sets)


def run_clipart(model: str, cache: Path, work: Path) -> dict[str, EvalReport]:
    """Index the held-out clip art with ``model``; title retrieval and kind zero-shot, vectors alone."""
    manifest, sets = write_clipart(cache, work)
    return index_and_evaluate(model, manifest, work / "store", sets, mode="vector")


def run_demo(model: str, work: Path) -> tuple[EvalReport, dict[str, float]]:
    """Index ``make demo``'s catalog with ``model``; evaluate its own set as ``make demo`` does (vectors) and
    the categories of each product's ``similar`` items."""
    sets = {"demo": demo.CATALOG / "eval.jsonl"}
    manifest = demo.CATALOG / "catalog.csv"
    report = index_and_evaluate(model, manifest, work / "store", sets, mode="vector")["demo"]
    return report, neighbour_agreement(work / "store", catalog_groups(manifest))


def classification_summary(report: EvalReport) -> dict[str, float]:
    """Items, top-1, top-5, and balanced accuracy: the mean recall over the labels that have items."""
    cls = report.to_dict()["classification"]
    summary = {k: cls[k] for k in ("items", "top1", "top5") if k in cls}
    recalls = [stats.recall for stats in report.per_label.values() if stats.support]
    if recalls:
        summary["balanced"] = round(sum(recalls) / len(recalls), 6)
        summary["labels"] = len(recalls)
    return summary


def parse_sets(text: str) -> list[str]:
    """``openmoji,clipart`` → the sets to run, in a fixed order; an unknown name is an error."""
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SETS))
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(f"unknown set(s) {', '.join(unknown) or '(none)'}; choose from {SETS}")
    return [s for s in SETS if s in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="catalens-mini", help="model spec to evaluate")
    parser.add_argument("--cache", type=Path, default=Path(".cache/catalens-mini"), help="npm and render cache")
    parser.add_argument(
        "--sets",
        type=parse_sets,
        default=list(DEFAULT_SETS),
        help=f"comma-separated, from {','.join(SETS)} (default {','.join(DEFAULT_SETS)})",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    started = time.time()
    summary: dict[str, object] = {"model": args.model, "sets": args.sets}

    def show(name: str) -> None:
        if not args.json:
            print(f"{name}: {json.dumps(summary[name])}", flush=True)

    if "openmoji" in args.sets:
        summary["held_out"] = mini_data.HELD_OUT
        with tempfile.TemporaryDirectory(prefix="catalens-heldout-") as tmp:
            reports, neighbours = run(args.model, args.cache, Path(tmp))
        for name, report in reports.items():
            data = report.to_dict()
            if name == "groups":
                cls = data["classification"]
                summary[name] = {k: cls[k] for k in ("items", "top1", "top5") if k in cls}
            else:
                summary[name] = data["retrieval"]
            show(name)
        summary["openmoji_similar"] = neighbours
        show("openmoji_similar")
    if "shots" in args.sets:
        with tempfile.TemporaryDirectory(prefix="catalens-shots-") as tmp:
            reports = run_shots(args.model, args.cache, Path(tmp))
        summary["shots_names"] = reports["shots_names"].to_dict()["retrieval"]
        summary["shots_groups"] = classification_summary(reports["shots_groups"])
        show("shots_names")
        show("shots_groups")
    if "clipart" in args.sets:
        with tempfile.TemporaryDirectory(prefix="catalens-clipart-") as tmp:
            reports = run_clipart(args.model, args.cache, Path(tmp))
        summary["clipart_titles"] = reports["clipart_titles"].to_dict()["retrieval"]
        summary["clipart_kinds"] = classification_summary(reports["clipart_kinds"])
        held = clipart_data.load_clipart(args.cache, "held_out").source
        summary["clipart_source"] = {k: held[k] for k in ("versions", "held_out", "held_out_authors")}
        show("clipart_titles")
        show("clipart_kinds")
    if "demo" in args.sets:
        with tempfile.TemporaryDirectory(prefix="catalens-demo-") as tmp:
            report, neighbours = run_demo(args.model, Path(tmp))
        summary["demo_retrieval"] = report.to_dict()["retrieval"]
        summary["demo_categories"] = classification_summary(report)
        summary["demo_similar"] = neighbours
        show("demo_retrieval")
        show("demo_categories")
        show("demo_similar")
    if "stamps" in args.sets:
        with tempfile.TemporaryDirectory(prefix="catalens-stamps-") as tmp:
            try:
                written = stamps_data.write_stamps(Path(tmp))
            except stamps_data.StampsNotInstalledError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            reports = index_and_evaluate(args.model, written.manifest, Path(tmp) / "store", written.sets, "vector")
        summary["stamps_texts"] = reports["stamps_texts"].to_dict()["retrieval"]
        summary["stamps_kinds"] = classification_summary(reports["stamps_kinds"])
        summary["stamps_source"] = {
            "package": stamps_data.PACKAGE,
            "version": stamps_data.package_version(),
            "stamps": written.stamps,
            "skipped": len(written.skipped),
        }
        for item, reason in written.skipped:
            print(f"stamps: skipped {item}: {reason}", file=sys.stderr)
        show("stamps_texts")
        show("stamps_kinds")
    summary["seconds"] = round(time.time() - started, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

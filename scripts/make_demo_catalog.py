#!/usr/bin/env python
"""Build the demo catalog that ships in ``scripts/data/demo_catalog`` (run once; the output is committed).

    .venv/bin/python scripts/make_demo_catalog.py

Each product is an OpenMoji icon (CC-BY-SA 4.0, npm ``openmoji``) composed as a product shot: a soft
background in its category's colour, a floor shadow and the icon. Titles, categories, prices, brands and
keywords make it look like a small shop. OpenMoji is the style catalens-mini never saw in training, so
the demo shows the shipped model on unseen art. Writes ``catalog.csv``, ``eval.jsonl`` (name, paraphrase
and category queries plus category classification rows) and ``ATTRIBUTION.md``. Needs npm and cairo
(the same as ``scripts/train_mini.py``); seeded, so reruns produce the same catalog.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mini_data  # noqa: E402

OUT = Path(__file__).resolve().parent / "data" / "demo_catalog"
PARAPHRASES = Path(__file__).resolve().parent / "data" / "mini_paraphrases.tsv"
SIZE = 320

# category -> (CLDR labels, price range, background colour)
PRODUCTS: dict[str, tuple[list[str], tuple[float, float], tuple[int, int, int]]] = {
    "clothing": (
        ["t-shirt", "jeans", "dress", "coat", "scarf", "gloves", "socks", "necktie", "kimono", "shorts", "bikini"]
        + ["one-piece swimsuit", "lab coat", "safety vest", "running shirt"],
        (9, 120),
        (236, 228, 246),
    ),
    "shoes": (
        ["running shoe", "hiking boot", "high-heeled shoe", "flat shoe", "woman’s sandal", "ballet shoes"]
        + ["woman’s boot", "man’s shoe", "thong sandal"],
        (19, 160),
        (246, 236, 226),
    ),
    "accessories": (
        ["glasses", "sunglasses", "purse", "handbag", "clutch bag", "backpack", "woman’s hat", "top hat"]
        + ["billed cap", "graduation cap", "ring", "gem stone", "lipstick", "watch", "briefcase"],
        (5, 250),
        (250, 240, 230),
    ),
    "food": (
        ["red apple", "green apple", "banana", "grapes", "watermelon", "pineapple", "strawberry", "cherries"]
        + ["lemon", "avocado", "carrot", "broccoli", "ear of corn", "bread", "croissant", "cheese wedge", "pizza"]
        + ["hamburger", "doughnut", "cookie", "birthday cake", "chocolate bar", "honey pot", "popcorn"],
        (1, 25),
        (234, 246, 228),
    ),
    "drinks": (
        ["hot beverage", "teapot", "wine glass", "beer mug", "bottle with popping cork", "glass of milk"]
        + ["tropical drink", "bubble tea", "beverage box", "baby bottle"],
        (2, 40),
        (226, 240, 248),
    ),
    "kitchen": (
        ["fork and knife", "spoon", "kitchen knife", "chopsticks", "jar", "cooking", "bowl with spoon"],
        (3, 60),
        (242, 242, 236),
    ),
    "household": (
        ["bed", "couch and lamp", "chair", "toilet", "bathtub", "soap", "toothbrush", "broom", "basket"]
        + ["roll of paper", "sponge", "bucket", "candle", "light bulb", "lotion bottle", "fire extinguisher"],
        (2, 900),
        (238, 236, 230),
    ),
    "sports": (
        ["soccer ball", "basketball", "american football", "baseball", "tennis", "volleyball", "bowling"]
        + ["ping pong", "badminton", "boxing glove", "ice skate", "skis", "fishing pole", "diving mask"]
        + ["flying disc", "bicycle", "skateboard", "roller skate", "kick scooter", "goal net", "sled"],
        (8, 700),
        (226, 244, 238),
    ),
    "electronics": (
        ["mobile phone", "laptop", "desktop computer", "keyboard", "computer mouse", "printer", "camera"]
        + ["video camera", "television", "headphone", "radio", "battery", "flashlight", "joystick", "telephone"],
        (9, 1500),
        (232, 234, 244),
    ),
    "toys": (
        ["teddy bear", "kite", "yo-yo", "puzzle piece", "game die", "balloon", "wrapped gift", "nesting dolls"],
        (2, 45),
        (250, 234, 240),
    ),
    "music": (
        ["guitar", "violin", "trumpet", "saxophone", "drum", "musical keyboard", "banjo", "accordion", "flute"],
        (30, 900),
        (244, 238, 222),
    ),
    "tools": (
        ["hammer", "wrench", "screwdriver", "carpentry saw", "axe", "toolbox", "magnet", "ladder", "shovel"],
        (6, 150),
        (240, 236, 226),
    ),
    "stationery": (
        ["pencil", "pen", "paintbrush", "crayon", "scissors", "paperclip", "straight ruler", "notebook"]
        + ["closed book", "calendar", "spiral notepad", "pushpin"],
        (1, 30),
        (246, 246, 232),
    ),
}
ADJECTIVES = ("Classic", "Everyday", "Premium", "Compact", "Deluxe", "Eco", "Pro", "Essential")
BRANDS = ("Northwind", "Acme", "Lumen", "Kestrel", "Marigold", "Oakline")
CATEGORY_QUERIES = {
    "clothing": "clothes to wear",
    "shoes": "shoes",
    "food": "fresh food to eat",
    "drinks": "something to drink",
    "sports": "sports equipment",
    "electronics": "electronic devices",
    "music": "musical instruments",
    "tools": "tools for building and repairs",
    "stationery": "office and school supplies",
}


def product_id(label: str) -> str:
    return mini_data.slug(label.replace("’", ""))


def title_of(label: str, rng: random.Random) -> str:
    name = label.replace("’", "'").replace("flag: ", "")
    return f"{rng.choice(ADJECTIVES)} {name[:1].upper()}{name[1:]}"


def compose(icon: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """A product shot: vertical gradient background, soft floor shadow, centred icon."""
    top = tuple(min(255, c + 12) for c in colour)
    bottom = tuple(max(0, c - 18) for c in colour)
    shot = Image.new("RGB", (SIZE, SIZE))
    draw = ImageDraw.Draw(shot)
    for y in range(SIZE):
        t = y / (SIZE - 1)
        draw.line([(0, y), (SIZE, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    shadow = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(shadow).ellipse((70, 262, 250, 290), fill=90)
    shadow = shadow.filter(ImageFilter.GaussianBlur(8))
    shot.paste((90, 90, 90), mask=shadow)
    shot.paste(icon, ((SIZE - icon.width) // 2, 28), mask=icon.getchannel("A"))
    return shot


def build(cache: Path, out: Path, seed: int = 7) -> Path:
    rng = random.Random(seed)
    emoji = mini_data.load_emoji(cache)
    by_label = {e.label: e for e in emoji.values()}
    root = mini_data.npm_fetch(mini_data.HELD_OUT, cache)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows, eval_rows, ids_by_label = [], [], {}
    for category, (labels, (low, high), colour) in PRODUCTS.items():
        for label in labels:
            e = by_label[label]  # KeyError: a curated label that CLDR does not have
            svg = (root / "color" / "svg" / f"{e.hexcode}.svg").read_text()
            icon = Image.open(io.BytesIO(_png(svg))).convert("RGBA")
            pid = product_id(label)
            compose(icon, colour).save(images / f"{pid}.jpg", quality=86, optimize=True)
            rows.append(
                {
                    "id": pid,
                    "image": f"images/{pid}.jpg",
                    "title": title_of(label, rng),
                    "description": f"Keywords: {', '.join(e.tags)}." if e.tags else "",
                    "category": category,
                    "price": f"{rng.uniform(low, high):.2f}",
                    "brand": rng.choice(BRANDS),
                }
            )
            ids_by_label[label] = pid
            eval_rows.append({"query": label.replace("’", "'"), "relevant": [pid]})
    for line in PARAPHRASES.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            query, labels = line.split("\t")
            relevant = [ids_by_label[x] for x in labels.split("|") if x in ids_by_label]
            if relevant:
                eval_rows.append({"query": query, "relevant": relevant})
    eval_rows += [{"query": q, "relevant_category": c} for c, q in CATEGORY_QUERIES.items()]
    eval_rows += [{"id": row["id"], "label": row["category"]} for row in rows]
    with (out / "catalog.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "eval.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in eval_rows))
    (out / "ATTRIBUTION.md").write_text(ATTRIBUTION)
    return out / "catalog.csv"


def _png(svg: str) -> bytes:
    import cairosvg  # noqa: PLC0415

    return bytes(cairosvg.svg2png(bytestring=svg.encode(), output_width=240, output_height=240))


ATTRIBUTION = """# Demo catalog: sources and licence

The product images are [OpenMoji](https://openmoji.org) emoji (npm `openmoji` 17.0.0) by the OpenMoji
project of HfG Schwäbisch Gmünd, licensed under
[CC BY-SA 4.0](https://creativecommons.org/licenses/by-sa/4.0/). catalens composed each onto a
background with a shadow (`scripts/make_demo_catalog.py`); these adapted images are shared under the same
licence, CC BY-SA 4.0.

Product names and keywords come from the Unicode CLDR annotations as packaged by npm `emojibase-data`
17.0.0 (MIT). Titles, prices and brands are made up.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path(".cache/catalens-mini"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    manifest = build(args.cache, args.out)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(json.dumps({"manifest": str(manifest), "bytes": size}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

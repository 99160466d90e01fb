#!/usr/bin/env python3
"""Write the built-in demo catalog: drawn product images and a CSV manifest with titles, categories, prices.

The products are simple drawings (t-shirts, mugs, caps, bags, bottles, sneakers in several colours), so the
demo needs no download. Usage: ``python scripts/demo_catalog.py OUT_DIR``; prints the manifest path.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {
    "red": (200, 30, 40),
    "blue": (30, 70, 190),
    "green": (40, 150, 60),
    "yellow": (235, 200, 40),
    "black": (25, 25, 25),
    "white": (245, 245, 245),
}
Draw = Callable[[ImageDraw.ImageDraw, tuple[int, int, int]], None]


def _outline(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return (90, 90, 90) if sum(colour) > 600 else tuple(max(0, c - 60) for c in colour)  # type: ignore[return-value]


def tshirt(d: ImageDraw.ImageDraw, c: tuple[int, int, int]) -> None:
    d.polygon(
        [
            (70, 50),
            (110, 40),
            (146, 40),
            (186, 50),
            (226, 100),
            (196, 125),
            (180, 110),
            (180, 220),
            (76, 220),
            (76, 110),
            (60, 125),
            (30, 100),
        ],
        fill=c,
        outline=_outline(c),
        width=3,
    )


def mug(d: ImageDraw.ImageDraw, c: tuple[int, int, int]) -> None:
    d.ellipse((150, 90, 215, 170), outline=_outline(c), width=14)
    d.rounded_rectangle((60, 60, 170, 210), radius=12, fill=c, outline=_outline(c), width=3)


def cap(d: ImageDraw.ImageDraw, c: tuple[int, int, int]) -> None:
    d.pieslice((50, 70, 200, 220), 180, 360, fill=c, outline=_outline(c), width=3)
    d.rectangle((120, 140, 235, 155), fill=_outline(c))


def bag(d: ImageDraw.ImageDraw, c: tuple[int, int, int]) -> None:
    d.arc((85, 40, 170, 130), 180, 360, fill=_outline(c), width=8)
    d.rounded_rectangle((50, 85, 206, 215), radius=10, fill=c, outline=_outline(c), width=3)


def bottle(d: ImageDraw.ImageDraw, c: tuple[int, int, int]) -> None:
    d.rectangle((112, 30, 144, 60), fill=_outline(c))
    d.rounded_rectangle((90, 60, 166, 225), radius=20, fill=c, outline=_outline(c), width=3)


def sneaker(d: ImageDraw.ImageDraw, c: tuple[int, int, int]) -> None:
    d.polygon(
        [(40, 170), (60, 110), (110, 110), (150, 145), (215, 160), (220, 190), (40, 190)],
        fill=c,
        outline=_outline(c),
        width=3,
    )
    d.rectangle((40, 190, 222, 205), fill=(235, 235, 235), outline=(120, 120, 120))


PRODUCTS: dict[str, tuple[str, Draw, float]] = {
    "t-shirt": ("apparel", tshirt, 19.0),
    "mug": ("kitchen", mug, 9.5),
    "cap": ("accessories", cap, 14.0),
    "bag": ("accessories", bag, 39.0),
    "bottle": ("kitchen", bottle, 12.0),
    "sneaker": ("footwear", sneaker, 59.0),
}


def write_catalog(out: Path) -> Path:
    """Draw every product in every colour into ``out/images``; write ``out/catalog.csv`` and ``out/eval.jsonl``."""
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    manifest = out / "catalog.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "image", "product_id", "title", "category", "price", "color"])
        for product, (category, draw, price) in PRODUCTS.items():
            for colour, rgb in COLOURS.items():
                background = (250, 250, 250) if colour != "white" else (215, 225, 235)
                image = Image.new("RGB", (256, 256), background)
                draw(ImageDraw.Draw(image), rgb)
                name = f"{colour}-{product}"
                image.save(images / f"{name}.jpg", quality=92)
                writer.writerow(
                    [
                        name,
                        f"images/{name}.jpg",
                        product,
                        f"{colour.title()} {product}",
                        category,
                        f"{price:.2f}",
                        colour,
                    ]
                )
    write_eval_set(out / "eval.jsonl")
    return manifest


def write_eval_set(path: Path) -> Path:
    """A labelled set for `catalens eval`: one query per product and colour, and every item's product label."""
    rows: list[dict[str, object]] = []
    for product in PRODUCTS:
        for colour in COLOURS:
            rows.append({"query": f"a {colour} {product}", "relevant": [f"{colour}-{product}"]})
    for product in PRODUCTS:
        rows.extend({"id": f"{colour}-{product}", "label": product} for colour in COLOURS)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


if __name__ == "__main__":
    print(write_catalog(Path(sys.argv[1] if len(sys.argv) > 1 else ".demo")))

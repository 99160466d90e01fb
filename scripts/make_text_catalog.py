#!/usr/bin/env python
"""Generate a synthetic catalog of product shots with printed brand names, for measuring OCR-powered search.

    .venv/bin/python scripts/make_text_catalog.py --out /tmp/text-catalog --n 100 --seed 7

Each item is a product drawn with PIL (a box, bottle, can, jar, tube, bag or shoe in a named colour on a soft
background with a floor shadow) with an invented brand printed on it, the way packaging does it: in a
label or band, or straight on the product in a contrasting colour, in one of several DejaVu faces, at a
size that fits the print area, slightly rotated. About half the items also carry a model number
("XR-2040") and some a pack size ("500 ml"). Brands are pronounceable non-words built from syllables
("Zorvik", "Quendal"); each brand and model number is unique in the catalog.

Titles and descriptions describe the product ("Blue bottle, 500 ml") and never mention the brand or the
model number, so a query for a brand can only be answered from the pixels (OCR).

Writes into ``--out``:

* ``images/<id>.jpg`` and ``catalog.csv`` (``id,image,title,description,category,price``; image paths are
  relative to the CSV), the same columns as ``scripts/data/demo_catalog/catalog.csv`` minus ``brand``;
* ``eval.jsonl``: one retrieval query per item, ``{"query": "<brand>", "relevant": ["<id>"]}``, then one
  per model number (the format of ``search/evaluation.py``);
* ``printed.jsonl``: the ground truth per item, ``{"id", "brand", "model", "size", "printed": [...]}``
  (what ``scripts/bench_ocr.py`` scores against);
* with ``--no-text K``: ``notext/*.jpg``, K images without any text (plain products, gradients, noise
  textures) for counting false words.

Seeded: the same ``--seed``, ``--n`` and ``--size`` give the same files. Prints a one-line summary, or with
``--json`` one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = (
    "DejaVuSans-Bold.ttf",
    "DejaVuSans.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSans-BoldOblique.ttf",
)

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]

COLOURS: dict[str, RGB] = {
    "red": (200, 40, 45),
    "blue": (35, 80, 170),
    "green": (40, 140, 70),
    "yellow": (240, 200, 40),
    "orange": (235, 120, 30),
    "purple": (110, 50, 150),
    "pink": (235, 130, 170),
    "black": (30, 30, 34),
    "white": (242, 242, 238),
    "grey": (130, 132, 138),
    "teal": (20, 130, 130),
    "brown": (120, 75, 40),
}
BACKGROUNDS: tuple[RGB, ...] = (
    (236, 232, 224),
    (226, 236, 244),
    (240, 228, 232),
    (228, 240, 230),
    (210, 214, 220),
    (246, 240, 220),
    (70, 76, 90),
    (190, 200, 215),
)

# kind -> (noun in the title, category, pack sizes, price range)
KINDS: dict[str, tuple[str, str, tuple[str, ...], tuple[float, float]]] = {
    "box": ("box", "food", ("250 g", "500 g", "750 g", "1 kg"), (2.0, 12.0)),
    "bottle": ("bottle", "drinks", ("330 ml", "500 ml", "750 ml", "1 L"), (1.0, 25.0)),
    "can": ("can", "drinks", ("250 ml", "330 ml", "440 ml"), (0.8, 4.0)),
    "jar": ("jar", "food", ("200 g", "350 g", "450 g"), (2.0, 15.0)),
    "tube": ("tube", "cosmetics", ("50 ml", "75 ml", "100 ml", "150 ml"), (2.0, 30.0)),
    "bag": ("tote bag", "bags", (), (9.0, 80.0)),
    "shoe": ("sneaker", "shoes", (), (25.0, 160.0)),
}
DESCRIBE: dict[str, str] = {
    "box": "{article} {colour} carton box with a printed front panel",
    "bottle": "{article} {colour} bottle with a screw cap",
    "can": "{article} {colour} drinks can",
    "jar": "{article} {colour} glass jar with a metal lid",
    "tube": "{article} {colour} squeeze tube with a flip cap",
    "bag": "{article} {colour} canvas tote bag with two handles",
    "shoe": "{article} {colour} low-top sneaker with a white sole",
}
BG_WORDS = ("light", "pale", "soft", "neutral")
LINE_WORDS = ("Pro", "Plus", "Max", "Lite", "Classic", "Original", "Fresh")

ONSETS: tuple[str, ...] = ("b", "br", "d", "dr", "f", "g", "k", "kr", "l", "m", "n", "p", "qu", "r", "s", "st")
ONSETS += ("t", "tr", "v", "z", "x", "j", "th", "sk", "pl")
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "y", "ae", "io")
CODAS = ("", "", "", "n", "r", "l", "k", "x", "s", "v", "m", "nd", "rk", "lt")
RARE = set("zqxvkjy")
# Pronounceable syllable strings that happen to be English words; the rare-letter rule already makes
# these unlikely, this list catches the few that slip through.
NOT_BRANDS = frozenset(
    "taken token baker joker maker poker kayak vodka kilo kiwi zero zone zoom yoga yoke yolk vivid volt "
    "vortex vox jazz joke jury jump kind king kiss knot kite milk silk risk desk task mask bulk tusk "
    "lexicon vixen oxen index relax syntax tuxedo kin skin skim skip".split()
)


@dataclass(frozen=True)
class PrintedItem:
    """What one generated image shows, and what a perfect OCR engine should read from it."""

    id: str
    kind: str
    colour: str
    brand: str
    model: str | None
    size: str | None
    line_word: str | None = None

    @property
    def brand_line(self) -> str:
        """The brand as printed, sometimes followed by a product-line word on the same line ("Zorvik Pro")."""
        return f"{self.brand} {self.line_word}" if self.line_word else self.brand

    @property
    def printed(self) -> list[str]:
        return [t for t in (self.brand_line, self.model, self.size) if t]


# -- names -----------------------------------------------------------------------------------------------


def brand_name(rng: random.Random) -> str:
    """A pronounceable invented brand of 5-8 letters with at least one rare letter (z, q, x, v, k, j, y)."""
    while True:
        syllables = rng.choice((2, 2, 3))
        parts = []
        for i in range(syllables):
            coda = rng.choice(CODAS) if i == syllables - 1 or rng.random() < 0.3 else ""
            parts.append(rng.choice(ONSETS) + rng.choice(VOWELS) + coda)
        word = "".join(parts)
        if 5 <= len(word) <= 8 and RARE & set(word) and word not in NOT_BRANDS and not _awkward(word):
            return word.capitalize()


def _awkward(word: str) -> bool:
    # Three vowels or four consonants in a row read as noise, not as a name.
    vowels = set("aeiouy")
    run_v = run_c = 0
    for ch in word:
        run_v, run_c = (run_v + 1, 0) if ch in vowels else (0, run_c + 1)
        if run_v >= 3 or run_c >= 4:
            return True
    return False


def model_number(rng: random.Random) -> str:
    """A model number such as ``XR-2040``, ``KV310`` or ``T-85``."""
    letters = "ABCDEFGHKLMNPRSTVXZ"
    prefix = "".join(rng.choice(letters) for _ in range(rng.choice((1, 2, 2, 3))))
    digits = str(rng.randint(10, 9999))
    return f"{prefix}{rng.choice(('-', '-', ''))}{digits}"


def unique(make: object, rng: random.Random, taken: set[str]) -> str:
    while True:
        value = make(rng)  # type: ignore[operator]
        if value.lower() not in taken:
            taken.add(value.lower())
            return str(value)


# -- drawing ---------------------------------------------------------------------------------------------


def font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_DIR / name
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def shade(colour: RGB, factor: float) -> RGB:
    if factor >= 1:
        return tuple(round(c + (255 - c) * (factor - 1)) for c in colour)  # type: ignore[return-value]
    return tuple(round(c * factor) for c in colour)  # type: ignore[return-value]


def luminance(colour: RGB) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio, 1 (none) to 21 (black on white)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def background(size: int, colour: RGB, rng: random.Random) -> Image.Image:
    """A vertical gradient around ``colour`` with a soft floor shadow, like a studio product shot."""
    top, bottom = shade(colour, 1.06), shade(colour, 0.9)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    pixels = np.array(top, float) * (1 - ramp) + np.array(bottom, float) * ramp
    shot = Image.fromarray(np.repeat(pixels, size, axis=1).astype(np.uint8), "RGB")
    shadow = Image.new("L", (size, size), 0)
    cx = size // 2 + rng.randint(-size // 20, size // 20)
    ImageDraw.Draw(shadow).ellipse((cx - size * 0.3, size * 0.84, cx + size * 0.3, size * 0.92), fill=80)
    shot.paste((60, 60, 60), mask=shadow.filter(ImageFilter.GaussianBlur(size / 40)))
    return shot


def draw_product(shot: Image.Image, kind: str, colour: RGB, rng: random.Random) -> Box:
    """Draw one product; returns the print area (left, top, right, bottom) where a label can go."""
    s = shot.width
    d = ImageDraw.Draw(shot)
    dark, light = shade(colour, 0.75), shade(colour, 1.15)
    cx = s // 2 + rng.randint(-s // 25, s // 25)
    if kind == "box":
        w, h, depth = rng.uniform(0.45, 0.6) * s, rng.uniform(0.5, 0.62) * s, s * 0.07
        x0, y1 = cx - w / 2 - depth / 2, s * 0.88
        y0 = y1 - h
        d.polygon([(x0, y0), (x0 + depth, y0 - depth), (x0 + w + depth, y0 - depth), (x0 + w, y0)], fill=light)
        d.polygon([(x0 + w, y0), (x0 + w + depth, y0 - depth), (x0 + w + depth, y1 - depth), (x0 + w, y1)], fill=dark)
        d.rectangle((x0, y0, x0 + w, y1), fill=colour)
        return _box(x0 + w * 0.08, y0 + h * 0.12, x0 + w * 0.92, y1 - h * 0.1)
    if kind == "bottle":
        w, h = rng.uniform(0.3, 0.38) * s, rng.uniform(0.55, 0.62) * s
        y1 = s * 0.88
        y0 = y1 - h
        neck = w * 0.36
        d.rounded_rectangle((cx - w / 2, y0, cx + w / 2, y1), radius=w * 0.25, fill=colour)
        d.rectangle((cx - neck / 2, y0 - s * 0.12, cx + neck / 2, y0 + w * 0.2), fill=colour)
        d.rounded_rectangle((cx - neck * 0.6, y0 - s * 0.17, cx + neck * 0.6, y0 - s * 0.1), radius=4, fill=(240,) * 3)
        d.rectangle((cx - w / 2 + 4, y0 + h * 0.1, cx - w / 2 + w * 0.1, y1 - h * 0.1), fill=light)
        return _box(cx - w * 0.46, y0 + h * 0.22, cx + w * 0.46, y1 - h * 0.14)
    if kind == "can":
        w, h = rng.uniform(0.32, 0.4) * s, rng.uniform(0.5, 0.56) * s
        y1 = s * 0.88
        y0 = y1 - h
        d.rounded_rectangle((cx - w / 2, y0, cx + w / 2, y1), radius=w * 0.08, fill=colour)
        d.ellipse((cx - w / 2, y0 - w * 0.08, cx + w / 2, y0 + w * 0.08), fill=(200, 200, 205))
        d.rectangle((cx - w / 2, y0 + 8, cx + w / 2, y0 + 14), fill=dark)
        d.rectangle((cx - w / 2, y1 - 14, cx + w / 2, y1 - 8), fill=dark)
        return _box(cx - w * 0.46, y0 + h * 0.15, cx + w * 0.46, y1 - h * 0.12)
    if kind == "jar":
        w, h = rng.uniform(0.44, 0.52) * s, rng.uniform(0.4, 0.46) * s
        y1 = s * 0.88
        y0 = y1 - h
        d.rounded_rectangle((cx - w / 2, y0, cx + w / 2, y1), radius=w * 0.12, fill=colour)
        d.rounded_rectangle((cx - w * 0.47, y0 - s * 0.07, cx + w * 0.47, y0 + 4), radius=6, fill=(170, 170, 178))
        return _box(cx - w * 0.44, y0 + h * 0.12, cx + w * 0.44, y1 - h * 0.1)
    if kind == "tube":
        w, h = rng.uniform(0.36, 0.44) * s, rng.uniform(0.58, 0.64) * s
        y0 = s * 0.14
        y1 = y0 + h
        d.polygon([(cx - w / 2, y0), (cx + w / 2, y0), (cx + w * 0.3, y1), (cx - w * 0.3, y1)], fill=colour)
        d.rectangle((cx - w / 2, y0, cx + w / 2, y0 + s * 0.03), fill=dark)
        d.rounded_rectangle((cx - w * 0.22, y1 - 2, cx + w * 0.22, y1 + s * 0.08), radius=5, fill=(245,) * 3)
        return _box(cx - w * 0.4, y0 + h * 0.12, cx + w * 0.4, y0 + h * 0.6)
    if kind == "bag":
        w, h = rng.uniform(0.5, 0.6) * s, rng.uniform(0.44, 0.5) * s
        y1 = s * 0.88
        y0 = y1 - h
        hw = w * 0.22
        d.arc((cx - hw - w * 0.12, y0 - s * 0.2, cx - w * 0.12 + hw, y0 + s * 0.1), 180, 360, fill=dark, width=8)
        d.arc((cx + w * 0.12 - hw, y0 - s * 0.2, cx + w * 0.12 + hw, y0 + s * 0.1), 180, 360, fill=dark, width=8)
        d.polygon([(cx - w / 2, y0), (cx + w / 2, y0), (cx + w * 0.53, y1), (cx - w * 0.53, y1)], fill=colour)
        return _box(cx - w * 0.42, y0 + h * 0.12, cx + w * 0.42, y1 - h * 0.1)
    if kind == "shoe":
        w = rng.uniform(0.74, 0.82) * s
        x0, y1 = cx - w / 2, s * 0.86
        sole = s * 0.06
        upper = [
            (x0, y1 - sole),
            (x0 + w * 0.02, y1 - sole - s * 0.16),
            (x0 + w * 0.12, y1 - sole - s * 0.3),
            (x0 + w * 0.36, y1 - sole - s * 0.3),
            (x0 + w * 0.48, y1 - sole - s * 0.2),
            (x0 + w * 0.8, y1 - sole - s * 0.12),
            (x0 + w, y1 - sole - s * 0.04),
            (x0 + w, y1 - sole),
        ]
        d.polygon(upper, fill=colour)
        d.rounded_rectangle((x0 - 4, y1 - sole, x0 + w + 4, y1), radius=sole / 2, fill=(245, 245, 245))
        return _box(x0 + w * 0.1, y1 - sole - s * 0.2, x0 + w * 0.74, y1 - sole - s * 0.03)
    raise ValueError(f"unknown product kind {kind!r}; choose from {sorted(KINDS)}")


def _box(x0: float, y0: float, x1: float, y1: float) -> Box:
    return round(x0), round(y0), round(x1), round(y1)


def text_colour(ground: RGB, rng: random.Random) -> RGB:
    """A text colour readable on ``ground`` (contrast >= 3, like real packaging), sometimes a hue."""
    options = [c for c in COLOURS.values() if contrast(c, ground) >= 3.0]
    if options and rng.random() < 0.4:
        return rng.choice(options)
    return (20, 20, 24) if contrast((20, 20, 24), ground) >= contrast((250, 250, 250), ground) else (250, 250, 250)


def fit_font(
    text: str, face: str, max_w: float, max_h: float, lo: int, hi: int
) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The largest size in [lo, hi] at which ``text`` fits in max_w x max_h (``lo`` when nothing fits)."""
    for size in range(hi, lo - 1, -1):
        f = font(face, size)
        left, top, right, bottom = f.getbbox(text)
        if right - left <= max_w and bottom - top <= max_h:
            return f
    return font(face, lo)


def stamp(
    shot: Image.Image,
    text: str,
    f: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    centre: tuple[float, float],
    fill: RGB,
    angle: float,
) -> None:
    """Print ``text`` centred at ``centre``, rotated by ``angle`` degrees (counter-clockwise)."""
    left, top, right, bottom = f.getbbox(text)
    pad = 6
    layer = Image.new("L", (round(right - left) + 2 * pad, round(bottom - top) + 2 * pad), 0)
    ImageDraw.Draw(layer).text((pad - left, pad - top), text, font=f, fill=255)
    if angle:
        layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    x, y = round(centre[0] - layer.width / 2), round(centre[1] - layer.height / 2)
    shot.paste(fill, (x, y), mask=layer)


def render_item(item: PrintedItem, size: int, rng: random.Random) -> Image.Image:
    """The product shot for one catalog item, with its brand (and model number, pack size) printed on it."""
    colour = COLOURS[item.colour]
    ground = rng.choice([b for b in BACKGROUNDS if contrast(b, colour) > 1.3 or abs(sum(b) - sum(colour)) > 90])
    shot = background(size, ground, rng)
    x0, y0, x1, y1 = draw_product(shot, item.kind, colour, rng)
    d = ImageDraw.Draw(shot)
    face = rng.choice(FONT_FILES)
    brand = item.brand_line.upper() if rng.random() < 0.4 else item.brand_line
    angle = rng.uniform(-8, 8) if rng.random() < 0.6 else 0.0
    lines = 1 + (item.model is not None) + (item.size is not None)
    area_w, area_h = x1 - x0, y1 - y0
    brand_h = min(area_h / (lines + 0.6), size * 0.1)
    style = rng.choice(("label", "band", "direct")) if item.kind != "shoe" else "direct"
    if style == "label":
        ground_text: RGB = rng.choice(((250, 250, 248), (252, 246, 226), (235, 240, 245)))
        d.rounded_rectangle((x0, y0, x1, y1), radius=rng.choice((0, 6, 14)), fill=ground_text)
    elif style == "band":
        ground_text = rng.choice(((250, 250, 250), shade(colour, 0.55), (30, 30, 34)))
        band_y1 = y0 + brand_h * 1.7
        d.rectangle((x0 - 2, y0, x1 + 2, band_y1), fill=ground_text)
    else:
        ground_text = colour
    fill = text_colour(ground_text, rng)
    f_brand = fit_font(brand, face, area_w * 0.9, brand_h, 18, round(brand_h * 1.2))
    by = y0 + brand_h * 0.85 + rng.uniform(-0.1, 0.1) * brand_h
    stamp(shot, brand, f_brand, ((x0 + x1) / 2 + rng.uniform(-0.05, 0.05) * area_w, by), fill, angle)
    y = by + brand_h * 0.9
    small_h = brand_h * rng.uniform(0.5, 0.7)
    small_fill = fill if style in ("label", "direct") else text_colour(colour, rng)
    for extra in (item.model, item.size):
        if extra is None:
            continue
        f_small = fit_font(extra, rng.choice(FONT_FILES[:6]), area_w * 0.8, small_h, 15, max(16, round(small_h)))
        y += small_h * 0.9
        stamp(shot, extra, f_small, ((x0 + x1) / 2, y), small_fill, angle * 0.5)
        y += small_h * 0.5
    return photograph(shot, rng)


def photograph(shot: Image.Image, rng: random.Random) -> Image.Image:
    """What a camera adds: uneven light across the scene, sometimes a little blur, sensor grain."""
    size = shot.width
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    light = 1.0 + rng.uniform(0.05, 0.2) * (xx * math.cos(theta) + yy * math.sin(theta))
    pixels = np.asarray(shot, float) * light[..., None]
    pixels += np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(0, 4), pixels.shape)
    out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.4:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    return out


# -- images without text ---------------------------------------------------------------------------------


NO_TEXT_KINDS = ("product", "gradient", "noise", "blobs")


def render_no_text(kind: str, size: int, rng: random.Random) -> Image.Image:
    """An image with no text at all: a plain product, a gradient, a noise texture or soft colour blobs."""
    nprng = np.random.default_rng(rng.randrange(2**32))
    if kind == "product":
        shot = background(size, rng.choice(BACKGROUNDS), rng)
        draw_product(shot, rng.choice(sorted(KINDS)), rng.choice(list(COLOURS.values())), rng)
        return photograph(shot, rng)
    if kind == "gradient":
        a, b = (np.array(rng.choice(list(COLOURS.values())), float) for _ in range(2))
        theta = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
        t = np.clip(xx * math.cos(theta) + yy * math.sin(theta), 0, 1)[..., None]
        return Image.fromarray((a * (1 - t) + b * t).astype(np.uint8), "RGB")
    if kind == "noise":
        cells = rng.choice((8, 16, 32, 64))
        small = nprng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
        img = Image.fromarray(small, "RGB").resize((size, size), Image.Resampling.BICUBIC)
        grain = nprng.normal(0, rng.choice((4, 12, 24)), (size, size, 3))
        return Image.fromarray(np.clip(np.asarray(img, float) + grain, 0, 255).astype(np.uint8), "RGB")
    if kind == "blobs":
        img = Image.new("RGB", (size, size), rng.choice(BACKGROUNDS))
        d = ImageDraw.Draw(img)
        for _ in range(rng.randint(4, 10)):
            x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(size * 0.05, size * 0.25)
            d.ellipse((x - r, y - r, x + r, y + r), fill=rng.choice(list(COLOURS.values())))
        return img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 6)))
    raise ValueError(f"unknown no-text kind {kind!r}; choose from {NO_TEXT_KINDS}")


# -- the catalog -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    out: str
    items: int
    with_model: int
    with_size: int
    queries: int
    no_text: int
    seed: int


def plan(n: int, rng: random.Random) -> list[PrintedItem]:
    """Choose every item's product, colour and printed text (unique brands and model numbers)."""
    taken: set[str] = set()
    items = []
    kinds = sorted(KINDS)
    for i in range(n):
        kind = kinds[i % len(kinds)] if i < len(kinds) else rng.choice(kinds)
        colour = rng.choice(sorted(COLOURS))
        brand = unique(brand_name, rng, taken)
        model = unique(model_number, rng, taken) if rng.random() < 0.5 else None
        sizes = KINDS[kind][2]
        size = rng.choice(sizes) if sizes and rng.random() < 0.3 else None
        line_word = rng.choice(LINE_WORDS) if rng.random() < 0.2 else None
        items.append(PrintedItem(f"txt-{i + 1:04d}", kind, colour, brand, model, size, line_word))
    return items


def catalog_row(item: PrintedItem, rng: random.Random) -> dict[str, str]:
    noun, category, sizes, (low, high) = KINDS[item.kind]
    size = item.size or (rng.choice(sizes) if sizes else None)
    title = f"{item.colour.capitalize()} {noun}" + (f", {size}" if size else "")
    article = "An" if item.colour[0] in "aeiou" else "A"
    description = DESCRIBE[item.kind].format(article=article, colour=item.colour) + (f", {size}" if size else "") + "."
    description += f" Photographed on a {rng.choice(BG_WORDS)} studio background."
    return {
        "id": item.id,
        "image": f"images/{item.id}.jpg",
        "title": title,
        "description": description,
        "category": category,
        "price": f"{rng.uniform(low, high):.2f}",
    }


def generate(out: Path, n: int = 100, seed: int = 7, size: int = 480, no_text: int = 0) -> Summary:
    """Write the catalog, its eval set and ground truth (and ``no_text`` text-free images) into ``out``.

    Args:
        out: directory to write into (created; existing files of the same names are overwritten).
        n: number of catalog items.
        seed: random seed; the same arguments give the same files.
        size: side of the square images in pixels.
        no_text: number of images without text to write into ``out/notext``.

    Returns:
        What was written.
    """
    rng = random.Random(seed)
    items = plan(n, rng)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for item in items:
        item_rng = random.Random(f"{seed}:{item.id}")
        image = render_item(item, size, item_rng)
        image.save(out / "images" / f"{item.id}.jpg", quality=item_rng.randint(75, 92))
        row = catalog_row(item, item_rng)
        text = (row["title"] + " " + row["description"]).lower()
        assert item.brand.lower() not in text and (item.model or "\0").lower() not in text, row
        rows.append(row)
    with (out / "catalog.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    queries = [{"query": it.brand, "relevant": [it.id]} for it in items]
    queries += [{"query": it.model, "relevant": [it.id]} for it in items if it.model]
    (out / "eval.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    truth = [
        {"id": it.id, "brand": it.brand, "model": it.model, "size": it.size, "printed": it.printed} for it in items
    ]
    (out / "printed.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truth))
    if no_text:
        (out / "notext").mkdir(exist_ok=True)
        for i in range(no_text):
            kind = NO_TEXT_KINDS[i % len(NO_TEXT_KINDS)]
            img = render_no_text(kind, size, random.Random(f"{seed}:notext:{i}"))
            img.save(out / "notext" / f"{kind}-{i:03d}.jpg", quality=90)
    return Summary(
        out=str(out),
        items=len(items),
        with_model=sum(it.model is not None for it in items),
        with_size=sum(it.size is not None for it in items),
        queries=len(queries),
        no_text=no_text,
        seed=seed,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="directory to write the catalog into")
    parser.add_argument("--n", type=int, default=100, help="number of items (default 100)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", type=int, default=480, help="image side in pixels (default 480)")
    parser.add_argument("--no-text", type=int, default=0, metavar="K", help="also write K text-free images")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    args = parser.parse_args(argv)
    if args.n < 1 or args.size < 128:
        parser.error("--n must be >= 1 and --size >= 128")
    summary = generate(args.out, args.n, args.seed, args.size, args.no_text)
    if args.json:
        print(json.dumps(summary.__dict__))
    else:
        print(
            f"wrote {summary.items} items ({summary.with_model} with a model number, {summary.with_size} with a "
            f"pack size), {summary.queries} eval queries and {summary.no_text} text-free images to {summary.out}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

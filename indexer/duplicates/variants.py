"""The kinds of copy near-duplicate finding must catch, made from an image: for benchmarks and tests.

A shop's catalog gets the same photo several times over: re-saved as a smaller JPEG, scaled down, trimmed a
little, stamped with a shop's watermark, mirrored. :func:`make_variant` makes each kind from a picture, seeded,
so ``scripts/bench_duplicates.py`` can measure which kinds a threshold catches and tests can build small cases.
"""

from __future__ import annotations

import io
import random
from typing import Literal

from PIL import Image, ImageDraw, ImageOps

VariantKind = Literal["jpeg70", "resize50", "crop5", "watermark", "mirror"]
VARIANT_KINDS: tuple[VariantKind, ...] = ("jpeg70", "resize50", "crop5", "watermark", "mirror")


def make_variant(image: Image.Image, kind: str, seed: int = 0) -> tuple[Image.Image, str]:
    """A copy of ``image`` changed as ``kind`` says, and the file format to save it in (``JPEG`` or ``PNG``).

    Kinds: ``jpeg70`` re-encoded as JPEG at quality 70; ``resize50`` half the width and height; ``crop5`` 5 % of
    the width and height cut off (split at random between the two sides); ``watermark`` a small translucent
    text and logo stamped in a corner; ``mirror`` flipped left to right.

    Raises:
        ValueError: an unknown kind (the message lists the kinds).
    """
    rng = random.Random(seed)
    rgb = image.convert("RGB")
    width, height = rgb.size
    if kind == "jpeg70":
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=70)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), "JPEG"
    if kind == "resize50":
        return rgb.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.LANCZOS), "PNG"
    if kind == "crop5":
        cut_w, cut_h = round(width * 0.05), round(height * 0.05)
        left, top = rng.randint(0, cut_w), rng.randint(0, cut_h)
        return rgb.crop((left, top, width - (cut_w - left), height - (cut_h - top))), "PNG"
    if kind == "watermark":
        return _watermarked(rgb, rng), "PNG"
    if kind == "mirror":
        return ImageOps.mirror(rgb), "PNG"
    raise ValueError(f"unknown variant kind {kind!r}; choose one of {', '.join(VARIANT_KINDS)}")


def _watermarked(image: Image.Image, rng: random.Random) -> Image.Image:
    """A translucent ``© SHOP`` and a ring logo over about a fifth of the width, in a random corner."""
    width, height = image.size
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(8, width // 5)
    x = rng.choice((width // 30, width - size - width // 30))
    y = rng.choice((height // 30, height - size // 2 - height // 30))
    ring = max(2, size // 4)
    draw.ellipse((x, y, x + ring, y + ring), outline=(255, 255, 255, 170), width=max(1, ring // 5))
    draw.text((x + ring + 2, y), "© SHOP", fill=(255, 255, 255, 170), font_size=max(6, size // 5))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")

#!/usr/bin/env python
"""Microsoft's Fluent Emoji in 3D (photo-like shading) for catalens-mini, from npm ``@lobehub/fluent-emoji-3d``.

    .venv/bin/python scripts/fluent3d_data.py   # fetch (16 MB), decode, cache; prints a JSON summary

Why this module exists: the other emoji styles are flat vector drawings; the 3D renderings have lighting,
gloss and soft shadows, closer to a product shot. The package (MIT, LobeHub's packaging of Microsoft's
``fluentui-emoji`` 3D assets, themselves MIT) holds one 256×256 RGBA WebP per emoji, named by its
lower-case code points (``1f34e.webp``, ``0023-fe0f-20e3.webp``); skin-tone variants are separate files and
are left out, so each emoji appears once, as in ``mini_data``'s other styles.

The result is a ``mini_data.RenderedSet`` (hexcodes as ``emojibase-data`` spells them, RGBA at
``mini_data.RENDER_SIZE``), cached as ``renders/fluent-3d-v{SCHEMA}-{size}.npz``, so the trainer adds it to
``mini_data.training_sets(...)`` like any other style.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mini_data  # noqa: E402

SCHEMA_VERSION = 1
KEY = "fluent-3d"


@dataclass(frozen=True)
class RasterSet:
    """One npm package of raster emoji used for training."""

    key: str
    package: str
    licence: str
    author: str


FLUENT_3D = RasterSet(KEY, "@lobehub/fluent-emoji-3d@1.1.0", "MIT", "Microsoft Corporation (packaged by LobeHub)")

_SKIN_TONES = ("1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF")


def _bare(hexcode: str) -> str:
    """A hexcode without variation selectors, for matching spellings that differ only in FE0F."""
    return "-".join(part for part in hexcode.upper().split("-") if part != "FE0F")


def fluent3d_files(root: Path, emoji: dict[str, mini_data.Emoji]) -> Iterator[tuple[str, Path]]:
    """Yield (emojibase hexcode, WebP path) for each non-skin-tone asset that maps to a known emoji."""
    by_bare = {_bare(h): h for h in emoji}
    seen: set[str] = set()
    for path in sorted((root / "assets").glob("*.webp")):
        code = path.stem.upper().replace("_", "-")
        if any(tone in code.split("-") for tone in _SKIN_TONES):
            continue
        hexcode = code if code in emoji else by_bare.get(_bare(code))
        if hexcode is None or hexcode in seen:
            continue
        seen.add(hexcode)
        yield hexcode, path


def render_raster(path: Path, size: int = mini_data.RENDER_SIZE) -> np.ndarray:
    """A raster emoji as a ``size``×``size`` RGBA uint8 array (aspect kept, centred, premultiplied resize)."""
    from PIL import Image  # noqa: PLC0415 - only the data pipeline decodes

    with Image.open(path) as opened:
        image = opened.convert("RGBA")
    w, h = image.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = image.convert("RGBa").resize(new, Image.Resampling.LANCZOS).convert("RGBA")
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(image, ((size - new[0]) // 2, (size - new[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def _render_one(job: tuple[str, str, int]) -> tuple[str, np.ndarray | None]:
    hexcode, path, size = job
    try:
        return hexcode, render_raster(Path(path), size)
    except Exception:  # noqa: BLE001 - one broken file is skipped, the set goes on
        return hexcode, None


def cache_path(cache: Path, size: int = mini_data.RENDER_SIZE) -> Path:
    """Where the decoded set is cached."""
    return cache / "renders" / f"{KEY}-v{SCHEMA_VERSION}-{size}.npz"


def fluent3d_set(
    cache: Path, emoji: dict[str, mini_data.Emoji], size: int = mini_data.RENDER_SIZE, workers: int = 2
) -> mini_data.RenderedSet:
    """The Fluent 3D style as a ``RenderedSet``, fetched from npm and decoded once, then loaded from the cache."""
    path = cache_path(cache, size)
    if path.exists():
        with np.load(path) as data:
            return mini_data.RenderedSet(KEY, [str(h) for h in data["hexcodes"]], data["images"])
    root = mini_data.npm_fetch(FLUENT_3D.package, cache)
    jobs = [(h, str(p), size) for h, p in fluent3d_files(root, emoji)]
    with ProcessPoolExecutor(workers) as pool:
        rendered = [(h, a) for h, a in pool.map(_render_one, jobs, chunksize=32) if a is not None]
    hexcodes = [h for h, _ in rendered]
    images = np.stack([a for _, a in rendered]) if rendered else np.zeros((0, size, size, 4), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, hexcodes=np.array(hexcodes), images=images)
    tmp.replace(path)
    return mini_data.RenderedSet(KEY, hexcodes, images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path(".cache/catalens-mini"))
    parser.add_argument("--size", type=int, default=mini_data.RENDER_SIZE)
    args = parser.parse_args(argv)
    emoji = mini_data.load_emoji(args.cache)
    rendered = fluent3d_set(args.cache, emoji, args.size)
    summary = {
        "package": FLUENT_3D.package,
        "licence": FLUENT_3D.licence,
        "author": FLUENT_3D.author,
        "images": len(rendered.hexcodes),
        "size": args.size,
        "groups": {
            group: sum(1 for h in rendered.hexcodes if emoji[h].group == group) for group in mini_data.GROUP_NAMES
        },
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

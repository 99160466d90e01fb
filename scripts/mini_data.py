"""Data for catalens-mini: openly licensed emoji art from npm, rendered and labelled.

Why this module exists: catalens-mini must be trainable on a machine that reaches
only the package registries. Every image here comes from an npm package pinned
below, with its licence recorded, and every text comes from Unicode CLDR names
and keywords as packaged by ``emojibase-data`` (MIT).

Two roles, kept strictly apart:

* **training styles** (``TRAIN_SETS``): Twemoji, Noto (two generations), Fluent
  (flat, colour, high contrast), EmojiOne, FxEmoji, Streamline. Permissive
  licences only (MIT, Apache-2.0, CC-BY-4.0).
* **held-out style** (``HELD_OUT``): OpenMoji (CC-BY-SA-4.0) from its own npm
  package. It is used for evaluation only and never enters training.

Rendered images are cached as ``uint8`` RGBA arrays in one ``.npz`` per set, so
training runs do not repeat the SVG rendering.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
RENDER_SIZE = 96

EMOJIBASE = "emojibase-data@17.0.0"
HELD_OUT = "openmoji@17.0.0"


@dataclass(frozen=True)
class IconSet:
    """One npm package of SVG icons used for training."""

    key: str
    package: str
    licence: str
    author: str


TRAIN_SETS: tuple[IconSet, ...] = (
    IconSet("twemoji", "@iconify-json/twemoji@1.2.5", "CC-BY-4.0", "Twitter, Inc and other contributors"),
    IconSet("noto", "@iconify-json/noto@1.2.9", "Apache-2.0", "Google Inc"),
    IconSet("noto-v1", "@iconify-json/noto-v1@1.2.5", "Apache-2.0", "Google Inc"),
    IconSet("fluent-flat", "@iconify-json/fluent-emoji-flat@1.2.6", "MIT", "Microsoft Corporation"),
    IconSet("fluent", "@iconify-json/fluent-emoji@1.2.7", "MIT", "Microsoft Corporation"),
    IconSet("fluent-hc", "@iconify-json/fluent-emoji-high-contrast@1.2.6", "MIT", "Microsoft Corporation"),
    IconSet("emojione", "@iconify-json/emojione@1.2.3", "CC-BY-4.0", "Emoji One"),
    IconSet("fxemoji", "@iconify-json/fxemoji@1.2.2", "Apache-2.0", "Mozilla"),
    IconSet("streamline", "@iconify-json/streamline-emojis@1.2.4", "CC-BY-4.0", "Streamline"),
)

#: Styles a run may add (``train_mini.py --extra-style KEY``), each measured before it joins ``TRAIN_SETS``.
EXTRA_SETS: tuple[IconSet, ...] = (
    # Black-on-white line art and silhouettes of about 1,100 emoji: shape without colour.
    IconSet("emojione-mono", "@iconify-json/emojione-monotone@1.2.1", "CC-BY-4.0", "Emoji One"),
)

#: Emoji groups as CLDR names them, in a form people type.
GROUP_NAMES: dict[str, str] = {
    "smileys-emotion": "smileys and emotion",
    "people-body": "people and body",
    "animals-nature": "animals and nature",
    "food-drink": "food and drink",
    "travel-places": "travel and places",
    "activities": "activities",
    "objects": "objects",
    "symbols": "symbols",
    "flags": "flags",
}

_SKIN = re.compile(r"-(light|medium-light|medium|medium-dark|dark)(-skin-tone)?$")


@dataclass(frozen=True)
class Emoji:
    """Names and keywords of one Unicode emoji (skin tones folded into the base)."""

    hexcode: str
    label: str
    group: str
    subgroup: str
    tags: tuple[str, ...] = field(default=())
    shortcodes: tuple[str, ...] = field(default=())


def clean_label(label: str) -> str:
    """A CLDR label as people would type it: ``flag: Germany`` → ``flag of Germany``."""
    return label.replace("flag: ", "flag of ").replace(": ", " ").replace(":", "")


def slug(text: str) -> str:
    """Iconify-style slug: lower case words joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def npm_dir(spec: str, cache: Path) -> Path:
    """Where :func:`npm_fetch` extracts an npm package (its ``package/`` folder lies inside)."""
    return cache / "npm" / spec.replace("@", "").replace("/", "-")


def npm_fetch(spec: str, cache: Path) -> Path:
    """Return the extracted ``package/`` directory of an npm package, fetching it once."""
    target = npm_dir(spec, cache)
    if (target / "package" / "package.json").exists():
        return target / "package"
    (cache / "npm").mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        ["npm", "pack", spec, "--silent", "--pack-destination", str(cache / "npm")],
        check=True,
        capture_output=True,
        text=True,
    )
    tgz = cache / "npm" / out.stdout.strip().splitlines()[-1]
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz) as tar:
        tar.extractall(target, filter="data")
    tgz.unlink()
    return target / "package"


def load_emoji(cache: Path) -> dict[str, Emoji]:
    """All fully qualified emoji by upper-case hexcode, with CLDR labels, tags and shortcodes."""
    root = npm_fetch(EMOJIBASE, cache)
    meta = json.loads((root / "meta" / "groups.json").read_text())
    groups, subgroups = meta["groups"], meta["subgroups"]
    shortcodes: dict[str, list[str]] = {}
    for source in ("cldr.json", "github.json", "emojibase.json"):
        for hexcode, codes in json.loads((root / "en" / "shortcodes" / source).read_text()).items():
            codes = [codes] if isinstance(codes, str) else codes
            shortcodes.setdefault(hexcode, []).extend(c.replace("_", " ") for c in codes)
    result: dict[str, Emoji] = {}
    for row in json.loads((root / "en" / "data.json").read_text()):
        group = groups.get(str(row.get("group")))
        if group not in GROUP_NAMES:
            continue
        codes = tuple(dict.fromkeys(c for c in shortcodes.get(row["hexcode"], []) if c != row["label"]))
        result[row["hexcode"]] = Emoji(
            hexcode=row["hexcode"],
            label=row["label"],
            group=group,
            subgroup=subgroups.get(str(row.get("subgroup")), ""),
            tags=tuple(row.get("tags", ())),
            shortcodes=codes,
        )
    return result


def _svg(icon: dict[str, object], width: int, height: int) -> str:
    """A standalone SVG document from an Iconify icon entry."""
    left, top = icon.get("left", 0), icon.get("top", 0)
    w, h = icon.get("width", width), icon.get("height", height)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'viewBox="{left} {top} {w} {h}" width="{w}" height="{h}">{icon["body"]}</svg>'
    )


def iconify_icons(root: Path, emoji: dict[str, Emoji]) -> Iterator[tuple[str, str]]:
    """Yield (hexcode, svg) for every icon of an Iconify set that maps to a known emoji.

    Icons are matched by the set's ``chars.json`` when present, else by slug of
    the CLDR label. Skin-tone variants are skipped, so each emoji appears once
    per style.
    """
    data = json.loads((root / "icons.json").read_text())
    chars_path = root / "chars.json"
    by_name: dict[str, str] = {}
    if chars_path.exists():
        for hexcode, name in json.loads(chars_path.read_text()).items():
            by_name.setdefault(name, hexcode.upper())
    by_slug = {slug(e.label): e.hexcode for e in emoji.values()}
    for hexcode, e in emoji.items():
        for code in e.shortcodes:
            by_slug.setdefault(slug(code), hexcode)
    width, height = int(data.get("width", 16)), int(data.get("height", 16))
    seen: set[str] = set()
    for name, icon in data["icons"].items():
        if _SKIN.search(name) and not name.endswith("skin-tone"):
            continue
        hexcode = by_name.get(name) or by_slug.get(name) or by_slug.get(name.replace("-face", ""))
        if hexcode is None:
            continue
        hexcode = hexcode.removesuffix("-FE0F")
        if hexcode not in emoji:
            hexcode += "-FE0F"
        if hexcode not in emoji or hexcode in seen:
            continue
        seen.add(hexcode)
        yield hexcode, _svg(icon, width, height)


def openmoji_icons(cache: Path, emoji: dict[str, Emoji]) -> Iterator[tuple[str, str]]:
    """Yield (hexcode, svg) for the standard emoji of the held-out OpenMoji style."""
    root = npm_fetch(HELD_OUT, cache)
    for row in json.loads((root / "data" / "openmoji.json").read_text()):
        if row["skintone"] or row["group"] not in GROUP_NAMES:
            continue
        hexcode = row["hexcode"]
        if hexcode not in emoji:
            continue
        path = root / "color" / "svg" / f"{hexcode}.svg"
        if path.exists():
            yield hexcode, path.read_text()


def render_svg(svg: str, size: int = RENDER_SIZE) -> np.ndarray:
    """Render an SVG to a ``size``×``size`` RGBA uint8 array (aspect kept, centred)."""
    import cairosvg  # noqa: PLC0415 - only the data pipeline needs cairo
    from PIL import Image  # noqa: PLC0415

    png = cairosvg.svg2png(bytestring=svg.encode(), output_width=size, output_height=size)
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    return np.asarray(image, dtype=np.uint8)


def _render_one(item: tuple[str, str]) -> tuple[str, np.ndarray | None]:
    hexcode, svg = item
    try:
        return hexcode, render_svg(svg)
    except Exception:  # noqa: BLE001 - a broken SVG is skipped, the set goes on
        return hexcode, None


@dataclass
class RenderedSet:
    """Rendered images of one style: ``images[i]`` shows emoji ``hexcodes[i]``."""

    key: str
    hexcodes: list[str]
    images: np.ndarray  # (n, size, size, 4) uint8


def render_path(key: str, cache: Path) -> Path:
    """The cached renders of one style (see :func:`render_set`)."""
    return cache / "renders" / f"{key}-v{SCHEMA_VERSION}-{RENDER_SIZE}.npz"


def render_set(key: str, icons: Iterator[tuple[str, str]], cache: Path, workers: int = 2) -> RenderedSet:
    """Render a set once and cache it as ``renders/{key}-v{schema}-{size}.npz``."""
    path = render_path(key, cache)
    if path.exists():
        with np.load(path) as data:
            return RenderedSet(key, [str(h) for h in data["hexcodes"]], data["images"])
    items = list(icons)
    with ProcessPoolExecutor(workers) as pool:
        rendered = [(h, a) for h, a in pool.map(_render_one, items, chunksize=32) if a is not None]
    hexcodes = [h for h, _ in rendered]
    images = np.stack([a for _, a in rendered]) if rendered else np.zeros((0, RENDER_SIZE, RENDER_SIZE, 4), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, hexcodes=np.array(hexcodes), images=images)
    return RenderedSet(key, hexcodes, images)


def training_sets(
    cache: Path, emoji: dict[str, Emoji], workers: int = 2, extra: tuple[str, ...] = ()
) -> list[RenderedSet]:
    """Every training style, and the ``extra`` ones named by key, rendered (cached after the first call)."""
    known = {s.key: s for s in EXTRA_SETS}
    unknown = [key for key in extra if key not in known]
    if unknown:
        raise ValueError(f"unknown extra style {unknown[0]!r}; known: {', '.join(known)}")
    sets = []
    for icon_set in (*TRAIN_SETS, *(known[key] for key in extra)):
        root = npm_fetch(icon_set.package, cache)
        sets.append(render_set(icon_set.key, iconify_icons(root, emoji), cache, workers))
    return sets


def held_out_set(cache: Path, emoji: dict[str, Emoji], workers: int = 2) -> RenderedSet:
    """The OpenMoji style, rendered; evaluation only."""
    return render_set("openmoji", openmoji_icons(cache, emoji), cache, workers)

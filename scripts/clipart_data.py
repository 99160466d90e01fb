#!/usr/bin/env python
"""Clip art for catalens-mini: Debian's openclipart, titled, filtered, split by author and cached.

    .venv/bin/python scripts/clipart_data.py            # build the cache (about a minute), print the summary
    .venv/bin/python scripts/clipart_data.py --size 96  # another size

Why this module exists: emoji are one narrow kind of picture. Debian's ``openclipart-png`` (pixels) and
``openclipart-svg`` (the same drawings with their Dublin Core metadata: title, author, keywords) are public
domain drawings of everyday things by hundreds of hands, installable with ``apt-get`` on this machine.

What it does:

* **texts** – title, keywords, description and author from the SVG of the same drawing, cleaned to what a
  person types (``clipart_meta``: "Apple (B and W)" → "apple"; a missing, templated or author-only title
  falls back to the file name without its author, ``apple_bitten_dan_gerhard_01.png`` → "apple bitten",
  then to a keyword or the folder phrase). One author titles in Italian: their drawings keep the pictures
  but take an English keyword or the folder phrase as title, and are never held out.
* **pictures of things** – folders of abstract shapes, desktop icons, signs, flags, maps, patterns and logos
  are dropped, as are road signs and desktop icons filed elsewhere (``clipart_meta.DROPPED``,
  ``DROPPED_KEYWORDS``, each with its reason); a drawing filed in several folders (Debian ships symlinks)
  is one image with every folder's category phrases ("food", "fruit").
* **held-out slice** – whole authors, never random images (:func:`choose_held_out`): authors are taken in
  a fixed hash order, first until every zero-shot kind has 10 held-out images, then until about 12 % of
  the kept images are held out. Its images carry a plain-English kind ("animal", "food", "vehicle", ...;
  ``clipart_meta.KIND_BY_FOLDER``) for zero-shot evaluation.
* **cache** – RGBA ``uint8`` arrays (alpha kept, cropped to the drawing, centred, aspect kept) in one
  ``.npz`` per split and size under ``{cache}/renders/``, with the schema version and package versions;
  loading takes about a second.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clipart_meta import (  # noqa: E402
    DROPPED,
    KINDS,
    ClipartRecord,
    SvgMeta,
    clean_author,
    drop_reason,
    keyword_drop_reason,
    make_record,
    matching_prefix,
    non_english,
    parse_svg_metadata,
    template_titles,
    word_list,
)

SCHEMA_VERSION = 1
STORE_SIZE = 128  # the trainer may resize to 96–128; smaller sizes are rendered from the PNGs, not upscaled

PNG_ROOT = Path("/usr/share/openclipart/png")
SVG_ROOT = Path("/usr/share/openclipart/svg")

Split = Literal["train", "held_out"]
SPLITS: tuple[Split, ...] = ("train", "held_out")


@dataclass(frozen=True)
class DebianSource:
    """Where the clip art comes from, for the model card."""

    packages: tuple[str, ...]
    licence: str
    upstream: str
    copyright_file: str


SOURCE = DebianSource(
    packages=("openclipart-png", "openclipart-svg"),
    licence="public domain (Creative Commons Public Domain Dedication / Certification, per debian/copyright)",
    upstream="https://openclipart.org (release 0.18, as packaged by Debian)",
    copyright_file="/usr/share/doc/openclipart-png/copyright",
)

HELD_OUT_SALT = "catalens-clipart-held-out-v1"
HELD_OUT_FRACTION = 0.12
HELD_OUT_MIN_PER_KIND = 10
HELD_OUT_MAX_AUTHOR_SHARE = 0.03  # a prolific author would make the slice one person's style


@dataclass(frozen=True)
class ClipartSet:
    """One cached split: ``images[i]`` is drawing ``paths[i]`` with ``titles[i]`` and so on."""

    split: str
    size: int
    images: np.ndarray  # (n, size, size, 4) uint8 RGBA, transparent background
    paths: list[str]
    titles: list[str]
    title_sources: list[str]
    keywords: list[list[str]]
    descriptions: list[str]
    categories: list[list[str]]
    kinds: list[str | None]
    authors: list[str]
    source: dict[str, object] = field(default_factory=dict)  # packages, versions, licence, counts

    def __len__(self) -> int:
        return len(self.paths)

    def texts(self, i: int) -> list[str]:
        """Training texts of image ``i``: title, keywords, category phrases."""
        return list(dict.fromkeys([self.titles[i], *self.keywords[i], *self.categories[i]]))


# -- scanning ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """Every PNG of the tree, grouped by real file, with its metadata and what was dropped."""

    records: list[ClipartRecord]
    dropped: dict[str, int]  # reason -> images
    files: int  # PNG paths, symlinks included
    unique: int  # real files after removing symlinks and byte-identical copies


def _read_meta(svg_path: Path) -> SvgMeta:
    try:
        return parse_svg_metadata(svg_path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return SvgMeta()


def scan(png_root: Path = PNG_ROOT, svg_root: Path = SVG_ROOT) -> Scan:
    """Walk ``png_root``, read each drawing's SVG metadata from ``svg_root``, clean titles, drop folders.

    A drawing filed in several folders (symlinks) or shipped twice (identical bytes) becomes one record
    whose ``folders`` lists every place; it is dropped only when every place is dropped.
    """
    paths = sorted(p for p in png_root.rglob("*.png") if p.is_file())
    digests: dict[Path, str] = {}
    merged: dict[str, list[Path]] = {}
    for path in paths:
        real = path.resolve()
        if real not in digests:
            digests[real] = hashlib.sha1(real.read_bytes()).hexdigest()
        merged.setdefault(digests[real], []).append(path)
    metas: dict[str, SvgMeta] = {}
    for members in merged.values():
        real = min((m for m in members if not m.is_symlink()), default=members[0], key=lambda p: str(p))
        rel = real.relative_to(png_root).as_posix()
        metas[rel] = _read_meta(svg_root / Path(rel).with_suffix(".svg"))
    authors = sorted({a for a in (clean_author(m.creator) for m in metas.values()) if a and len(word_list(a)) <= 4})
    templates = template_titles(metas, authors)
    records: list[ClipartRecord] = []
    dropped: Counter[str] = Counter()
    for members in merged.values():
        real = min((m for m in members if not m.is_symlink()), default=members[0], key=lambda p: str(p))
        rel = real.relative_to(png_root).as_posix()
        folders = [Path(rel).parent.as_posix()] + sorted(
            {m.relative_to(png_root).parent.as_posix() for m in members} - {Path(rel).parent.as_posix()}
        )
        reasons = [drop_reason(f) for f in folders]
        if all(reasons):
            dropped[matching_prefix(folders[0], DROPPED) or "?"] += 1
            continue
        by_keyword = keyword_drop_reason(metas[rel])
        if by_keyword:
            dropped[f"keyword: {by_keyword}"] += 1
            continue
        kept_folders = tuple(f for f, r in zip(folders, reasons, strict=True) if r is None)
        records.append(make_record(rel, kept_folders, metas[rel], authors, templates))
    return Scan(records=records, dropped=dict(sorted(dropped.items())), files=len(paths), unique=len(merged))


# -- the held-out slice -----------------------------------------------------------------------------------


def choose_held_out(
    records: Sequence[ClipartRecord],
    fraction: float = HELD_OUT_FRACTION,
    min_per_kind: int = HELD_OUT_MIN_PER_KIND,
    max_author_share: float = HELD_OUT_MAX_AUTHOR_SHARE,
    salt: str = HELD_OUT_SALT,
) -> set[str]:
    """The authors whose drawings form the held-out slice (deterministic; whole authors only).

    Authors are ordered by a salted hash of their name. First, for each kind in ``clipart_meta.KINDS``, the next
    authors who drew that kind are added until it has ``min_per_kind`` held-out images; then authors are
    added in the same order until ``fraction`` of the images are held out. Unknown authors, authors with
    more than ``max_author_share`` of the images and ``clipart_meta.NON_ENGLISH_TITLES`` always stay in training.
    """
    by_author: dict[str, list[ClipartRecord]] = {}
    for record in records:
        if record.author and not non_english(record.author):
            by_author.setdefault(record.author, []).append(record)
    cap = max(1, int(max_author_share * len(records)))
    order = sorted(
        (a for a, rs in by_author.items() if len(rs) <= cap),
        key=lambda a: hashlib.sha256(f"{salt}:{a}".encode()).hexdigest(),
    )
    chosen: set[str] = set()
    per_kind: Counter[str] = Counter()
    total = 0

    def take(author: str) -> None:
        nonlocal total
        chosen.add(author)
        total += len(by_author[author])
        per_kind.update(r.kind for r in by_author[author] if r.kind)

    for kind in KINDS:
        for author in order:
            if per_kind[kind] >= min_per_kind:
                break
            if author not in chosen and any(r.kind == kind for r in by_author[author]):
                take(author)
    target = fraction * len(records)
    for author in order:
        if total >= target:
            break
        if author not in chosen and total + len(by_author[author]) <= target * 1.25:
            take(author)
    return chosen


def split_records(records: Sequence[ClipartRecord]) -> dict[Split, list[ClipartRecord]]:
    """Train and held-out records (held out: every drawing of the authors :func:`choose_held_out` picks)."""
    held = choose_held_out(records)
    return {
        "train": [r for r in records if r.author not in held],
        "held_out": [r for r in records if r.author in held],
    }


# -- rendering and the cache ------------------------------------------------------------------------------


#: PNGs larger than this are rendered from their SVG instead (a few are 10,000×16,000 px: decoding one
#: takes 650 MB and seconds, and Pillow's decompression-bomb guard, which stays on, refuses the largest).
MAX_PNG_PIXELS = 40_000_000


def _fit(image: object, size: int) -> np.ndarray:
    """Crop an RGBA image to its opaque part and fit it, centred and aspect kept, in a transparent square.

    Cropping makes a drawing fill the frame as an emoji fills its viewBox (the trainer picks the scale);
    resizing is done on premultiplied alpha so transparent pixels do not bleed dark fringes.
    """
    from PIL import Image  # noqa: PLC0415 - only the data pipeline decodes

    assert isinstance(image, Image.Image)
    box = image.getchannel("A").getbbox()
    if box is not None:
        image = image.crop(box)
    w, h = image.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = image.convert("RGBa").resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0).convert("RGBA")
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(image, ((size - new[0]) // 2, (size - new[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header, without decoding it (Pillow's open already checks the size)."""
    with path.open("rb") as handle:
        head = handle.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def render_png(path: Path, size: int = STORE_SIZE, svg: Path | None = None) -> np.ndarray:
    """A drawing as a ``size``×``size`` RGBA uint8 array: cropped to its opaque part, aspect kept, centred.

    A PNG over :data:`MAX_PNG_PIXELS` is drawn from ``svg`` (the same drawing) at four times ``size``.

    Raises:
        OSError, ValueError: the file cannot be decoded (or is too large and has no SVG).
    """
    from PIL import Image  # noqa: PLC0415 - only the data pipeline decodes

    w, h = png_size(path)
    if w * h <= MAX_PNG_PIXELS:
        with Image.open(path) as opened:
            return _fit(opened.convert("RGBA"), size)
    if svg is None or not svg.exists():
        raise ValueError(f"{path} has {w * h} pixels and no SVG to draw it from")
    import cairosvg  # noqa: PLC0415 - only the data pipeline needs cairo

    scale = 4 * size / max(w, h)
    png = cairosvg.svg2png(url=str(svg), output_width=max(1, round(w * scale)), output_height=max(1, round(h * scale)))
    with Image.open(io.BytesIO(png)) as drawn:
        return _fit(drawn.convert("RGBA"), size)


def _render_one(job: tuple[str, str, int]) -> np.ndarray | None:
    path, svg, size = job
    try:
        return render_png(Path(path), size, Path(svg))
    except Exception:  # noqa: BLE001 - one broken drawing is skipped, the set goes on
        return None


def package_versions(packages: Sequence[str] = SOURCE.packages) -> dict[str, str]:
    """Installed Debian versions (``dpkg-query -W``); a package that is not installed maps to ``""``."""
    versions = {}
    for package in packages:
        try:
            out = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
            )
            versions[package] = out.stdout.strip() if out.returncode == 0 else ""
        except OSError:
            versions[package] = ""
    return versions


def cache_path(cache: Path, split: Split, size: int) -> Path:
    """Where a split's arrays are cached."""
    return cache / "renders" / f"clipart-{split}-v{SCHEMA_VERSION}-{size}.npz"


def build_cache(
    cache: Path,
    size: int = STORE_SIZE,
    png_root: Path = PNG_ROOT,
    svg_root: Path = SVG_ROOT,
    workers: int = 2,
) -> dict[str, object]:
    """Scan, split, render and write both splits' ``.npz`` files; returns the summary (counts, source).

    Raises:
        FileNotFoundError: ``png_root`` is missing (install ``openclipart-png``).
    """
    if not png_root.is_dir():
        raise FileNotFoundError(f"{png_root} is missing: apt-get install {' '.join(SOURCE.packages)}")
    result = scan(png_root, svg_root)
    splits = split_records(result.records)
    summary = _summary(result, splits)
    for split, records in splits.items():
        jobs = [(str(png_root / r.path), str(svg_root / Path(r.path).with_suffix(".svg")), size) for r in records]
        with ProcessPoolExecutor(workers) as pool:
            arrays = list(pool.map(_render_one, jobs, chunksize=16))
        kept = [(r, a) for r, a in zip(records, arrays, strict=True) if a is not None]
        images = np.stack([a for _, a in kept]) if kept else np.zeros((0, size, size, 4), np.uint8)
        rows = [r for r, _ in kept]
        path = cache_path(cache, split, size)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(
            tmp,
            images=images,
            paths=np.array([r.path for r in rows], dtype=str),
            titles=np.array([r.title for r in rows], dtype=str),
            title_sources=np.array([r.title_source for r in rows], dtype=str),
            keywords=np.array(["|".join(r.keywords) for r in rows], dtype=str),
            descriptions=np.array([r.description for r in rows], dtype=str),
            categories=np.array(["|".join(r.categories) for r in rows], dtype=str),
            kinds=np.array([r.kind or "" for r in rows], dtype=str),
            authors=np.array([r.author for r in rows], dtype=str),
            source=np.array(json.dumps(summary)),
            schema=np.array(SCHEMA_VERSION),
        )
        tmp.replace(path)
    return summary


def _summary(result: Scan, splits: dict[Split, list[ClipartRecord]]) -> dict[str, object]:
    held = splits["held_out"]
    return {
        "packages": list(SOURCE.packages),
        "versions": package_versions(),
        "licence": SOURCE.licence,
        "upstream": SOURCE.upstream,
        "schema": SCHEMA_VERSION,
        "png_files": result.files,
        "unique_images": result.unique,
        "dropped": result.dropped,
        "kept": len(result.records),
        "kept_by_folder": dict(sorted(Counter(r.folders[0].split("/")[0] for r in result.records).items())),
        "train": len(splits["train"]),
        "held_out": len(held),
        "held_out_authors": len({r.author for r in held}),
        "held_out_kinds": dict(sorted(Counter(r.kind for r in held if r.kind).items())),
        "held_out_titles": len({r.title for r in held}),
        "title_sources": dict(Counter(r.title_source for r in result.records)),
    }


def load_clipart(
    cache: Path,
    split: Split = "train",
    size: int = STORE_SIZE,
    png_root: Path = PNG_ROOT,
    svg_root: Path = SVG_ROOT,
    workers: int = 2,
) -> ClipartSet:
    """One split of the clip art at ``size`` px, built and cached on first use.

    Raises:
        FileNotFoundError: no cache and no ``png_root`` to build it from.
        ValueError: an unknown split.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    path = cache_path(cache, split, size)
    if not path.exists():
        build_cache(cache, size, png_root, svg_root, workers)
    with np.load(path) as data:
        if int(data["schema"]) != SCHEMA_VERSION:  # the file name carries the version; this guards renames
            raise ValueError(f"{path} has schema {int(data['schema'])}, expected {SCHEMA_VERSION}: delete it")

        def split_list(name: str) -> list[list[str]]:
            return [s.split("|") if s else [] for s in data[name].tolist()]

        return ClipartSet(
            split=split,
            size=size,
            images=data["images"],
            paths=data["paths"].tolist(),
            titles=data["titles"].tolist(),
            title_sources=data["title_sources"].tolist(),
            keywords=split_list("keywords"),
            descriptions=data["descriptions"].tolist(),
            categories=split_list("categories"),
            kinds=[k or None for k in data["kinds"].tolist()],
            authors=data["authors"].tolist(),
            source=json.loads(str(data["source"])),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path(".cache/catalens-mini"))
    parser.add_argument("--size", type=int, default=STORE_SIZE)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rebuild", action="store_true", help="render again even when cached")
    args = parser.parse_args(argv)
    if args.rebuild or not all(cache_path(args.cache, s, args.size).exists() for s in SPLITS):
        summary = build_cache(args.cache, args.size, workers=args.workers)
    else:
        summary = load_clipart(args.cache, "held_out", args.size).source
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

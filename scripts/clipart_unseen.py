"""Clip art that catalens-mini never saw, by folder: the pool the clip-art benchmarks draw from.

Why: catalens-mini is trained on the *training split* of Debian's openclipart (``clipart_data``: every kept
drawing except those of a few whole authors held out). A benchmark that takes PNGs straight from
``/usr/share/openclipart/png/<folder>`` measures the model partly on its own training pictures (419 of
``bench_tagging``'s 594 drawings were), which flatters it. This module sorts every drawing of the tree into

* ``train``    – in the training split (what ``scripts/train_mini.py`` loads);
* ``held_out`` – drawn by an author of ``clipart_data.choose_held_out`` (never loaded by the trainer);
* ``dropped``  – left out of the scan entirely: a folder of ``clipart_meta.DROPPED`` (road signs, desktop icons,
  card decks, ...) or a keyword of ``clipart_meta.DROPPED_KEYWORDS``; never loaded by the trainer either.

Drawings are matched by content (SHA-1 of the real file): Debian files one drawing in several folders through
symlinks and ships some twice with identical bytes, and ``clipart_data.scan`` merges both, so a path in a dropped
folder can still be a training picture. Each drawing counts once, in the top-level folder of its real file (the
first path in sorted order among byte-identical copies); that folder is its category.

The sorting takes 10-20 s (``scan`` parses ~7,000 SVGs and every PNG is hashed), so it is cached as JSON in
``{cache}/clipart-unseen-v{CACHE_SCHEMA}.json``, keyed by the Debian package versions, ``clipart_data``'s schema
version and held-out salt, and a hash of ``clipart_data.py`` and ``clipart_meta.py`` (the split rules): any change
rebuilds it. The training-split size is also checked against the shipped model's ``mini_config.json``
(``training.styles.openclipart``), so a split that drifted from the one the shipped weights saw is reported.
Drawings with other bytes but the same picture (openclipart holds a few re-uploads under other names) cannot be
told apart this way.

Pools (:data:`POOLS`): the benchmarks default to ``held-out``. The dropped drawings are outside training too, but
in the benchmarks' folders they are road signs, desktop-theme icons and five near-identical 54-card decks: series
whose members look alike, so the duplicate benchmark counts the same card of two decks as a wrong pair and the
tagging benchmark finds near-copies of its held-out items among its labelled ones. ``unseen`` adds them (after the
held-out authors' drawings) for those who want them; ``train`` exists only for comparisons.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))

import clipart_data  # noqa: E402
from clipart_meta import DROPPED, drop_reason, matching_prefix  # noqa: E402

CACHE_SCHEMA = 1
DEFAULT_CACHE = REPO / ".cache" / "catalens-mini"
SHIPPED_CONFIG = REPO / "models" / "weights" / "catalens-mini" / "mini_config.json"

Origin = Literal["train", "held_out", "dropped"]
#: Which origins each pool takes, in the order a category is filled (held-out authors first: they are pictures of
#: things, like the training split; the dropped folders are mostly road signs, desktop-theme icons and five
#: near-identical card decks, series whose members look alike, so they are not the benchmarks' default).
POOLS: dict[str, tuple[Origin, ...]] = {
    "held-out": ("held_out",),
    "unseen": ("held_out", "dropped"),
    "train": ("train",),
}
#: What each pool is, for ``--help`` and the JSON.
POOL_RULES: dict[str, str] = {
    "held-out": "drawings of the held-out authors only: outside the training split, never loaded by the trainer",
    "unseen": "held-out authors' drawings first, then drawings the training split drops (road signs, desktop "
    "icons, card decks: series of near-identical pictures); all outside the training split",
    "train": "the training split itself: NOT outside it, only to measure how much training on the pictures "
    "flatters a figure",
}
POOL_HELP = "; ".join(f"{name}: {rule}" for name, rule in POOL_RULES.items())


@dataclass(frozen=True)
class Drawing:
    """One distinct drawing: its real file, category (top-level folder) and whether training saw it."""

    path: Path
    category: str
    origin: Origin
    reason: str  # why it is outside training ("held-out author ...", "dropped folder ..."); "" for train
    digest: str


@dataclass(frozen=True)
class Catalogue:
    """Every distinct drawing of the tree, sorted by origin, with where the sorting came from."""

    drawings: list[Drawing]
    source: dict[str, Any] = field(default_factory=dict)


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _rules_hash() -> str:
    """A hash of the split's code: a change to the drop rules or the held-out choice changes the split."""
    digest = hashlib.sha256()
    for name in ("clipart_data.py", "clipart_meta.py"):
        digest.update((SCRIPTS / name).read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(png_root: Path) -> dict[str, Any]:
    """What the cached sorting depends on; a cache with another fingerprint is rebuilt."""
    return {
        "cache_schema": CACHE_SCHEMA,
        "clipart_schema": clipart_data.SCHEMA_VERSION,
        "held_out_salt": clipart_data.HELD_OUT_SALT,
        "rules": _rules_hash(),
        "versions": clipart_data.package_versions(),
        "png_root": str(png_root),
    }


def classify(png_root: Path = clipart_data.PNG_ROOT, svg_root: Path = clipart_data.SVG_ROOT) -> list[Drawing]:
    """Sort every distinct drawing under ``png_root`` into train, held-out and dropped (see the module doc)."""
    splits = clipart_data.split_records(clipart_data.scan(png_root, svg_root).records)
    origin_of: dict[str, tuple[Origin, str]] = {}
    for record in splits["train"]:
        origin_of[_sha1(png_root / record.path)] = ("train", "")
    for record in splits["held_out"]:
        origin_of[_sha1(png_root / record.path)] = ("held_out", f"held-out author {record.author}")
    seen: set[str] = set()
    drawings: list[Drawing] = []
    for path in sorted(p for p in png_root.rglob("*.png") if p.is_file() and not p.is_symlink()):
        digest = _sha1(path)
        if digest in seen:
            continue
        seen.add(digest)
        rel = path.relative_to(png_root)
        folder = rel.parent.as_posix()
        if digest in origin_of:
            origin, reason = origin_of[digest]
        elif drop_reason(folder):
            origin, reason = "dropped", f"dropped folder {matching_prefix(folder, DROPPED)}"
        else:
            origin, reason = "dropped", "dropped by keyword (clipart_meta.DROPPED_KEYWORDS)"
        drawings.append(Drawing(path, rel.parts[0], origin, reason, digest))
    return drawings


def shipped_training_count(config: Path = SHIPPED_CONFIG) -> int | None:
    """How many openclipart drawings the shipped catalens-mini trained on (``None`` when not recorded)."""
    try:
        styles = json.loads(config.read_text())["training"]["styles"]
        return int(styles["openclipart"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def load_catalogue(
    cache: Path = DEFAULT_CACHE,
    png_root: Path = clipart_data.PNG_ROOT,
    svg_root: Path = clipart_data.SVG_ROOT,
    refresh: bool = False,
) -> Catalogue:
    """The sorted drawings, from the cache when its fingerprint matches, else classified and cached.

    Raises:
        FileNotFoundError: ``png_root`` is missing (install ``openclipart-png`` and ``openclipart-svg``).
    """
    if not png_root.is_dir():
        raise FileNotFoundError(f"{png_root} is missing: apt-get install {' '.join(clipart_data.SOURCE.packages)}")
    wanted = fingerprint(png_root)
    path = cache / f"clipart-unseen-v{CACHE_SCHEMA}.json"
    cached = None
    if path.exists() and not refresh:
        try:
            cached = json.loads(path.read_text())
        except (OSError, ValueError):
            cached = None
    if cached is not None and cached.get("fingerprint") == wanted:
        drawings = [Drawing(png_root / rel, rel.split("/")[0], o, r, d) for rel, o, r, d in cached["drawings"]]
        seconds, from_cache = float(cached["seconds"]), True
    else:
        started = time.perf_counter()
        drawings = classify(png_root, svg_root)
        seconds, from_cache = round(time.perf_counter() - started, 1), False
        rows = [[d.path.relative_to(png_root).as_posix(), d.origin, d.reason, d.digest] for d in drawings]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"fingerprint": wanted, "seconds": seconds, "drawings": rows}))
        tmp.replace(path)
    origins = Counter(d.origin for d in drawings)
    shipped = shipped_training_count()
    source = {
        "packages": list(clipart_data.SOURCE.packages),
        "versions": wanted["versions"],
        "licence": clipart_data.SOURCE.licence,
        "drawings": len(drawings),
        "by_origin": dict(sorted(origins.items())),
        "shipped_model_trained_on": shipped,
        "split_matches_shipped_model": shipped == origins["train"],
        "sorting_seconds": seconds,
        "from_cache": from_cache,
        "cache": str(path),
    }
    return Catalogue(drawings, source)


def draw(
    catalogue: Catalogue, categories: list[str], per_category: int, pool: str, rng: random.Random
) -> tuple[dict[str, list[Drawing]], dict[str, Any]]:
    """Up to ``per_category`` drawings of each category from ``pool``, and the counts to report.

    A category is filled from the pool's origins in order (each shuffled with ``rng``); one with too few drawings
    gives what it has (never training pictures for an unseen pool).

    Raises:
        ValueError: an unknown pool.
    """
    if pool not in POOLS:
        raise ValueError(f"unknown clip-art pool {pool!r}; choose one of {', '.join(POOLS)}")
    origins = POOLS[pool]
    picked: dict[str, list[Drawing]] = {}
    counts: dict[str, Any] = {}
    for category in categories:
        mine = [d for d in catalogue.drawings if d.category == category]
        taken: list[Drawing] = []
        for origin in origins:
            candidates = [d for d in mine if d.origin == origin]
            rng.shuffle(candidates)
            taken += candidates[: per_category - len(taken)]
        picked[category] = taken
        counts[category] = {
            "requested": per_category,
            "available": {o: sum(d.origin == o for d in mine) for o in origins},
            "used": {o: sum(d.origin == o for d in taken) for o in origins},
            "training_pictures_in_folder": sum(d.origin == "train" for d in mine),
        }
    return picked, counts


def decodable(path: Path, folder: Path, max_side: int = 1024) -> Path:
    """``path``, or for a PNG over ``clipart_data.MAX_PNG_PIXELS`` its SVG drawn at ``max_side`` px into ``folder``.

    A few Debian PNGs are 10,000-30,000 px a side; Pillow's decompression-bomb guard (which stays on) refuses
    the largest, so they are drawn from the SVG of the same drawing instead, as ``clipart_data`` does.

    Raises:
        ValueError: the PNG is too large and has no SVG.
    """
    width, height = clipart_data.png_size(path)
    if width * height <= clipart_data.MAX_PNG_PIXELS:
        return path
    svg = clipart_data.SVG_ROOT / path.relative_to(clipart_data.PNG_ROOT).with_suffix(".svg")
    if not svg.exists():
        raise ValueError(f"{path} has {width * height} pixels and no SVG to draw it from")
    import cairosvg  # noqa: PLC0415 - only needed for the few oversized drawings

    scale = max_side / max(width, height)
    out = folder / f"svg-{hashlib.sha1(str(path).encode()).hexdigest()[:10]}-{path.name}"
    folder.mkdir(parents=True, exist_ok=True)
    cairosvg.svg2png(
        url=str(svg), write_to=str(out), output_width=round(width * scale), output_height=round(height * scale)
    )
    return out


def pool_report(pool: str, counts: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """The JSON block a benchmark records about its clip art: the pool, per-category counts, the source."""
    used = sum(sum(c["used"].values()) for c in counts.values())
    available = sum(sum(c["available"].values()) for c in counts.values())
    return {
        "pool": pool,
        "origins": list(POOLS[pool]),
        "outside_training_split": "train" not in POOLS[pool],
        "rule": POOL_RULES[pool],
        "available": available,
        "used": used,
        "short_categories": sorted(c for c, n in counts.items() if sum(n["used"].values()) < n["requested"]),
        "per_category": counts,
        "source": catalogue.source,
    }

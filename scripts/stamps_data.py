#!/usr/bin/env python
"""Tux Paint's stamps: issue 17's kept-aside set, for evaluation only (no training script reads it).

    apt-get install tuxpaint-stamps-default
    .venv/bin/python scripts/eval_mini.py --model catalens-mini --sets stamps

Why this module exists: issue 17 measured the first catalens-mini on "a third-party clip-art set that we keep
aside (drawings and photo-like stamps of animals, food, clothes, vehicles, plants, household things, space and
sports, described in plain English)": text→image recall@10 0.098 and balanced zero-shot accuracy 0.35 over its
8 kinds. That set is Debian's ``tuxpaint-stamps-default`` (GPL-2+): the stamps the children's paint program
ships, each a PNG or SVG beside a ``.txt`` whose first line is its English description ("A red kangaroo.") and
whose other lines are translations. Kept aside means never trained on, so it is the one figure no recipe choice
here has seen.

The protocol is the closest to the issue's figures of the ones tried (its exact script is not public): for the
first model it gives recall@10 0.119 and balanced zero-shot 0.389 against the issue's 0.098 and 0.35 (a gallery
of the 8 folders alone gave 0.152; names from file names instead of descriptions, 0.162):

* gallery: every described stamp of every folder (about 950), composited on white at most 256 px;
* ``stamps_texts``: one query per stamp, its English description; that stamp is the relevant item;
* ``stamps_kinds``: zero-shot classification of the stamps in the 8 folders the issue names into those 8
  folder names (the other folders, e.g. symbols and town, are distractors in the gallery only).

A stamp's variants (``dog_shadow.png``, ``dog_back.png``) have no ``.txt`` of their own and are not read; a
description without a picture, or a picture that cannot be decoded (a few SVGs declare XML entities, which the
SVG renderer refuses), is skipped with its reason and the set goes on.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mini_data  # noqa: E402

PACKAGE = "tuxpaint-stamps-default"
ROOT = Path("/usr/share/tuxpaint/stamps")
#: The issue's eight kinds, as Tux Paint names their folders.
KINDS = ("animals", "food", "clothes", "vehicles", "plants", "household", "space", "sports")
#: The longest side a stamp is written at (the stamps are up to about 500 px; catalens-mini reads 64).
SIZE = 256


class StampsNotInstalledError(FileNotFoundError):
    """The stamps directory is missing: the Debian package is not installed."""

    def __init__(self, root: Path) -> None:
        super().__init__(f"no Tux Paint stamps under {root}: install them with `apt-get install {PACKAGE}`")


@dataclass(frozen=True)
class Stamp:
    """One described stamp: a stable id, its top-level folder, its English description and its picture."""

    id: str
    folder: str
    description: str
    picture: Path | None


@dataclass(frozen=True)
class StampSet:
    """What :func:`write_stamps` wrote: the manifest, the two labelled sets, the stamps and the skipped ones."""

    manifest: Path
    sets: dict[str, Path]
    stamps: int
    skipped: list[tuple[str, str]]


def find_stamps(root: Path = ROOT) -> list[Stamp]:
    """Every ``.txt`` under ``root`` with a non-empty first line, in path order, with its picture if any.

    Raises:
        StampsNotInstalledError: ``root`` does not exist.
    """
    if not root.is_dir():
        raise StampsNotInstalledError(root)
    stamps = []
    for text in sorted(root.rglob("*.txt")):
        lines = text.read_text(encoding="utf-8", errors="replace").splitlines()
        description = lines[0].strip() if lines else ""
        if not description:
            continue
        relative = text.relative_to(root).with_suffix("")
        picture = next((p for p in (text.with_suffix(".svg"), text.with_suffix(".png")) if p.is_file()), None)
        stamps.append(Stamp("-".join(relative.parts), relative.parts[0], description, picture))
    return stamps


def load_picture(path: Path, size: int = SIZE) -> Image.Image:
    """A stamp as an RGB picture on white, its longest side at most ``size``.

    Raises:
        ValueError: the file cannot be decoded or rendered.
    """
    try:
        if path.suffix == ".svg":
            image = Image.fromarray(mini_data.render_svg(path.read_text(encoding="utf-8"), size), "RGBA")
        else:
            with Image.open(path) as opened:
                image = opened.convert("RGBA")
            image.thumbnail((size, size))
    except Exception as error:  # noqa: BLE001 - Pillow, cairosvg and defusedxml each raise their own types
        raise ValueError(f"cannot read {path.name}: {type(error).__name__}: {error}") from error
    white = Image.new("RGB", image.size, (255, 255, 255))
    white.paste(image, mask=image.getchannel("A"))
    return white


def write_stamps(out: Path, root: Path = ROOT) -> StampSet:
    """Write the gallery as PNGs with a CSV manifest and the ``stamps_texts`` / ``stamps_kinds`` sets.

    Raises:
        StampsNotInstalledError: ``root`` does not exist.
    """
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    texts: list[dict[str, object]] = []
    kinds: list[dict[str, str]] = []
    skipped: list[tuple[str, str]] = []
    manifest = out / "catalog.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "title", "category"])  # no words: the vectors alone are measured
        for stamp in find_stamps(root):
            if stamp.picture is None:
                skipped.append((stamp.id, "no picture beside the description"))
                continue
            try:
                picture = load_picture(stamp.picture)
            except ValueError as error:
                skipped.append((stamp.id, str(error)))
                continue
            picture.save(images / f"{stamp.id}.png")
            writer.writerow([stamp.id, f"images/{stamp.id}.png", "", ""])
            texts.append({"query": stamp.description, "relevant": [stamp.id]})
            if stamp.folder in KINDS:
                kinds.append({"id": stamp.id, "label": stamp.folder})
    sets = {}
    for name, rows in (("stamps_texts", texts), ("stamps_kinds", kinds)):
        sets[name] = out / f"{name}.jsonl"
        sets[name].write_text("".join(json.dumps(row) + "\n" for row in rows))
    return StampSet(manifest, sets, len(texts), skipped)


def package_version() -> str | None:
    """The installed package's Debian version, or ``None`` where dpkg does not know it."""
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", PACKAGE], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() or None

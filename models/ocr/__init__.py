"""Optical character recognition: the words printed in a product image, with their boxes and confidences.

Two engines behind one protocol, chosen by a spec string (``load_ocr("rapidocr")``):

* ``rapidocr`` (the default): RapidOCR from ``rapidocr-onnxruntime``, whose wheel ships the PP-OCRv4 ONNX
  detection and recognition models, so it works offline. It reads Latin and Chinese script whatever
  ``OcrOptions.languages`` says. It finds brand names on packaging that Tesseract misses (see
  ``scripts/bench_ocr.py`` for the numbers).
* ``tesseract``: Tesseract through ``pytesseract`` (``apt-get install tesseract-ocr``), with word boxes from
  ``image_to_data``; needs the language data of every code in ``OcrOptions.languages``.

**Words, not lines.** An engine returns words: search indexes them as tokens and the UI draws a box per
word. Tesseract reports words itself. RapidOCR reports text lines and its PP-OCRv4 recogniser often drops
the spaces of Latin text ("KESTRELPro"), so a line is split into words at the spaces it did read and at
wide gaps between inked columns of the line (a gap of at least a quarter of the font size, estimated
from the ink height, and twice the line's median gap between letters). A word's box spans its inked
columns at the height of the line; its confidence is the mean of its characters' confidences. Lines that
cannot be measured (vertical text, missing character positions) fall back to splitting at the spaces
read, with boxes in proportion to the characters.

Stray marks: both engines read odd symbols and lone letters into textures and shapes, so words without
a letter or digit are dropped, and a one-character word needs confidence 0.9 (see ``OcrOptions``).

Boxes are four (x, y) corners in the pixels of the image passed to ``read``, clockwise from the top left
of the text (rotated text gives a rotated box). Words come in reading order: lines top to bottom, lines
side by side left to right, words left to right.

Modules: :mod:`.types` (words, results, options, the engine protocol and base, errors), :mod:`.reading`
(image preparation and reading order), :mod:`.rapidocr`, :mod:`.tesseract`, :mod:`.registry` (specs, loading).

Thread safety: both engines may be shared between threads. ``RapidOcrEngine`` runs one image at a time
(a lock; onnxruntime already uses ``OcrOptions.num_threads`` within an image), so load one engine per
worker to read images in parallel. ``TesseractEngine`` starts a ``tesseract`` process per image and keeps
no state between calls.
"""

from __future__ import annotations

from catalens.models.ocr.rapidocr import RapidOcrEngine
from catalens.models.ocr.registry import (
    DEFAULT_OCR,
    OcrBackend,
    OcrRegistry,
    default_ocr_registry,
    list_ocr_engines,
    load_ocr,
    parse_ocr_spec,
)
from catalens.models.ocr.tesseract import TesseractEngine
from catalens.models.ocr.types import (
    OcrEngine,
    OcrFailedError,
    OcrOptions,
    OcrResult,
    OcrUnavailableError,
    OcrWord,
    Point,
)

__all__ = [
    "DEFAULT_OCR",
    "OcrBackend",
    "OcrEngine",
    "OcrFailedError",
    "OcrOptions",
    "OcrRegistry",
    "OcrResult",
    "OcrUnavailableError",
    "OcrWord",
    "Point",
    "RapidOcrEngine",
    "TesseractEngine",
    "default_ocr_registry",
    "list_ocr_engines",
    "load_ocr",
    "parse_ocr_spec",
]

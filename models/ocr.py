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

Thread safety: both engines may be shared between threads. ``RapidOcrEngine`` runs one image at a time
(a lock; onnxruntime already uses ``OcrOptions.num_threads`` within an image), so load one engine per
worker to read images in parallel. ``TesseractEngine`` starts a ``tesseract`` process per image and keeps
no state between calls.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from catalens.models.errors import ModelError, UnknownModelError

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: The engine used when none is named: on the synthetic text catalog (``scripts/bench_ocr.py --n 60``)
#: RapidOCR read 100 % of the printed brands and model numbers, Tesseract 52 % and 71 %.
DEFAULT_OCR: Final = "rapidocr"

_ENGINES: Final = ("rapidocr", "tesseract")
_ALIASES: Final = {
    "rapid": "rapidocr",
    "rapid-ocr": "rapidocr",
    "rapidocr-onnxruntime": "rapidocr",
    "rapidocr_onnxruntime": "rapidocr",
    "paddleocr": "rapidocr",
    "tess": "tesseract",
    "pytesseract": "tesseract",
}
# A hung tesseract process must not stall an indexing run.
_TESSERACT_TIMEOUT_S: Final = 60.0

# A word of one character is kept only at this confidence (or min_confidence, if higher).
_LONE_CHARACTER_CONFIDENCE: Final = 0.9

Point = tuple[float, float]


@dataclass(frozen=True)
class OcrWord:
    """One word read in an image.

    Attributes:
        text: the word as read (no spaces).
        box: four (x, y) corners in image pixels, clockwise from the top left of the text.
        confidence: the engine's confidence, 0..1.
        line: the index of the word's text line in reading order (0 for the first line).
    """

    text: str
    box: tuple[Point, ...]
    confidence: float
    line: int = 0


@dataclass(frozen=True)
class OcrResult:
    """The words read in one image, in reading order."""

    words: tuple[OcrWord, ...]

    @property
    def text(self) -> str:
        """The words in reading order: words of a line joined by spaces, lines by newlines."""
        lines: dict[int, list[str]] = {}
        for word in self.words:
            lines.setdefault(word.line, []).append(word.text)
        return "\n".join(" ".join(words) for _, words in sorted(lines.items()))

    def to_data(self) -> dict[str, Any]:
        """A JSON-ready form: ``{"words": [{"text", "box": [[x, y], ...], "confidence", "line"}, ...]}``."""
        return {
            "words": [
                {
                    "text": w.text,
                    "box": [[round(x, 1), round(y, 1)] for x, y in w.box],
                    "confidence": round(w.confidence, 4),
                    "line": w.line,
                }
                for w in self.words
            ]
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> OcrResult:
        """The inverse of :meth:`to_data`.

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not in the form ``to_data`` writes.
        """
        return cls(
            tuple(
                OcrWord(
                    text=str(w["text"]),
                    box=tuple((float(x), float(y)) for x, y in w["box"]),
                    confidence=float(w["confidence"]),
                    line=int(w.get("line", 0)),
                )
                for w in data["words"]
            )
        )


@dataclass(frozen=True)
class OcrOptions:
    """How an engine reads.

    Attributes:
        min_confidence: words below this confidence (0..1) are dropped. On the synthetic text catalog
            RapidOCR's right words scored 0.85 or more and its stray words in text-free images 0.61 or
            less; for Tesseract 0.7 dropped three quarters of the false words that 0.6 let through for one
            brand in sixty (``scripts/bench_ocr.py``). Bare punctuation is always dropped, and a word of
            one character is kept only at 0.9 or more.
        languages: Tesseract language codes (``eng``, ``deu``, ...); RapidOCR uses its shipped models,
            which read Latin and Chinese script, and ignores this.
        max_side: images whose longer side exceeds this many pixels are scaled down before reading (boxes
            still refer to the original pixels); packaging text stays legible at this size and detection
            time grows with the pixel count.
        num_threads: CPU threads one engine uses for one image (onnxruntime intra-op threads for RapidOCR;
            Tesseract's OpenMP threads follow ``OMP_THREAD_LIMIT`` in the environment instead).
    """

    min_confidence: float = 0.7
    languages: tuple[str, ...] = ("eng",)
    max_side: int = 1280
    num_threads: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must lie in 0..1, got {self.min_confidence}")
        if not self.languages or any(not code or "+" in code for code in self.languages):
            raise ValueError(f"languages must be non-empty language codes, got {self.languages!r}")
        if self.max_side < 32:
            raise ValueError(f"max_side must be at least 32 pixels, got {self.max_side}")
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {self.num_threads}")


@runtime_checkable
class OcrEngine(Protocol):
    """Reads the words in an image."""

    @property
    def spec(self) -> str:
        """The canonical spec of this engine (``rapidocr``, ``tesseract``)."""
        ...

    def read(self, image: Image.Image) -> OcrResult:
        """The words in ``image`` at or above the engine's ``min_confidence``, in reading order.

        Raises:
            OcrFailedError: the engine failed on this image (record it for the item and go on).
        """
        ...


class OcrUnavailableError(ModelError):
    """An OCR engine cannot run here: its Python package, binary or language data is missing.

    Attributes:
        engine: the engine spec.
        reason: what is missing.
        hint: how to install it.
    """

    def __init__(self, engine: str, reason: str, hint: str) -> None:
        self.engine = engine
        self.reason = reason
        self.hint = hint
        super().__init__(f"OCR engine {engine!r} is not available: {reason}. To install it: {hint}")


class OcrFailedError(ModelError):
    """An OCR engine failed on one image; the caller records it for that item and goes on.

    Attributes:
        engine: the engine spec.
        reason: what went wrong.
    """

    def __init__(self, engine: str, reason: str) -> None:
        self.engine = engine
        self.reason = reason
        super().__init__(f"OCR engine {engine!r} failed on an image: {reason}")


def list_ocr_engines() -> list[str]:
    """The canonical OCR engine specs, the default first."""
    return [DEFAULT_OCR, *(name for name in _ENGINES if name != DEFAULT_OCR)]


def parse_ocr_spec(text: str) -> str:
    """The canonical spec for an OCR engine name (case and surrounding spaces ignored, a few aliases).

    Args:
        text: e.g. ``"rapidocr"``, ``" Tesseract "``, ``"pytesseract"``.

    Returns:
        ``"rapidocr"`` or ``"tesseract"``.

    Raises:
        UnknownModelError: no engine has that name (a ``ValueError`` listing the valid choices).
    """
    name = text.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in _ENGINES:
        reason = "the OCR engine spec is empty" if not name else "no such OCR engine"
        raise UnknownModelError(text, reason, list_ocr_engines())
    return name


def load_ocr(spec: str = DEFAULT_OCR, options: OcrOptions | None = None) -> OcrEngine:
    """Load an OCR engine by spec; its Python package is imported only now.

    Args:
        spec: an engine name, see :func:`list_ocr_engines`.
        options: thresholds, languages and limits; defaults to ``OcrOptions()``.

    Returns:
        A ready engine.

    Raises:
        UnknownModelError: the spec names no engine.
        OcrUnavailableError: the engine's package, binary or language data is missing (with how to install).
    """
    name = parse_ocr_spec(spec)
    opts = options or OcrOptions()
    if name == "rapidocr":
        return RapidOcrEngine(opts)
    return TesseractEngine(opts)


# -- shared helpers ----------------------------------------------------------------------------------------


def _prepare(image: Image.Image, max_side: int) -> tuple[Image.Image, float]:
    """An RGB copy no larger than ``max_side``, and the factor that maps its pixels back to ``image``."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent product cut-outs: put them on white, as a shop page shows them (not on black).
        rgba = image.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.getchannel("A"))
    else:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
    longest = max(rgb.size)
    if longest <= max_side:
        return rgb, 1.0
    scale = longest / max_side
    size = (max(1, round(rgb.width / scale)), max(1, round(rgb.height / scale)))
    return rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), scale


def _clip_box(
    box: Sequence[Sequence[float]] | NDArray[np.float32], scale: float, width: int, height: int
) -> tuple[Point, ...]:
    return tuple(
        (min(max(float(x) * scale, 0.0), float(width)), min(max(float(y) * scale, 0.0), float(height))) for x, y in box
    )


@dataclass(frozen=True)
class _Line:
    """A text line before ordering: its words as (text, box, confidence)."""

    words: list[tuple[str, tuple[Point, ...], float]]

    @property
    def top(self) -> float:
        return min(y for _, box, _ in self.words for _, y in box)

    @property
    def bottom(self) -> float:
        return max(y for _, box, _ in self.words for _, y in box)

    @property
    def left(self) -> float:
        return min(x for _, box, _ in self.words for x, _ in box)


def _in_reading_order(lines: list[_Line], min_confidence: float) -> OcrResult:
    """Order lines top to bottom (lines side by side left to right), keep confident words, number lines."""
    rows: list[list[_Line]] = []
    for line in sorted((ln for ln in lines if ln.words), key=lambda ln: ln.top):
        centre = (line.top + line.bottom) / 2
        if rows and rows[-1][0].top <= centre <= rows[-1][0].bottom:
            rows[-1].append(line)
        else:
            rows.append([line])
    words: list[OcrWord] = []
    index = 0
    for row in rows:
        for line in sorted(row, key=lambda ln: ln.left):
            kept = [w for w in line.words if _plausible(w[0], w[2], min_confidence)]
            words += [OcrWord(text, box, conf, index) for text, box, conf in kept]
            index += bool(kept)
    return OcrResult(tuple(words))


def _plausible(text: str, confidence: float, min_confidence: float) -> bool:
    """Whether a read word is worth keeping: confident enough, not bare punctuation, and a lone character
    only when very confident (both engines read stray letters and symbols into textures and shapes)."""
    if confidence < min_confidence or not any(ch.isalnum() for ch in text):
        return False
    return len(text) > 1 or confidence >= max(min_confidence, _LONE_CHARACTER_CONFIDENCE)


# -- RapidOCR ----------------------------------------------------------------------------------------------

# A gap between inked columns splits words when it is at least this fraction of the font size (a space
# is 0.25-0.33 em in common faces; letters of a word rarely stand more than 0.15 em apart) and this many
# times the line's median gap (so letter-spaced capitals and monospaced faces are not split into letters).
_GAP_OF_EM: Final = 0.25
_GAP_OF_MEDIAN: Final = 2.0
# Ink height of a line as a fraction of the font size, by what its characters reach: capitals, digits and
# ascenders (about 0.75 em), x-height only (0.55 em), plus descenders (0.22 em).
_TALL: Final = frozenset("bdfhklt0123456789!?/\\|()[]{}'\"#%&@$")
_DESCENDING: Final = frozenset("gjpqyQ,;()[]{}|@$")
# Characters that join what stands on either side of them ("XR-2040", "1.5", "24/7") unless a space was read.
_JOINING: Final = frozenset("-./")
# The detector upscales an image until its shorter side has this many pixels. RapidOCR's default, 736,
# read no more brands or model numbers than 480 on 320 and 480 px text catalogs (scripts/bench_ocr.py),
# nor more 7-11 px print on 400 px shots, and took 1.7x the time.
_DET_SIDE: Final = 480


class RapidOcrEngine:
    """RapidOCR (PP-OCRv4 ONNX models shipped in the ``rapidocr-onnxruntime`` wheel); see the module doc."""

    def __init__(self, options: OcrOptions) -> None:
        """Load the detection, direction and recognition models.

        Raises:
            OcrUnavailableError: ``rapidocr-onnxruntime`` (or onnxruntime, OpenCV) is not installed or its
                models cannot be loaded.
        """
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as e:
            raise OcrUnavailableError(
                "rapidocr", f"the Python package cannot be imported ({e})", "pip install rapidocr-onnxruntime"
            ) from e
        self._options = options
        threads = min(options.num_threads, os.cpu_count() or 1)
        try:
            self._ocr = RapidOCR(
                intra_op_num_threads=threads,
                inter_op_num_threads=1,
                det_limit_side_len=_DET_SIDE,
                print_verbose=False,
            )
        except Exception as e:  # onnxruntime raises its own types for a missing or corrupt model
            raise OcrUnavailableError(
                "rapidocr",
                f"its models cannot be loaded ({type(e).__name__}: {e})",
                "pip install --force-reinstall rapidocr-onnxruntime",
            ) from e
        # RapidOCR.__call__ writes its per-call thresholds into shared post-processing objects.
        self._lock = threading.Lock()

    @property
    def spec(self) -> str:
        return "rapidocr"

    @property
    def options(self) -> OcrOptions:
        return self._options

    def read(self, image: Image.Image) -> OcrResult:
        """The words in ``image``; see :class:`OcrEngine`.

        Raises:
            OcrFailedError: RapidOCR raised on this image.
        """
        prepared, scale = _prepare(image, self._options.max_side)
        rgb = np.asarray(prepared)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        try:
            with self._lock:
                # Lines are filtered per word below, so RapidOCR keeps every line it recognises.
                raw, _ = self._ocr(bgr, return_word_box=True, text_score=0.0, box_thresh=0.5, unclip_ratio=1.6)
            lines = [self._line(rgb, row, scale, image.size) for row in raw or []]
        except Exception as e:  # any failure inside the engine is this image's failure, not the batch's
            raise OcrFailedError("rapidocr", f"{type(e).__name__}: {e}") from e
        return _in_reading_order(lines, self._options.min_confidence)

    def _line(self, rgb: NDArray[np.uint8], row: Sequence[Any], scale: float, size: tuple[int, int]) -> _Line:
        box, text, line_conf = row[0], str(row[1]), float(row[2])
        chars: list[str] = list(row[4]) if len(row) > 4 and row[4] else []
        confs: list[float] = [float(c) for c in row[5]] if len(row) > 5 and row[5] else []
        char_boxes = row[3] if len(row) > 3 and row[3] else []
        quad = np.asarray(box, dtype=np.float32)
        words = None
        if len(chars) == len(text) == len(char_boxes) == len(confs) and text.strip():
            words = _split_by_ink(rgb, quad, chars, np.asarray(char_boxes, dtype=np.float32), confs)
        if words is None:
            words = _split_evenly(quad, text, line_conf)
        return _Line([(t, _clip_box(b, scale, *size), c) for t, b, c in words])


def _split_evenly(quad: NDArray[np.float32], text: str, conf: float) -> list[tuple[str, NDArray[np.float32], float]]:
    """Split a line at its spaces, giving each word a share of the box in proportion to its characters."""
    words = []
    start = 0
    n = max(len(text), 1)
    top, bottom = (quad[0], quad[1]), (quad[3], quad[2])
    for part in text.split(" "):
        end = start + len(part)
        if part:
            a, b = start / n, end / n
            corners = [
                top[0] + (top[1] - top[0]) * a,
                top[0] + (top[1] - top[0]) * b,
                bottom[0] + (bottom[1] - bottom[0]) * b,
                bottom[0] + (bottom[1] - bottom[0]) * a,
            ]
            words.append((part, np.asarray(corners, dtype=np.float32), conf))
        start = end + 1
    return words


def _split_by_ink(
    rgb: NDArray[np.uint8],
    quad: NDArray[np.float32],
    chars: list[str],
    char_boxes: NDArray[np.float32],
    confs: list[float],
) -> list[tuple[str, NDArray[np.float32], float]] | None:
    """Split a recognised line into words at read spaces and at wide gaps between inked columns.

    The line is rectified to a horizontal strip (as the recogniser saw it); ink is whatever differs from
    the strip's border colour. Each character is placed by the centre of the box RapidOCR gives it.

    Returns:
        (word, box, confidence) per word, or ``None`` when the line cannot be measured (vertical text, a
        degenerate box), so that the caller falls back to :func:`_split_evenly`.
    """
    import cv2

    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[3] - quad[2])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    if width < 4 or height < 4 or height > width * 1.5:
        return None
    target = np.asarray([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    to_strip = cv2.getPerspectiveTransform(quad, target)
    strip = cv2.warpPerspective(
        rgb, to_strip, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.int16)
    border = np.concatenate([strip[0], strip[-1], strip[:, 0], strip[:, -1]])
    distance = np.abs(strip - np.median(border, axis=0)).max(axis=2).astype(np.uint8)
    threshold, _ = cv2.threshold(distance, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = distance > max(threshold, 40.0)
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size == 0:
        return None
    ink_top, ink_bottom = int(rows[0]), int(rows[-1]) + 1
    columns = ink[ink_top:ink_bottom].any(axis=0)
    runs = _runs(columns)  # inked column ranges [start, end)
    if not runs:
        return None
    gaps = [b[0] - a[1] for a, b in zip(runs, runs[1:], strict=False)]
    median_gap = float(np.median(gaps)) if gaps else 0.0
    wide = max(_GAP_OF_EM * _em(chars, ink_bottom - ink_top), _GAP_OF_MEDIAN * median_gap, 2.0)
    segments: list[list[int]] = [list(runs[0])]
    for (start, end), gap in zip(runs[1:], gaps, strict=True):
        if gap >= wide:
            segments.append([start, end])
        else:
            segments[-1][1] = end

    centres = cv2.perspectiveTransform(char_boxes.mean(axis=1, keepdims=True), to_strip)[:, 0, 0]
    segment_of = [_nearest_segment(segments, float(x)) for x in centres]
    words: list[list[int]] = []  # indices of the characters of each word
    for i, ch in enumerate(chars):
        if ch.isspace():
            if words and words[-1]:
                words.append([])
            continue
        previous = words[-1][-1] if words and words[-1] else None
        gap_between = (
            previous is not None
            and segment_of[previous] != segment_of[i]
            and chars[previous] not in _JOINING
            and ch not in _JOINING
        )
        if not words or gap_between:
            words.append([])
        words[-1].append(i)
    to_image = np.linalg.inv(to_strip)
    out = []
    kept = [w for w in words if w]
    for k, word in enumerate(kept):
        first, last = word[0], word[-1]
        left = float(segments[segment_of[first]][0])
        right = float(segments[segment_of[last]][1])
        if k > 0 and segment_of[kept[k - 1][-1]] == segment_of[first]:
            left = float(centres[kept[k - 1][-1]] + centres[first]) / 2
        if k + 1 < len(kept) and segment_of[kept[k + 1][0]] == segment_of[last]:
            right = float(centres[last] + centres[kept[k + 1][0]]) / 2
        left, right = max(left - 1.0, 0.0), min(right + 1.0, float(width))
        corners = np.asarray([[[left, ink_top], [right, ink_top], [right, ink_bottom], [left, ink_bottom]]], np.float32)
        box = cv2.perspectiveTransform(corners, to_image)[0]
        text = "".join(chars[i] for i in word)
        out.append((text, box, float(np.mean([confs[i] for i in word]))))
    return out


def _em(chars: list[str], ink_height: int) -> float:
    """The font size of a line in pixels, estimated from its ink height and the characters it holds."""
    tall = any(c.isupper() or c in _TALL for c in chars)
    descending = any(c in _DESCENDING for c in chars)
    return ink_height / ((0.75 if tall else 0.55) + (0.22 if descending else 0.0))


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """The [start, end) ranges of True in a 1-d mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _nearest_segment(segments: list[list[int]], x: float) -> int:
    return min(range(len(segments)), key=lambda i: max(segments[i][0] - x, x - segments[i][1], 0.0))


# -- Tesseract ---------------------------------------------------------------------------------------------

# Product shots are small: Tesseract reads best with letters some 20-30 px high, so small images are
# scaled up to about this many pixels on the longer side before reading (never past max_side).
_TESSERACT_UPSCALE_TO: Final = 1000
# Page segmentation 6 ("one uniform block of text") with Sauvola local thresholding (method 2, Tesseract 5):
# on product shots the default global Otsu threshold turns a white label on a coloured product into an
# inverted island and reads nothing in it. Of the modes 3, 6 and 11 with each thresholding method, this
# read the most brands and model numbers of the synthetic text catalog (scripts/bench_ocr.py).
_TESSERACT_CONFIG: Final = "--psm 6 -c thresholding_method=2"


class TesseractEngine:
    """Tesseract through ``pytesseract`` (word boxes from ``image_to_data``); see the module doc."""

    def __init__(self, options: OcrOptions) -> None:
        """Check that pytesseract, the ``tesseract`` binary and the language data are installed.

        Raises:
            OcrUnavailableError: pytesseract, the binary or a language's data is missing.
        """
        try:
            import pytesseract
        except ImportError as e:
            raise OcrUnavailableError(
                "tesseract", f"the Python package cannot be imported ({e})", "pip install pytesseract"
            ) from e
        self._options = options
        self._pt = pytesseract
        command = str(pytesseract.pytesseract.tesseract_cmd)
        install = (
            "apt-get install tesseract-ocr (Debian/Ubuntu), brew install tesseract (macOS), or set "
            "pytesseract.pytesseract.tesseract_cmd to the binary"
        )
        # pytesseract caches its version and language probes for the process, so the binary is looked up
        # here on every load.
        if shutil.which(command) is None:
            raise OcrUnavailableError("tesseract", f"the tesseract binary {command!r} was not found", install)
        try:
            self._version = str(pytesseract.get_tesseract_version())
            installed = set(pytesseract.get_languages(config=""))
        except (pytesseract.TesseractNotFoundError, pytesseract.TesseractError, OSError) as e:
            raise OcrUnavailableError(
                "tesseract", f"the tesseract binary {command!r} does not run ({e})", install
            ) from e
        missing = [code for code in options.languages if code not in installed]
        if missing:
            packages = " ".join(f"tesseract-ocr-{code.replace('_', '-').lower()}" for code in missing)
            raise OcrUnavailableError(
                "tesseract",
                f"no language data for {', '.join(missing)} (installed: {', '.join(sorted(installed)) or 'none'})",
                f"apt-get install {packages}",
            )
        self._lang = "+".join(options.languages)

    @property
    def spec(self) -> str:
        return "tesseract"

    @property
    def options(self) -> OcrOptions:
        return self._options

    @property
    def version(self) -> str:
        return self._version

    def read(self, image: Image.Image) -> OcrResult:
        """The words in ``image``; see :class:`OcrEngine`.

        Raises:
            OcrFailedError: tesseract failed, timed out or vanished while reading this image.
        """
        prepared, scale = _prepare(image, self._options.max_side)
        longest = max(prepared.size)
        target = min(_TESSERACT_UPSCALE_TO, self._options.max_side)
        if longest < target:
            factor = target / longest
            size = (round(prepared.width * factor), round(prepared.height * factor))
            prepared = prepared.resize(size, Image.Resampling.LANCZOS)
            scale /= factor
        pt = self._pt
        try:
            data = pt.image_to_data(
                prepared.convert("L"),
                lang=self._lang,
                config=_TESSERACT_CONFIG,
                output_type=pt.Output.DICT,
                timeout=_TESSERACT_TIMEOUT_S,
            )
        except (pt.TesseractError, pt.TesseractNotFoundError, RuntimeError, OSError) as e:
            raise OcrFailedError("tesseract", f"{type(e).__name__}: {e}") from e
        lines: dict[tuple[int, int, int], list[tuple[str, tuple[Point, ...], float]]] = {}
        for i, text in enumerate(data["text"]):
            conf = float(data["conf"][i])
            word = str(text).strip()
            if conf < 0 or not word:
                continue
            x, y, w, h = (float(data[k][i]) for k in ("left", "top", "width", "height"))
            box = _clip_box([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], scale, *image.size)
            key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
            lines.setdefault(key, []).append((word, box, min(max(conf / 100.0, 0.0), 1.0)))
        ordered = [_Line(sorted(ws, key=lambda w: w[1][0][0])) for ws in lines.values()]
        return _in_reading_order(ordered, self._options.min_confidence)

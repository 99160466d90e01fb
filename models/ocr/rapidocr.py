"""RapidOCR: the PP-OCRv4 ONNX models shipped in the ``rapidocr-onnxruntime`` wheel (offline), read as words.

RapidOCR reports text lines and its recogniser often drops the spaces of Latin text ("KESTRELPro"), so a line is
split into words at the spaces it did read and at wide gaps between inked columns (see the package docstring).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from PIL import Image

from catalens.models.ocr.reading import Line, clip_box, in_reading_order, prepare
from catalens.models.ocr.types import EngineBase, OcrFailedError, OcrOptions, OcrResult, OcrUnavailableError

if TYPE_CHECKING:
    from numpy.typing import NDArray

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


class RapidOcrEngine(EngineBase):
    """RapidOCR (PP-OCRv4 ONNX models shipped in the ``rapidocr-onnxruntime`` wheel); see the package doc."""

    name = "rapidocr"
    aliases = ("rapid", "rapid-ocr", "rapidocr-onnxruntime", "rapidocr_onnxruntime", "paddleocr")

    def __init__(self, options: OcrOptions) -> None:
        """Load the detection, direction and recognition models.

        Raises:
            OcrUnavailableError: ``rapidocr-onnxruntime`` (or onnxruntime, OpenCV) is not installed or its
                models cannot be loaded.
        """
        package = self.import_package("rapidocr_onnxruntime", "pip install rapidocr-onnxruntime")
        super().__init__(options)
        threads = min(options.num_threads, os.cpu_count() or 1)
        try:
            self._ocr = package.RapidOCR(
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

    def read(self, image: Image.Image) -> OcrResult:
        """The words in ``image``; see :class:`OcrEngine`.

        Raises:
            OcrFailedError: RapidOCR raised on this image.
        """
        prepared, scale = prepare(image, self._options.max_side)
        rgb = np.asarray(prepared)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        try:
            with self._lock:
                # Lines are filtered per word below, so RapidOCR keeps every line it recognises.
                raw, _ = self._ocr(bgr, return_word_box=True, text_score=0.0, box_thresh=0.5, unclip_ratio=1.6)
            lines = [self._line(rgb, row, scale, image.size) for row in raw or []]
        except Exception as e:  # any failure inside the engine is this image's failure, not the batch's
            raise OcrFailedError("rapidocr", f"{type(e).__name__}: {e}") from e
        return in_reading_order(lines, self._options.min_confidence)

    def _line(self, rgb: NDArray[np.uint8], row: Sequence[Any], scale: float, size: tuple[int, int]) -> Line:
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
        return Line([(t, clip_box(b, scale, *size), c) for t, b, c in words])


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

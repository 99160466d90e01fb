"""Reading helpers both engines share: preparing an image, clipping boxes, and putting words in reading order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
from PIL import Image

from catalens.models.ocr.types import OcrResult, OcrWord, Point

if TYPE_CHECKING:
    from numpy.typing import NDArray

# A word of one character is kept only at this confidence (or min_confidence, if higher).
_LONE_CHARACTER_CONFIDENCE: Final = 0.9


def prepare(image: Image.Image, max_side: int) -> tuple[Image.Image, float]:
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


def clip_box(
    box: Sequence[Sequence[float]] | NDArray[np.float32], scale: float, width: int, height: int
) -> tuple[Point, ...]:
    return tuple(
        (min(max(float(x) * scale, 0.0), float(width)), min(max(float(y) * scale, 0.0), float(height))) for x, y in box
    )


@dataclass(frozen=True)
class Line:
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


def in_reading_order(lines: list[Line], min_confidence: float) -> OcrResult:
    """Order lines top to bottom (lines side by side left to right), keep confident words, number lines."""
    rows: list[list[Line]] = []
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

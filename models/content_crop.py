"""Content crop: frame the product, not the empty studio backdrop around it.

Catalog pictures are mostly product shots: one object on a plain or gently graded backdrop, often with a
wide margin and a floor shadow. A model with a small input (catalens-mini reads 64 px) spends most of those
pixels on backdrop, so the object it must recognise is drawn with a fraction of them. This module finds the
object's bounding box on such a backdrop and returns a square crop around it, padded with the backdrop's own
colour where the square runs past the picture (a long, thin product is letterboxed, never cut by a centre crop).

It only acts when the picture's border is smooth, the test for a studio backdrop: a photo with a scene
behind the object, a picture whose object touches every edge, or noise keeps its whole frame. The backdrop
may be a vertical or horizontal gradient (each pixel is compared with the border colour of its own row and
of its own column). The work is done on a thumbnail of at most ``probe`` pixels a side, so its cost does not
grow with the picture (about 2 ms on one CPU core for a 320-px shot).

The setting is part of a model's recorded preprocessing (catalens-mini's ``mini_config.json``), so stores
built with and without it do not mix: it changes the checkpoint's weights digest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ContentCrop:
    """How a product is found on its backdrop and framed.

    Attributes:
        margin: backdrop kept on each side of the object, as a share of the object's longer side.
        threshold: how far (0-255, largest channel) a pixel must differ from the backdrop to be object.
        max_border_step: the border counts as smooth when 95 % of the steps between neighbouring border
            pixels are at most this (0-255); a rougher border means a scene, and the picture is kept whole.
        min_area: an object smaller than this share of the picture is taken for noise (picture kept whole).
        probe: the longer side of the thumbnail the box is found on.
    """

    margin: float = 0.08
    threshold: float = 24.0
    max_border_step: float = 12.0
    min_area: float = 0.01
    probe: int = 96

    def __post_init__(self) -> None:
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin must be within [0, 1], got {self.margin}")
        if self.probe < 16:
            raise ValueError(f"probe must be at least 16 pixels, got {self.probe}")

    def find(self, image: Image.Image) -> Framing | None:
        """Where the object is: a square box around it (picture coordinates) and the backdrop colour, or None.

        None means "keep the whole picture": no smooth backdrop, no object, or an object that already
        fills the frame.
        """
        width, height = image.size
        scale = min(1.0, self.probe / max(width, height))
        thumb_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        thumb = image.convert("RGB") if image.mode != "RGB" else image
        if thumb_size != image.size:
            thumb = thumb.resize(thumb_size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        pixels = np.asarray(thumb, dtype=np.float32)
        rows, cols = pixels.shape[:2]
        if rows < 8 or cols < 8:
            return None
        sides = (pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1])
        steps = np.concatenate([np.abs(np.diff(side, axis=0)).max(axis=1) for side in sides])
        if float(np.percentile(steps, 95)) > self.max_border_step:
            return None
        row_backdrop = (pixels[:, :1] + pixels[:, -1:]) / 2
        col_backdrop = (pixels[:1] + pixels[-1:]) / 2
        distance = np.minimum(np.abs(pixels - row_backdrop).max(axis=2), np.abs(pixels - col_backdrop).max(axis=2))
        foreground = distance > self.threshold
        # A row or column belongs to the object only with a few object pixels in it: lone JPEG speckles do not.
        filled_rows = np.flatnonzero(foreground.sum(axis=1) >= max(1, cols // 100))
        filled_cols = np.flatnonzero(foreground.sum(axis=0) >= max(1, rows // 100))
        if filled_rows.size == 0 or filled_cols.size == 0:
            return None
        sx, sy = width / cols, height / rows
        left, right = filled_cols[0] * sx, (filled_cols[-1] + 1) * sx
        top, bottom = filled_rows[0] * sy, (filled_rows[-1] + 1) * sy
        box_w, box_h = right - left, bottom - top
        if box_w * box_h < self.min_area * width * height:
            return None
        side = max(box_w, box_h) * (1.0 + 2.0 * self.margin)
        if side >= min(width, height) and max(box_w, box_h) >= 0.95 * max(width, height):
            return None  # the object spans the picture: cropping would only cut it
        cx, cy = (left + right) / 2, (top + bottom) / 2
        border = np.concatenate(sides).mean(axis=0)
        backdrop = (int(border[0]), int(border[1]), int(border[2]))
        return Framing((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), backdrop)

    def apply(self, image: Image.Image) -> Image.Image:
        """The picture framed on its object at full resolution (RGB), or the whole picture when :meth:`find`
        declines."""
        rgb = image.convert("RGB")
        framing = self.find(rgb)
        if framing is None:
            return rgb
        left, top, right, _ = framing.box
        canvas = Image.new("RGB", (max(1, round(right - left)),) * 2, framing.backdrop)
        canvas.paste(rgb, (round(-left), round(-top)))  # pixel for pixel: the part outside the box falls away
        return canvas


@dataclass(frozen=True)
class Framing:
    """A found object: the square ``box`` around it (may run past the picture) and the ``backdrop`` colour."""

    box: Box
    backdrop: tuple[int, int, int]

    def render(self, image: Image.Image, size: int) -> Image.Image:
        """The box drawn at ``size`` x ``size`` pixels from the RGB ``image``: the part inside the picture is
        resampled straight from it (no full-resolution copy), the rest is backdrop."""
        left, top, right, bottom = self.box
        scale = size / (right - left)
        inside = (max(0.0, left), max(0.0, top), min(float(image.width), right), min(float(image.height), bottom))
        canvas = Image.new("RGB", (size, size), self.backdrop)
        x0, y0 = round((inside[0] - left) * scale), round((inside[1] - top) * scale)
        x1, y1 = round((inside[2] - left) * scale), round((inside[3] - top) * scale)
        if x1 > x0 and y1 > y0:
            part = image.resize((x1 - x0, y1 - y0), Image.Resampling.BICUBIC, box=inside, reducing_gap=3.0)
            canvas.paste(part, (x0, y0))
        return canvas

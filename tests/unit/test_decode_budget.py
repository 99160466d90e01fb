"""Large images: decoded no larger than a model needs, and refused past a pixel budget with a reason."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from catalens.indexer.errors import ImageDecodeError
from catalens.indexer.images import decode_image
from tests.conftest import pattern_image, png_header_only


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def test_png_over_the_pixel_budget_is_refused_with_a_reason() -> None:
    with pytest.raises(
        ImageDecodeError,
        match=r"too large to decode: 5000x4000 = 20000000 pixels exceeds the "
        r"10000000-pixel budget for PNG images",
    ):
        decode_image(png_header_only(5000, 4000), source="big.png", max_pixels=10_000_000)


def test_jpeg_decoded_at_reduced_size_is_not_held_to_the_budget() -> None:
    data = _encode(pattern_image(1, (1200, 900)), "JPEG", quality=90)
    decoded = decode_image(data, draft_size=224, max_pixels=500_000)
    assert (decoded.width, decoded.height) == (1200, 900)
    with pytest.raises(ImageDecodeError, match="budget for JPEG"):
        decode_image(data, max_pixels=500_000)  # no draft: decoded at full size


@pytest.mark.parametrize("mode", ["RGBA", "P", "LA"])
def test_large_png_is_reduced_to_what_the_model_needs(mode: str) -> None:
    base = pattern_image(3, (1500, 1000))
    image = base.convert(mode) if mode != "P" else base.quantize(32)
    if mode in ("RGBA", "LA"):
        alpha = Image.new("L", image.size, 255)
        alpha.paste(0, (0, 0, 300, 1000))  # a transparent stripe on the left
        image.putalpha(alpha)
    decoded = decode_image(_encode(image, "PNG"), draft_size=224)
    assert (decoded.width, decoded.height) == (1500, 1000)
    assert decoded.image.mode == "RGB"
    assert 224 <= min(decoded.image.size) < 448 and decoded.image.size == (375, 250)
    full = decode_image(_encode(image, "PNG")).image.resize(decoded.image.size, Image.Resampling.BOX)
    difference = np.abs(np.asarray(full, dtype=int) - np.asarray(decoded.image, dtype=int))
    assert difference.mean() < 2  # the same picture, box-averaged
    if mode in ("RGBA", "LA"):
        assert np.asarray(decoded.image)[:, :70].min() == 255  # transparency composited over white


def test_reduced_image_keeps_its_exif_orientation() -> None:
    upright = pattern_image(4, (600, 900))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = upright.rotate(90, expand=True)  # 900 x 600 on disk, orientation 6 turns it back
    decoded = decode_image(_encode(stored, "PNG", exif=exif.tobytes()), draft_size=100)
    assert (decoded.width, decoded.height) == (600, 900)
    assert decoded.image.size == (100, 150)
    expected = upright.reduce(6)
    assert np.abs(np.asarray(expected, dtype=int) - np.asarray(decoded.image, dtype=int)).mean() < 2

"""Safe decoding: bad files give reasons, odd modes and EXIF rotations give the upright RGB image."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from catalens.indexer.errors import ImageDecodeError
from catalens.indexer.images import decode_image, sniff_format
from tests.conftest import pattern_image


def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _cosine(model: Any, a: Image.Image, b: Image.Image) -> float:
    vectors = model.encode_images([a, b])
    return float(vectors[0] @ vectors[1])


def test_every_bad_file_gives_a_reason(tmp_path: Path, bad_files: Callable[[Path], dict[str, str]]) -> None:
    expected = bad_files(tmp_path)
    for name, fragment in expected.items():
        with pytest.raises(ImageDecodeError) as caught:
            decode_image((tmp_path / name).read_bytes(), source=name)
        assert fragment in caught.value.reason, (name, caught.value.reason)
        assert caught.value.source == name


def test_disallowed_format_is_refused() -> None:
    data = _encode(pattern_image(1), "PPM")
    with pytest.raises(ImageDecodeError, match="not a supported image"):
        decode_image(data)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotation_matches_upright_twin(tiny_model: Any, orientation: int) -> None:
    upright = pattern_image(7, (120, 80))
    # The stored pixels are what a camera would write; the EXIF tag says how to turn them upright.
    stored = {3: upright.rotate(180), 6: upright.rotate(90, expand=True), 8: upright.rotate(270, expand=True)}
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(stored[orientation], "PNG", exif=exif.tobytes())
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == upright.size
    assert np.array_equal(np.asarray(decoded.image), np.asarray(upright))
    assert _cosine(tiny_model, decoded.image, upright) > 0.999


def test_rotated_jpeg_reports_full_size_even_with_draft(tiny_model: Any) -> None:
    upright = pattern_image(8, (640, 480))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(upright.rotate(90, expand=True), "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode_image(data, draft_size=224)
    assert (decoded.width, decoded.height) == (640, 480)
    assert decoded.image.width > decoded.image.height
    assert _cosine(tiny_model, decoded.image, upright) > 0.999


def test_cmyk_matches_rgb_twin(tiny_model: Any) -> None:
    rgb = pattern_image(3)
    decoded = decode_image(_encode(rgb.convert("CMYK"), "TIFF"))
    assert decoded.image.mode == "RGB"
    assert _cosine(tiny_model, decoded.image, rgb) > 0.999


def test_palette_with_transparency_is_composited_over_white(tiny_model: Any) -> None:
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    rgba.paste((200, 30, 30, 255), (16, 16, 48, 48))
    twin = Image.new("RGB", (64, 64), (255, 255, 255))
    twin.paste((200, 30, 30), (16, 16, 48, 48))
    palette = rgba.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    palette.info["transparency"] = palette.getpixel((0, 0))
    decoded = decode_image(_encode(palette, "PNG", transparency=palette.getpixel((0, 0))))
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)
    assert _cosine(tiny_model, decoded.image, twin) > 0.999


def test_la_over_white(tiny_model: Any) -> None:
    gray = Image.new("L", (64, 64), 90)
    alpha = Image.new("L", (64, 64), 0)
    alpha.paste(255, (0, 0, 32, 64))
    la = Image.merge("LA", (gray, alpha))
    twin = Image.new("RGB", (64, 64), (255, 255, 255))
    twin.paste((90, 90, 90), (0, 0, 32, 64))
    decoded = decode_image(_encode(la, "PNG"))
    assert np.array_equal(np.asarray(decoded.image), np.asarray(twin))
    assert _cosine(tiny_model, decoded.image, twin) > 0.999


def test_sixteen_bit_keeps_contrast(tiny_model: Any) -> None:
    ramp8 = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    sixteen = Image.fromarray(ramp8.astype(np.uint16) * 257)
    decoded = decode_image(_encode(sixteen, "PNG"))
    twin = Image.fromarray(ramp8, mode="L").convert("RGB")
    assert np.abs(np.asarray(decoded.image, dtype=int) - np.asarray(twin, dtype=int)).max() <= 1
    assert _cosine(tiny_model, decoded.image, twin) > 0.999


def test_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), color) for color in [(255, 0, 0), (0, 0, 255)]]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    pixel = decode_image(data).image.getpixel((5, 5))
    assert isinstance(pixel, tuple) and pixel[0] > 200 and pixel[2] < 50


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_allowed_formats_decode_and_sniff(fmt: str) -> None:
    data = _encode(pattern_image(2), fmt)
    assert sniff_format(data[:16]) == fmt
    decoded = decode_image(data)
    assert decoded.format == fmt and decoded.image.mode == "RGB" and decoded.image.size == (96, 64)

"""Safe image decoding: every catalog image goes through :func:`decode_image` before it reaches a model.

Rules: a format allowlist, Pillow's decompression-bomb limit kept on (and enforced as an error, not only a
warning), EXIF orientation applied, every mode converted to 8-bit RGB with transparency composited over
white, GIFs reduced to their first frame.

Memory: a model needs a few hundred pixels a side, so with ``draft_size`` an image is decoded no larger
than needed: JPEGs at a reduced DCT scale (libjpeg draft mode), other formats (which Pillow can only decode
at full size) box-reduced right after decoding, before any orientation or mode conversion copies them. The
peak is then about one full-size raster (at most 4 bytes a pixel) instead of several; ``max_pixels`` bounds
that raster below Pillow's bomb limit for formats decoded at full size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from catalens.indexer.errors import ImageDecodeError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
WHITE = (255, 255, 255)
# EXIF orientations 5-8 rotate by 90 degrees, so the upright image has width and height swapped.
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)
#: How each EXIF orientation is made upright (what ``ImageOps.exif_transpose`` does, without its full copy).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: Modes ``Image.reduce`` works on; others are converted to RGB first (strip by strip).
_REDUCIBLE_MODES = ("L", "LA", "La", "I", "F", "RGB", "RGBA", "RGBa", "CMYK")
#: Modes ``Image.reduce`` reduces without a full-size intermediate copy.
_REDUCED_IN_PLACE = ("L", "I", "F", "RGB", "CMYK")
#: Pixels per strip when reducing strip by strip (a few MB).
_STRIP_PIXELS = 1 << 20


@dataclass(frozen=True)
class DecodedImage:
    """An image ready for a model.

    Attributes:
        image: the upright RGB image.
        width: full-resolution width after EXIF rotation (``image`` may be smaller after a JPEG draft).
        height: full-resolution height after EXIF rotation.
        format: the detected container format, e.g. ``"JPEG"``.
    """

    image: Image.Image
    width: int
    height: int
    format: str


def sniff_format(head: bytes) -> str | None:
    """Name the image format from the first bytes of a file, or ``None`` when it is not an allowed image."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _describe_non_image(data: bytes) -> str:
    head = data[:512]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"not a supported image (allowed formats: {', '.join(ALLOWED_FORMATS)})"
    if all(ch.isprintable() or ch.isspace() for ch in text):
        return "not an image: the file contains text"
    return f"not a supported image (allowed formats: {', '.join(ALLOWED_FORMATS)})"


def decode_image(
    data: bytes, *, source: str = "<bytes>", draft_size: int | None = None, max_pixels: int | None = None
) -> DecodedImage:
    """Decode bytes into an upright RGB image.

    Args:
        data: the encoded image.
        source: a path or URL, used in error messages only.
        draft_size: when set, the image is made no larger than needed to cover this many pixels on each
            side: JPEGs are decoded at a reduced scale (libjpeg's DCT scaling; several times faster), other
            formats are box-reduced right after decoding (before any further copy is made).
        max_pixels: the most pixels an image decoded at full size may have (every format but a JPEG with
            ``draft_size``), to bound the decoder's memory below Pillow's bomb limit (about 4 bytes a pixel);
            ``None``: Pillow's limit (``Image.MAX_IMAGE_PIXELS``) alone.

    Returns:
        The decoded image with its size after EXIF rotation.

    Raises:
        ImageDecodeError: empty data, a format outside the allowlist, a decompression bomb, or corrupt or
            truncated image data; ``reason`` says which.
    """
    if not data:
        raise ImageDecodeError(source, "empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise ImageDecodeError(source, _describe_non_image(data)) from None
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(source, f"decompression bomb refused: {e}") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageDecodeError(source, f"unreadable image header: {e}") from e
    fmt = str(image.format)
    width, height = image.size
    # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse at the limit itself.
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise ImageDecodeError(
            source, f"decompression bomb refused: {width}x{height} = {width * height} pixels exceeds {limit}"
        )
    reduced_decode = bool(draft_size) and fmt == "JPEG"
    if max_pixels is not None and not reduced_decode and width * height > max_pixels:
        raise ImageDecodeError(
            source,
            f"too large to decode: {width}x{height} = {width * height} pixels exceeds the {max_pixels}-pixel "
            f"budget for {fmt} images, which are decoded at full size (only JPEGs decode at a reduced size)",
        )
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        if orientation in _TRANSPOSING_ORIENTATIONS:
            width, height = height, width
        if fmt == "GIF":
            image.seek(0)
        if reduced_decode and draft_size:
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        decoded: Image.Image = _shrink(image, draft_size) if draft_size else image
        rgb = to_rgb(_upright(decoded, orientation))
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(source, f"decompression bomb refused: {e}") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageDecodeError(source, f"corrupt or truncated image data: {e}") from e
    return DecodedImage(image=rgb, width=width, height=height, format=fmt)


def _shrink(image: Image.Image, size: int) -> Image.Image:
    """Box-reduce a decoded image by the largest integer factor that keeps both sides at least ``size``.

    Modes without alpha are reduced in one call, which allocates only the small result. Pillow reduces
    alpha modes through a premultiplied full-size copy, and palette or 16-bit modes must be converted first,
    so those go strip by strip (each strip a multiple of the factor in height, so the result is the same):
    the extra memory is one strip, not one more full-size raster.
    """
    factor = min(image.size) // max(int(size), 1)
    if factor < 2:
        return image
    if image.mode in _REDUCED_IN_PLACE:
        return image.reduce(factor)
    width, height = image.size
    step = factor * max(1, _STRIP_PIXELS // (width * factor))
    result: Image.Image | None = None
    for top in range(0, height, step):
        strip = image.crop((0, top, width, min(height, top + step)))
        if strip.mode not in _REDUCIBLE_MODES:
            strip = to_rgb(strip)
        small = strip.reduce(factor)
        if result is None:
            result = Image.new(small.mode, (-(-width // factor), -(-height // factor)))
        result.paste(small, (0, top // factor))
    assert result is not None
    return result


def _upright(image: Image.Image, orientation: object) -> Image.Image:
    """The image turned as its EXIF orientation says (unchanged for orientation 1 or none)."""
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(method) if method is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited over white.

    16-bit and 32-bit integer and float modes are rescaled rather than clipped, so a 16-bit PNG keeps
    its contrast instead of turning white.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_rescale_to_uint8(image), mode="L").convert("RGB")
    if mode == "P" and "transparency" not in image.info:
        return image.convert("RGB")  # no alpha to composite: skip the full-size RGBA copy
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA")
    elif mode in ("LA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, WHITE)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _rescale_to_uint8(image: Image.Image) -> np.ndarray:
    array = np.asarray(image)
    if image.mode.startswith("I;16"):
        scaled = array.astype(np.float32) / 257.0
    elif image.mode == "F":
        top = float(array.max()) if array.size else 1.0
        scaled = array * (255.0 if top <= 1.0 else 255.0 / top)
    else:  # mode "I": 16-bit PNGs open as "I" in some Pillow versions
        top = float(array.max()) if array.size else 0.0
        scaled = array / 257.0 if top > 255 else array.astype(np.float32)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)

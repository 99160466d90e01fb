"""Safe image decoding: every catalog image goes through :func:`decode_image` before it reaches a model.

Rules: a format allowlist, Pillow's decompression-bomb limit kept on (and enforced as an error, not only a
warning), EXIF orientation applied, every mode converted to 8-bit RGB with transparency composited over
white, GIFs reduced to their first frame.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

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


def decode_image(data: bytes, *, source: str = "<bytes>", draft_size: int | None = None) -> DecodedImage:
    """Decode bytes into an upright RGB image.

    Args:
        data: the encoded image.
        source: a path or URL, used in error messages only.
        draft_size: when set, JPEGs are decoded at a reduced scale that still covers this many pixels on
            each side (libjpeg's DCT scaling); several times faster for models that resize to 224 px anyway.

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
    try:
        if image.getexif().get(ExifTags.Base.Orientation, 1) in _TRANSPOSING_ORIENTATIONS:
            width, height = height, width
        if fmt == "GIF":
            image.seek(0)
        if draft_size and fmt == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        rgb = to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(source, f"decompression bomb refused: {e}") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageDecodeError(source, f"corrupt or truncated image data: {e}") from e
    return DecodedImage(image=rgb, width=width, height=height, format=fmt)


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

"""Privacy operations on images: strip location metadata from stored bytes, blur regions of served images.

**Location stripping** (:func:`strip_location`) works on the encoded bytes and never re-encodes pixels of a
lossy format:

* JPEG: the ``APP1 Exif`` segment is rewritten without its GPS IFD (every other tag, the Exif sub-IFD and
  the orientation included, is kept); XMP segments that mention a location (GPS coordinates, city, address,
  location names) are dropped whole. All other segments and the entropy-coded image data are copied byte for
  byte.
* PNG: the ``eXIf`` chunk is rewritten without GPS (new CRC); XMP and raw EXIF profile text chunks that
  mention a location are dropped.
* WebP: the ``EXIF`` chunk is rewritten without GPS, a location-bearing ``XMP`` chunk is dropped (its
  ``VP8X`` flag cleared) and the RIFF size fixed.
* TIFF: GPS lives in the image's own IFD, so a TIFF with a GPS IFD is re-saved by Pillow, losslessly (same
  pixels, same compression); the first frame only.
* GIF and BMP carry no EXIF and are returned unchanged.

Bytes with nothing to strip are returned unchanged (the same object), so a content hash of the result is
stable: stripping twice gives the bytes stripping once gave.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Iterable, Sequence

from PIL import ExifTags, Image, ImageFilter

from catalens.indexer.images import sniff_format

#: The XMP properties that carry a location; an XMP packet naming any of them is dropped.
_XMP_LOCATION = re.compile(
    rb"(exif:GPS|exifEX:GPS|photoshop:(City|State|Country)|Iptc4xmpCore:(Location|CountryCode)|"
    rb"Iptc4xmpExt:Location|LocationCreated|LocationShown|drone-dji:(Gps|Latitude|Longitude)|"
    rb"GPSLatitude|GPSLongitude)",
)
_XMP_SIGNATURES = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_EXIF_HEADER = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_PROFILE_KEYWORDS = (b"XML:com.adobe.xmp", b"Raw profile type exif", b"Raw profile type APP1")
_VP8X_XMP_FLAG = 0x04
_VP8X_EXIF_FLAG = 0x08

Box = tuple[float, float, float, float]


def strip_location(data: bytes) -> bytes:
    """The image bytes without location metadata (GPS EXIF, location XMP); see the module docstring.

    Args:
        data: an encoded image (any format; unknown or malformed containers come back unchanged, and
            decoding is left to :func:`~catalens.indexer.images.decode_image`, which reports why).

    Returns:
        ``data`` itself when nothing had to go, else the rewritten bytes.
    """
    fmt = sniff_format(data[:16])
    try:
        if fmt == "JPEG":
            return _strip_jpeg(data)
        if fmt == "PNG":
            return _strip_png(data)
        if fmt == "WEBP":
            return _strip_webp(data)
        if fmt == "TIFF":
            return _strip_tiff(data)
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        struct.error,
        zlib.error,
        OSError,
        SyntaxError,
        EOFError,
        Image.DecompressionBombError,
    ):
        # A malformed container: leave it as it came; the decoder rejects it with a reason if it is unusable.
        return data
    return data


def has_location(data: bytes) -> bool:
    """Whether the image bytes carry a GPS IFD or location XMP (what :func:`strip_location` removes)."""
    return strip_location(data) is not data


def _exif_without_gps(payload: bytes) -> bytes | None:
    """An EXIF block (``Exif\\0\\0`` + TIFF, or bare TIFF) without its GPS IFD; ``None`` if it has none."""
    exif = Image.Exif()
    exif.load(payload)
    if ExifTags.IFD.GPSInfo not in exif:
        return None
    del exif[ExifTags.IFD.GPSInfo]
    rewritten = exif.tobytes()
    if not payload.startswith(_EXIF_HEADER):
        rewritten = rewritten[len(_EXIF_HEADER) :]
    check = Image.Exif()
    check.load(rewritten)
    if ExifTags.IFD.GPSInfo in check:
        raise ValueError("GPS IFD survived the rewrite")
    return rewritten


def _strip_jpeg(data: bytes) -> bytes:
    out = bytearray(data[:2])
    pos = 2
    changed = False
    segments: list[tuple[int, bytes]] = []
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("not a JPEG marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: the rest is image data
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            segments.append((marker, b""))
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segments.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length
    drop_xmp = any(
        marker == 0xE1 and body.startswith(_XMP_SIGNATURES) and _XMP_LOCATION.search(body) for marker, body in segments
    )
    for marker, body in segments:
        if marker == 0xE1 and body.startswith(_EXIF_HEADER):
            rewritten = _exif_without_gps(body)
            if rewritten is not None:
                body, changed = rewritten, True
        elif marker == 0xE1 and drop_xmp and body.startswith(_XMP_SIGNATURES):
            changed = True
            continue
        if len(body) + 2 > 0xFFFF:
            raise ValueError("segment too long")
        out += bytes((0xFF, marker))
        if body or not (0xD0 <= marker <= 0xD7 or marker == 0x01):
            out += struct.pack(">H", len(body) + 2) + body
    if not changed:
        return data
    out += data[pos:]
    return bytes(out)


def _png_chunks(data: bytes) -> Iterable[tuple[bytes, bytes]]:
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        yield kind, data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IEND":
            return


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_text_mentions_location(kind: bytes, body: bytes) -> bool:
    keyword, _, rest = body.partition(b"\x00")
    if keyword not in _PNG_PROFILE_KEYWORDS:
        return False
    if keyword != b"XML:com.adobe.xmp":
        return True  # a raw EXIF profile: hex text that may hold GPS; it duplicates eXIf and is not needed
    text = rest
    if kind == b"iTXt" and len(rest) >= 2:
        compressed = rest[0] == 1
        _, _, text = rest[2:].partition(b"\x00")  # language tag
        _, _, text = text.partition(b"\x00")  # translated keyword
        if compressed:
            text = zlib.decompress(text)
    elif kind == b"zTXt":
        text = zlib.decompress(rest[1:])
    return bool(_XMP_LOCATION.search(text))


def _strip_png(data: bytes) -> bytes:
    out = bytearray(_PNG_SIGNATURE)
    changed = False
    for kind, body in _png_chunks(data):
        if kind == b"eXIf":
            rewritten = _exif_without_gps(body)
            if rewritten is not None:
                body, changed = rewritten, True
        elif kind in (b"tEXt", b"zTXt", b"iTXt") and _png_text_mentions_location(kind, body):
            changed = True
            continue
        out += _png_chunk(kind, body)
    return bytes(out) if changed else data


def _strip_webp(data: bytes) -> bytes:
    pos = 12
    chunks: list[tuple[bytes, bytes]] = []
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 8 + length + (length & 1)
    changed = False
    kept: list[tuple[bytes, bytes]] = []
    flags_clear = 0
    for kind, body in chunks:
        if kind == b"EXIF":
            rewritten = _exif_without_gps(body)
            if rewritten is not None:
                body, changed = rewritten, True
        elif kind == b"XMP " and _XMP_LOCATION.search(body):
            changed, flags_clear = True, flags_clear | _VP8X_XMP_FLAG
            continue
        kept.append((kind, body))
    if not changed:
        return data
    payload = bytearray(b"WEBP")
    for kind, body in kept:
        if kind == b"VP8X" and body:
            body = bytes((body[0] & ~flags_clear & 0xFF,)) + body[1:]
        payload += kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")
    return b"RIFF" + struct.pack("<I", len(payload)) + bytes(payload)


def _strip_tiff(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data), formats=("TIFF",)) as image:
        exif = image.getexif()
        if ExifTags.IFD.GPSInfo not in exif:
            return data
        del exif[ExifTags.IFD.GPSInfo]
        compression = image.info.get("compression", "raw")
        buffer = io.BytesIO()
        image.save(buffer, format="TIFF", exif=exif, compression=compression)
    return buffer.getvalue()


def blur_regions(image: Image.Image, boxes: Sequence[Box], *, margin: float = 0.25) -> Image.Image:
    """A copy of ``image`` with each box (and a margin around it) made unrecognisable.

    Each region is pixelated to about 8 blocks across and then Gaussian-blurred, which leaves no facial
    detail even on large faces (a Gaussian alone leaves a recognisable silhouette at any radius a
    photograph tolerates). The input image is never modified.

    Args:
        image: the RGB image.
        boxes: ``(x0, y0, x1, y1)`` pixel boxes.
        margin: how much to grow each box on every side, as a fraction of its width and height (faces'
            boxes from detectors leave out hair, ears and chin).

    Returns:
        A new image (``image`` itself is returned when there are no boxes).
    """
    if not boxes:
        return image
    out = image.copy()
    for x0, y0, x1, y1 in boxes:
        dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
        left, top = max(0, int(x0 - dx)), max(0, int(y0 - dy))
        right, bottom = min(image.width, int(x1 + dx + 1)), min(image.height, int(y1 + dy + 1))
        if right - left < 2 or bottom - top < 2:
            continue
        region = out.crop((left, top, right, bottom))
        block = max(1, max(region.width, region.height) // 8)
        small = region.resize(
            (max(1, region.width // block), max(1, region.height // block)), Image.Resampling.BILINEAR
        )
        region = small.resize(region.size, Image.Resampling.NEAREST)
        region = region.filter(ImageFilter.GaussianBlur(radius=max(1.0, block / 2)))
        out.paste(region, (left, top))
    return out

"""The image decoder under mutated bytes: only ``ImageDecodeError`` ever escapes, and memory stays bounded.

Hypothesis mutates small valid JPEG, PNG, GIF, WebP and TIFF files (bit flips, overwritten runs, truncation,
inserted and deleted bytes). Examples are derandomized and bounded, so the run is the same in CI every time
and takes a few seconds. Headers that claim huge dimensions are decoded in a child process whose address
space is capped, so an allocation sized from the header would fail there instead of passing unnoticed.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from catalens.indexer.errors import ImageDecodeError
from catalens.indexer.images import decode_image
from tests.conftest import pattern_image

REPO = Path(__file__).resolve().parents[2]
# Pillow warns about the odd tags mutation produces; the outcome (decoded or ImageDecodeError) is what counts.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
FUZZ = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _encode(fmt: str) -> bytes:
    image = pattern_image(7, (24, 16))
    out = io.BytesIO()
    if fmt == "GIF":
        frames = [image.convert("P"), pattern_image(8, (24, 16)).convert("P")]
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50)
    elif fmt == "PNG":
        image.convert("RGBA").save(out, "PNG")
    elif fmt == "TIFF":
        image.save(out, "TIFF", compression="tiff_lzw")
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=80)
    else:
        image.save(out, "JPEG", quality=85)
    return out.getvalue()


SEEDS = {fmt: _encode(fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP", "TIFF")}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with one to four edits: flipped bits, an overwritten run, a cut, an insert or a deletion."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(("flip", "overwrite", "truncate", "insert", "delete")))
        if edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "overwrite":
            run = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(run)] = run
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


def _decode_or_documented_error(data: bytes) -> None:
    try:
        decoded = decode_image(data, source="fuzz")
    except ImageDecodeError as e:
        assert e.reason
        return
    assert decoded.image.mode == "RGB"
    assert decoded.image.size[0] > 0 and decoded.image.size[1] > 0


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_the_unmutated_seed_decodes(fmt: str) -> None:
    assert decode_image(SEEDS[fmt]).format == fmt


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutated_images_raise_only_image_decode_error(fmt: str) -> None:
    @FUZZ
    @given(data=mutated(SEEDS[fmt]))
    def check(data: bytes) -> None:
        _decode_or_documented_error(data)

    check()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return png + _png_chunk(b"IEND", b"")


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real 24x16 JPEG whose baseline frame header (SOF0) declares another size."""
    jpeg = bytearray(SEEDS["JPEG"])
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(jpeg)


def _tiff_claiming(side: int) -> bytes:
    """One uncompressed strip of a ``side`` x ``side`` 8-bit grey image, with 16 bytes of data behind it."""
    entries = [
        (256, 4, side),  # ImageWidth
        (257, 4, side),  # ImageLength
        (258, 3, 8),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # Photometric: min-is-black
        (273, 4, 8 + 2 + 9 * 12 + 4),  # StripOffsets
        (277, 3, 1),  # SamplesPerPixel
        (278, 4, side),  # RowsPerStrip
        (279, 4, 16),  # StripByteCounts
    ]
    packed = [
        struct.pack("<HHII", tag, kind, 1, value) if kind == 4 else struct.pack("<HHIHH", tag, kind, 1, value, 0)
        for tag, kind, value in entries
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(packed)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00" + b"\x00" * 16


def huge_headers() -> dict[str, bytes]:
    """Small files whose header claims a huge canvas: far past Pillow's pixel limit, and just under it."""
    gif = b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00"
    gif += b"\x2c" + struct.pack("<HHHH", 0, 0, 65535, 65535) + b"\x00" + b"\x02\x02\x44\x01\x00" + b"\x3b"
    # WebP extended format: a VP8X chunk with a 16384 x 16384 canvas (24-bit minus-one fields).
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (16383).to_bytes(3, "little") * 2
    webp = b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    return {
        "png-huge": _png_header(2**31 - 1, 2**31 - 1),
        "png-under-limit": _png_header(9000, 9000),
        "jpeg-huge": _jpeg_claiming(65500, 65500),
        "jpeg-under-limit": _jpeg_claiming(9000, 9000),
        "gif-huge": gif,
        "webp-huge": webp,
        "tiff-huge": _tiff_claiming(100000),
        "tiff-under-limit": _tiff_claiming(9000),
    }


# Without a draft, the decoded canvas (RGB) and one converted copy of it, at Pillow's pixel limit.
_LIMIT_MIB = (Image.MAX_IMAGE_PIXELS or 0) * 3 * 2 // 2**20


@pytest.mark.parametrize(("draft", "bound_mib"), [(224, 64), (None, _LIMIT_MIB + 64)])
def test_huge_dimension_headers_keep_memory_bounded(tmp_path: Path, draft: int | None, bound_mib: int) -> None:
    """Decoded in a fresh child, no header grows peak resident memory past a bound set by the pixel limit.

    Past Pillow's pixel limit every file is refused. Just under it, a PNG or TIFF with a few bytes of data
    fails as truncated, while libjpeg pads a short JPEG with grey (its documented behaviour), so the canvas
    is real: as the indexer decodes (JPEG draft at the model's input size) it costs a few MiB, and without a
    draft about two RGB copies of a canvas at the limit (~89 M pixels): bounded, but ~580 MiB for a
    700-byte file, so request paths should decode with a draft size too.
    """
    for name, data in huge_headers().items():
        (tmp_path / name).write_bytes(data)
    child = textwrap.dedent(
        """
        import resource, sys
        from pathlib import Path
        from catalens.indexer.errors import ImageDecodeError
        from catalens.indexer.images import decode_image

        def peak():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

        draft = int(sys.argv[2]) or None
        before = peak()
        for path in sorted(Path(sys.argv[1]).iterdir()):
            try:
                decode_image(path.read_bytes(), source=path.name, draft_size=draft)
            except ImageDecodeError as e:
                print(f"{path.name}\\trefused: {e.reason}")
            else:
                print(f"{path.name}\\tdecoded")
        print(f"growth\\t{peak() - before}")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", child, str(tmp_path), str(draft or 0)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    outcomes = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    growth = int(outcomes.pop("growth"))
    assert set(outcomes) == set(huge_headers())
    for name, outcome in outcomes.items():
        if name.endswith("-huge"):
            assert outcome.startswith("refused: decompression bomb"), f"{name}: {outcome}"
        elif not name.startswith("jpeg"):
            assert outcome.startswith("refused"), f"{name}: {outcome}"
    assert growth < bound_mib * 2**20, f"peak memory grew by {growth / 2**20:.0f} MiB"


def test_huge_dimension_headers_name_the_reason() -> None:
    """In process too: every header far past the pixel limit is refused as a decompression bomb."""
    for name, data in huge_headers().items():
        if name.endswith("-huge"):
            with pytest.raises(ImageDecodeError, match="decompression bomb"):
                decode_image(data, source=name)
    assert Image.MAX_IMAGE_PIXELS is not None

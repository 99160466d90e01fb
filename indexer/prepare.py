"""One item's bytes → a decoded image, or the reason it has none: the step every indexing path shares.

The local pipeline runs :func:`read_item` in its decode threads; a Ray run runs it in CPU tasks on the
cluster's nodes. Keeping it in one place is what makes the two give the same items, the same vectors and
the same failure reasons.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from PIL import Image

from catalens.indexer.errors import ItemError
from catalens.indexer.fetch import Fetcher
from catalens.indexer.images import decode_image


@dataclass(frozen=True)
class Decoded:
    """An item whose bytes are new: hashed and decoded, ready to be preprocessed for a model.

    Attributes:
        content_hash: :func:`content_hash` of the bytes read.
        width, height: the full-resolution size (``image`` may be smaller: decoded at reduced scale).
        image: the upright RGB image, no larger than the model needs when ``draft_size`` was given.
    """

    content_hash: str
    width: int
    height: int
    image: Image.Image


@dataclass(frozen=True)
class SameContent:
    """The bytes hash to what the item already has a vector for: nothing to embed."""


@dataclass(frozen=True)
class Unreadable:
    """The item cannot be read or decoded; ``reason`` is recorded against it."""

    reason: str


ReadResult = Decoded | SameContent | Unreadable


def content_hash(data: bytes) -> str:
    """The content hash recorded per item; equal bytes are never embedded twice."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_item(
    fetcher: Fetcher,
    source: str,
    known_hash: str | None,
    *,
    draft_size: int | None,
    max_pixels: int | None,
) -> ReadResult:
    """Read, hash and decode one item; never raises.

    Args:
        fetcher: reads files and URLs within its limits.
        source: the item's local path or URL.
        known_hash: the content hash the item already has a vector for (``None``: it has none), so an
            unchanged image is recognised before it is decoded.
        draft_size: decode no larger than needed for a model that sees squares of this side.
        max_pixels: the decoder's pixel budget for formats decoded at full size.
    """
    try:
        data = fetcher.read(source)
        digest = content_hash(data)
        if known_hash is not None and known_hash == digest:
            return SameContent()
        decoded = decode_image(data, source=source, draft_size=draft_size, max_pixels=max_pixels)
        return Decoded(digest, decoded.width, decoded.height, decoded.image)
    except ItemError as e:
        return Unreadable(e.reason)
    except Exception as e:  # one bad image must never stop the run
        return Unreadable(f"unexpected error while decoding: {type(e).__name__}: {e}")

"""Weights fingerprints: a short content digest that says whether two loads read the same weights.

A store records the spec of the model its vectors came from, but a spec can name different weights over time:
``catalens-mini`` after an upgrade of catalens, or a checkpoint directory retrained in place. Vectors from two
sets of weights must not be mixed, so every encoder that loads weights from local files reports a digest of
those files (:attr:`models.base.ImageTextEncoder.weights_digest`), the store records it beside the spec, and
the indexer and the search service compare the two. Specs whose weights are published and immutable (an
open_clip pretrained tag, a hub id) or made from a seed have no file to hash and report ``None``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

#: Read size for hashing; large enough that hashing a 1.7 GB checkpoint costs about a second or two.
_CHUNK = 8 << 20

#: The prefix names the hash, so a later catalens can switch hashes without misreading old manifests.
PREFIX = "sha256:"


def file_digest(paths: Iterable[Path]) -> str:
    """The digest of the files' contents in the given order: ``"sha256:"`` and 16 hex digits.

    Each file's length goes into the hash before its bytes, so moving bytes from one file to the next changes
    the digest. Names do not, so copying or moving a checkpoint keeps it.

    Raises:
        OSError: a file cannot be read.
    """
    hasher = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            hasher.update(path.stat().st_size.to_bytes(8, "little"))
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
    return PREFIX + hasher.hexdigest()[:16]

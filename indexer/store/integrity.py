"""Checking an index generation file against what the manifest recorded when it was published.

An index file is derived data, so a damaged one must never be searched: a truncated file makes FAISS raise,
and a valid index from another store would load and silently answer with the wrong items. Every load is
checked here first: the file's checksum (recorded at publish; absent for generations published before
checksums existed), then that it loads, then its dimension and vector count against the manifest.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from catalens.indexer.errors import IndexDamagedError
from catalens.indexer.store.manifest import IndexState

if TYPE_CHECKING:
    from catalens.indexer.vectors.base import VectorIndex

#: The checksum algorithm, written as the checksum's prefix so that another one can follow. CRC-32 catches
#: truncation, overwrites and another store's file (what can happen by accident; whoever can replace the file
#: can rewrite the manifest too) at about 1.5 GB/s here, four times blake2b's speed: every load reads it.
CHECKSUM_ALGORITHM = "crc32"
_CHUNK = 1 << 22

#: Loads an index file given its path and the factory string it was built with.
IndexLoader = Callable[[Path, str], "VectorIndex"]


def file_checksum(path: Path) -> str:
    """``"crc32:<8 hex digits>"`` of a file's bytes, read in 4 MiB chunks."""
    crc = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return f"{CHECKSUM_ALGORITHM}:{crc:08x}"


def load_verified(
    root: Path, store: str, state: IndexState, dim: int, checksum: str | None, load: IndexLoader
) -> VectorIndex:
    """Load a generation's index file, refusing it unless it is the file the manifest describes.

    Args:
        root: the store directory.
        store: the store as errors name it.
        state: the generation as the manifest recorded it (file, factory, vector count).
        dim: the store's vector dimension.
        checksum: the checksum recorded at publish, ``None`` when none was.
        load: reads the file (e.g. :meth:`IndexRegistry.load`).

    Raises:
        IndexDamagedError: the file is missing, its checksum differs, it cannot be read, or its dimension
            or size is not the manifest's.
    """
    path = root / state.file
    if not path.is_file():
        raise IndexDamagedError(store, state.file, "the file is missing")
    if checksum is not None and checksum.startswith(f"{CHECKSUM_ALGORITHM}:"):  # another algorithm: a newer writer
        try:
            found = file_checksum(path)
        except OSError as e:
            raise IndexDamagedError(store, state.file, f"it cannot be read ({e.strerror or e})") from e
        if found != checksum:
            reason = "its checksum is not the one recorded at publish (truncated, overwritten or from another store)"
            raise IndexDamagedError(store, state.file, reason)
    try:
        index = load(path, state.factory)
    except Exception as e:  # FAISS raises RuntimeError (or MemoryError) for truncated or garbled files
        raise IndexDamagedError(store, state.file, f"it cannot be read ({_first_words(e)})") from e
    if index.dim != dim:
        raise IndexDamagedError(store, state.file, f"it holds {index.dim}-dimensional vectors, the store {dim}")
    if index.size != state.count:
        reason = f"it holds {index.size} vectors, the manifest recorded {state.count} (an index of another store?)"
        raise IndexDamagedError(store, state.file, reason)
    return index


def _first_words(error: BaseException) -> str:
    """A short reason from an exception (FAISS messages carry C++ source locations over several lines)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."

"""``manifest.json``: the store-level facts every process reads (model, dimension, current index generation)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from catalens.indexer.fsutil import atomic_write_text

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class IndexState:
    """The published FAISS index generation.

    Attributes:
        generation: increases by one with every publish.
        file: the index file, relative to the store directory.
        factory: the FAISS index-factory string it was built with.
        count: the number of vectors in it.
        built_at: UTC timestamp of the publish.
        seq: the store's change sequence when it was built; later changes are applied on top by readers.
    """

    generation: int
    file: str
    factory: str
    count: int
    built_at: str
    seq: int = 0


@dataclass(frozen=True)
class StoreManifest:
    """The store-level facts in ``manifest.json``; written atomically, read by every process."""

    schema_version: int
    model: str
    dim: int
    index_factory: str
    created_at: str
    index: IndexState | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StoreManifest:
        raw = json.loads(text)
        index = raw.get("index")
        return cls(
            schema_version=int(raw["schema_version"]),
            model=str(raw["model"]),
            dim=int(raw["dim"]),
            index_factory=str(raw["index_factory"]),
            created_at=str(raw["created_at"]),
            index=IndexState(**index) if index else None,
        )


def read_manifest(root: Path) -> StoreManifest:
    """The manifest of the store at ``root`` as it is on disk now.

    Raises:
        FileNotFoundError: no manifest.
        ValueError, KeyError, TypeError: the manifest cannot be parsed.
    """
    return StoreManifest.from_json((root / MANIFEST_NAME).read_text(encoding="utf-8"))


def write_manifest(root: Path, manifest: StoreManifest) -> None:
    """Replace the manifest atomically (temp file, fsync, rename), so a reader never sees half of one."""
    atomic_write_text(root / MANIFEST_NAME, manifest.to_json())


def manifest_stamp(root: Path) -> int | None:
    """A value that changes whenever the manifest is replaced (``None`` while there is none)."""
    try:
        return (root / MANIFEST_NAME).stat().st_mtime_ns
    except FileNotFoundError:
        return None

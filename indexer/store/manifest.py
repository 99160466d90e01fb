"""``manifest.json``: the store-level facts every process reads (model, dimension, current index generation)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

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
        file_bytes: the index file's size (absent in manifests written before it: 0).
        tuning: what was measured on it and the search settings chosen (``IndexTuning.to_dict()`` of
            :mod:`catalens.indexer.vectors.tuning`; ``None`` in manifests written before tuning existed).
    """

    generation: int
    file: str
    factory: str
    count: int
    built_at: str
    seq: int = 0
    file_bytes: int = 0
    tuning: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoreManifest:
    """The store-level facts in ``manifest.json``; written atomically, read by every process.

    Attributes:
        index_factory: the index the store asks for: ``auto`` (planned at every build) or a factory string.
        index: the current generation.
        previous_index: the generation before it, kept on disk for readers that still have it open and as
            the fallback when the current file turns out damaged (absent in manifests written before it).
        checksums: ``{file: "crc32:<hex>"}`` of the kept generation files, recorded at publish. Top-level
            and optional, so manifests without it still load and readers that predate it ignore it.
        model_digest: the weights digest of the model the vectors were made with
            (:attr:`~catalens.models.base.ImageTextEncoder.weights_digest`), so a spec that now names other
            weights (``catalens-mini`` after an upgrade, a checkpoint retrained in place) is noticed. ``None``
            for specs that name immutable weights and in manifests written before it.
    """

    schema_version: int
    model: str
    dim: int
    index_factory: str
    created_at: str
    index: IndexState | None = None
    previous_index: IndexState | None = None
    checksums: dict[str, str] = field(default_factory=dict)
    model_digest: str | None = None

    @property
    def model_key(self) -> str:
        """The model's spec and weights digest in one string, for keys of anything derived from its vectors.

        Captions, prompt vectors and tags that depend on the model record this, so new weights under the
        same spec redo them. It is the bare spec where there is no digest.
        """
        return f"{self.model}#{self.model_digest}" if self.model_digest else self.model

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StoreManifest:
        raw = json.loads(text)
        checksums = raw.get("checksums") or {}
        return cls(
            schema_version=int(raw["schema_version"]),
            model=str(raw["model"]),
            dim=int(raw["dim"]),
            index_factory=str(raw["index_factory"]),
            created_at=str(raw["created_at"]),
            index=_index_state(raw.get("index")),
            previous_index=_index_state(raw.get("previous_index")),
            checksums={str(k): str(v) for k, v in dict(checksums).items()},
            model_digest=str(raw["model_digest"]) if raw.get("model_digest") else None,
        )

    def checksum_of(self, state: IndexState) -> str | None:
        """The checksum recorded for a generation's file, ``None`` for files published before checksums."""
        return self.checksums.get(state.file)


def _index_state(raw: object) -> IndexState | None:
    """An :class:`IndexState` from its JSON object; keys a newer catalens added are ignored."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise TypeError(f"an index entry must be an object, not {type(raw).__name__}")
    known = {f.name for f in fields(IndexState)}
    return IndexState(**{k: v for k, v in raw.items() if k in known})


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

"""What an indexing run is asked to do (:class:`IndexOptions`) and what it did (:class:`IndexReport`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from catalens.indexer.fetch import FetchOptions
from catalens.indexer.store import FailedItem

if TYPE_CHECKING:  # Ray's passes are imported when a run asks for them, not by every command that indexes
    from catalens.indexer.distributed.options import RayOptions


def default_workers() -> int:
    """Decode threads: enough to keep the model fed without starving its own intra-op threads."""
    return max(2, min(8, os.cpu_count() or 2))


@dataclass(frozen=True)
class IndexOptions:
    """How to run an indexing job.

    Attributes:
        model: a model spec; ``None`` keeps the store's model (or uses the default for a new store).
        index_factory: ``auto`` (planned from the store's size and ``index_memory``, then tuned to
            ``target_recall``) or a FAISS index-factory string; ``None`` keeps the store's (``auto`` for a new
            store).
        index_memory: bytes the index may use in RAM, for ``auto`` (``None``: a quarter of the machine's).
        target_recall: the recall@10 the index's search settings are tuned to reach (measured at every build).
        batch_size: images per forward pass; ``None`` picks one for the device.
        workers: decode and preprocess threads.
        rebuild: re-embed every item, and allow switching the store to another model.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        fetch: limits for reading files and URLs.
        max_pixels: the most pixels an image may have when its format cannot be decoded at reduced size
            (every format but JPEG), to bound the decoder's memory (about 4 bytes a pixel); larger images fail
            with a reason. ``None``: Pillow's decompression-bomb limit alone.
        ray: run reading, decoding and the model on Ray (see :mod:`catalens.indexer.distributed`); this
            process stays the store's one writer. ``None``: run here.
    """

    model: str | None = None
    index_factory: str | None = None
    index_memory: int | None = None
    target_recall: float = 0.95
    batch_size: int | None = None
    workers: int = field(default_factory=default_workers)
    rebuild: bool = False
    device: str = "auto"
    fetch: FetchOptions = field(default_factory=FetchOptions)
    max_pixels: int | None = None
    ray: RayOptions | None = None


@dataclass
class IndexReport:
    """The summary of a run, printed by the CLI and returned to library callers."""

    store: str
    model: str
    index_factory: str
    new: int = 0
    updated: int = 0
    metadata_updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[FailedItem] = field(default_factory=list)
    indexed_total: int = 0
    generation: int | None = None
    embedded: int = 0
    embed_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    model_note: str | None = None
    ray: dict[str, Any] | None = None

    @property
    def images_per_second(self) -> float:
        """Items read, decoded and embedded per second of pipeline time (excludes model loading)."""
        return self.embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "model": self.model,
            "model_note": self.model_note,
            "index_factory": self.index_factory,
            "new": self.new,
            "updated": self.updated,
            "metadata_updated": self.metadata_updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": len(self.failed),
            "failures": [{"id": f.id, "source": f.source, "reason": f.reason} for f in self.failed],
            "indexed_total": self.indexed_total,
            "generation": self.generation,
            "embedded": self.embedded,
            "images_per_second": round(self.images_per_second, 2),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            **({"ray": self.ray} if self.ray is not None else {}),
        }

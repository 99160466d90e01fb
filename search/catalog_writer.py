"""Adding and deleting single items from the service, searchable as soon as the call returns.

Writes take the store's writer lock for their duration (one short transaction), so they never interleave
with an indexer run; the engine then folds the change into its snapshot's delta. Uploaded bytes are kept
in ``<store>/uploads/`` under their content hash, so images and thumbnails can be served later.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from catalens.indexer.fetch import Fetcher, FetchOptions
from catalens.indexer.fsutil import atomic_write
from catalens.indexer.images import decode_image
from catalens.indexer.pipeline import content_hash
from catalens.indexer.privacy import strip_location
from catalens.indexer.records import CatalogFields, ItemRecord, catalog_values
from catalens.indexer.store import EmbeddedItem, StoredItem
from catalens.search.engine import SearchEngine
from catalens.search.errors import ItemNotFoundError

API_ORIGIN = "api"
UPLOADS_DIR = "uploads"


@dataclass(frozen=True)
class _NewItemLead:
    id: str


@dataclass(frozen=True)
class NewItem(CatalogFields, _NewItemLead):
    """An item added through the service: its id and :class:`CatalogFields`."""


class CatalogWriter:
    """Single-item writes on behalf of the service."""

    def __init__(
        self,
        engine: SearchEngine,
        fetch: FetchOptions | None = None,
        *,
        keep_location: bool = False,
        max_pixels: int | None = None,
    ) -> None:
        self._engine = engine
        self._keep_location = keep_location  # else GPS EXIF / location XMP is stripped before the bytes are kept
        self._max_pixels = max_pixels  # the decoder's memory bound for formats without reduced decoding
        self._fetch = fetch or FetchOptions()
        # flock is per open file: two requests of this process must also be kept apart.
        self._serial = threading.Lock()

    def add(self, item: NewItem, *, data: bytes | None = None, url: str | None = None) -> StoredItem:
        """Embed and store one item (replacing an item with the same id).

        Args:
            item: the catalog fields.
            data: the image bytes (an upload), or
            url: where to fetch the image from.

        Raises:
            FetchError, ImageDecodeError: the image cannot be had or is not a valid image.
            StoreLockedError: an indexer is writing to the store.
        """
        if data is None:
            if url is None:
                raise ValueError("give the image bytes or a URL")
            with Fetcher(self._fetch) as fetcher:
                data = fetcher.read(url)
        if not self._keep_location:
            data = strip_location(data)  # before hashing: the digest is of the bytes kept in uploads/
        digest = content_hash(data)
        # Decoded no larger than the model looks at, as the indexer does (width and height stay full-size).
        decoded = decode_image(
            data, source=url or item.id, draft_size=self._engine.encoder.decode_size, max_pixels=self._max_pixels
        )
        vector = self._engine.encode_images([decoded.image])[0]  # the engine's gate serialises forward passes
        store = self._engine.store
        saved = store.path / UPLOADS_DIR / f"{digest}.{decoded.format.lower()}"
        if not saved.exists():
            atomic_write(saved, lambda tmp: tmp.write_bytes(data))
        record = ItemRecord(id=item.id, source=url or str(saved), origin=API_ORIGIN, **catalog_values(item))
        with self._serial, store.writer_lock():
            store.write_batch(embedded=[EmbeddedItem(record, digest, decoded.width, decoded.height, vector)])
        self._engine.apply_changes()
        stored = store.get_item(item.id)
        assert stored is not None
        return stored

    def delete(self, item_id: str) -> None:
        """Delete an item; it leaves search results before this returns.

        Raises:
            ItemNotFoundError: no such item.
            StoreLockedError: an indexer is writing to the store.
        """
        store = self._engine.store
        with self._serial, store.writer_lock():
            if not store.delete_items([item_id]):
                raise ItemNotFoundError(item_id)
        self._engine.apply_changes()


def upload_path(store_path: Path, content_hash_: str) -> Path | None:
    """The saved upload with this content hash, if the service stored one."""
    matches = sorted((store_path / UPLOADS_DIR).glob(f"{content_hash_}.*"))
    return matches[0] if matches else None

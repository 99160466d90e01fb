"""catalens indexer: catalog sources, safe decoding, the catalog store, its vector index and the jobs that fill them."""

from __future__ import annotations

from catalens.indexer.errors import (
    FetchError,
    ImageDecodeError,
    IndexBuildError,
    IndexerError,
    ItemError,
    SourceError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreModelMismatchError,
    StoreNotFoundError,
    StoreVersionError,
    StoreWeightsMismatchError,
)

__all__ = [
    "FetchError",
    "ImageDecodeError",
    "IndexBuildError",
    "IndexerError",
    "ItemError",
    "SourceError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreModelMismatchError",
    "StoreWeightsMismatchError",
    "StoreNotFoundError",
    "StoreVersionError",
]

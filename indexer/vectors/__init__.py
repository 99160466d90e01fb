"""Vector indexes: one interface (:class:`VectorIndex`) for everything a vector search backend does.

``base`` holds the interface, ``registry`` the backends by name and the factory-string grammar,
``faiss_backend`` the FAISS implementation and ``faiss_native`` its view of FAISS's index objects (the only two
modules that import faiss, loaded on first use).
"""

from __future__ import annotations

from catalens.indexer.vectors.base import (
    TRAIN_SAMPLE_MAX,
    RangeSearch,
    VectorChunks,
    VectorIndex,
    VectorSearch,
    training_sample,
)
from catalens.indexer.vectors.errors import UnknownIndexBackendError, VectorIndexError
from catalens.indexer.vectors.registry import (
    DEFAULT_FACTORY,
    IndexRegistry,
    create_index,
    default_index_registry,
    list_index_backends,
    load_index,
    validate_factory,
)

__all__ = [
    "DEFAULT_FACTORY",
    "TRAIN_SAMPLE_MAX",
    "IndexRegistry",
    "RangeSearch",
    "UnknownIndexBackendError",
    "VectorChunks",
    "VectorIndex",
    "VectorIndexError",
    "VectorSearch",
    "create_index",
    "default_index_registry",
    "list_index_backends",
    "load_index",
    "training_sample",
    "validate_factory",
]

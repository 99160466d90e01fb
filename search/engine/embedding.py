"""Query vectors: weighted text, image, stored-item and raw-vector parts combined into one unit vector."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from catalens.indexer.store import CatalogStore
from catalens.search.engine.model_access import ModelGate
from catalens.search.engine.types import QueryPart
from catalens.search.errors import ItemNotFoundError, ItemNotIndexedError, QueryError


class QueryEmbedder:
    """Turns query parts into vectors with the engine's model and the store's item vectors."""

    def __init__(self, store: CatalogStore, model: ModelGate) -> None:
        """
        Args:
            store: where ``item_id`` parts find their vectors.
            model: embeds text and image parts, one forward pass at a time.
        """
        self._store = store
        self._model = model

    def embed(self, parts: Sequence[QueryPart]) -> np.ndarray:
        """Combine weighted parts into one unit query vector.

        Raises:
            QueryError: no parts, a part with nothing in it, a weight or vector that is not finite, a raw
                vector of the wrong size or an unusable norm, or parts that cancel out.
            ItemNotFoundError, ItemNotIndexedError: an ``item_id`` part names no usable item.
        """
        if not parts:
            raise QueryError("the query is empty")
        total = np.zeros(self._model.dim, dtype=np.float32)
        for part in parts:
            if not math.isfinite(part.weight):
                raise QueryError("a query part's weight must be a finite number")
            total += np.float32(part.weight) * self._embed_part(part)
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            raise QueryError("the query parts cancel each other out")
        return total / norm

    def item_vector(self, item_id: str) -> np.ndarray:
        """The stored embedding of an item.

        Raises:
            ItemNotFoundError, ItemNotIndexedError.
        """
        item = self._store.get_item(item_id)
        if item is None:
            raise ItemNotFoundError(item_id)
        keys, vectors = self._store.vectors_for([item.key])
        if not len(keys):
            raise ItemNotIndexedError(item_id, item.error)
        return vectors[0]

    def _embed_part(self, part: QueryPart) -> np.ndarray:
        if part.vector is not None:
            return raw_query_vector(part.vector, self._model.dim)
        if part.image is not None:
            return self._model.encode_images([part.image])[0]
        if part.item_id is not None:
            return self.item_vector(part.item_id)
        if part.text is not None and part.text.strip():
            return self._model.encode_texts([part.text.strip()])[0]
        raise QueryError("a query part needs text, an image, an item id or a vector")


#: The largest norm a raw query vector may have: a client sending values this large is sending garbage (and
#: 1e308 squares to infinity), so it gets an error rather than an empty or arbitrary result.
MAX_VECTOR_NORM = 1e6


def raw_query_vector(values: np.ndarray | Sequence[float], dim: int) -> np.ndarray:
    """A client's raw query vector as a float32 unit vector (an all-zero vector stays zero: no direction).

    Raises:
        QueryError: the wrong number of dimensions, a NaN or infinite value, or a norm over
            :data:`MAX_VECTOR_NORM`.
    """
    vector = np.asarray(values, dtype=np.float64).reshape(-1)
    if vector.shape[0] != dim:
        raise QueryError(f"a query vector needs {dim} dimensions, got {vector.shape[0]}")
    if not np.isfinite(vector).all():
        raise QueryError("a query vector must hold finite numbers (no NaN or infinity)")
    with np.errstate(over="ignore"):  # a norm past float64's range is inf, refused below
        norm = float(np.linalg.norm(vector))
    if norm > MAX_VECTOR_NORM:
        raise QueryError(f"a query vector's norm must be at most {MAX_VECTOR_NORM:g}, got {norm:g}")
    return (vector / norm if norm > 0 else vector).astype(np.float32)

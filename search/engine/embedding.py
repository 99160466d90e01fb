"""Query vectors: weighted text, image, stored-item and raw-vector parts combined into one unit vector."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from catalens.indexer.store import CatalogStore
from catalens.models import ImageTextEncoder
from catalens.search.engine.types import QueryPart
from catalens.search.errors import ItemNotFoundError, ItemNotIndexedError, QueryError


class QueryEmbedder:
    """Turns query parts into vectors with the engine's model and the store's item vectors."""

    def __init__(self, store: CatalogStore, encoder: ImageTextEncoder, model_lock: threading.Lock) -> None:
        """
        Args:
            store: where ``item_id`` parts find their vectors.
            encoder: embeds text and image parts.
            model_lock: held around every forward pass. Each pass already uses every core (or the whole
                GPU); concurrent passes from the service's thread pool would only oversubscribe the cores and
                raise every request's latency.
        """
        self._store = store
        self._encoder = encoder
        self._model_lock = model_lock

    def embed(self, parts: Sequence[QueryPart]) -> np.ndarray:
        """Combine weighted parts into one unit query vector.

        Raises:
            QueryError: no parts, a part with nothing in it, or parts that cancel out.
            ItemNotFoundError, ItemNotIndexedError: an ``item_id`` part names no usable item.
        """
        if not parts:
            raise QueryError("the query is empty")
        total = np.zeros(self._encoder.dim, dtype=np.float32)
        for part in parts:
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
            vector = np.asarray(part.vector, dtype=np.float32).reshape(-1)
            if vector.shape[0] != self._encoder.dim:
                raise QueryError(f"a query vector needs {self._encoder.dim} dimensions, got {vector.shape[0]}")
            return vector / max(float(np.linalg.norm(vector)), 1e-12)
        if part.image is not None:
            with self._model_lock:
                return self._encoder.encode_images([part.image])[0]
        if part.item_id is not None:
            return self.item_vector(part.item_id)
        if part.text is not None and part.text.strip():
            with self._model_lock:
                return self._encoder.encode_texts([part.text.strip()])[0]
        raise QueryError("a query part needs text, an image, an item id or a vector")

"""A bounded least-recently-used cache of text embeddings, keyed by model and text.

Shops see the same queries again and again ("black dress", "iphone case"), and zero-shot labelling embeds the
same label prompts on every call. A hit costs a dictionary lookup instead of a text forward pass. The cache
holds copies of unit vectors (``dim`` float32 each: 4,096 entries of a 512-d model are 8 MB) and is safe to
share between threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

#: Texts kept per engine by default.
DEFAULT_TEXT_CACHE_SIZE = 4096


class TextVectorCache:
    """Text embeddings by ``(model spec, text)``, the least recently used dropped past ``capacity``."""

    def __init__(self, capacity: int = DEFAULT_TEXT_CACHE_SIZE) -> None:
        """
        Args:
            capacity: the most texts kept; 0 turns the cache off.
        """
        if capacity < 0:
            raise ValueError("capacity must be 0 or more")
        self._capacity = capacity
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, model: str, text: str) -> np.ndarray | None:
        """The cached vector (marked as just used), or ``None``."""
        with self._lock:
            vector = self._vectors.get((model, text))
            if vector is None:
                self.misses += 1
                return None
            self._vectors.move_to_end((model, text))
            self.hits += 1
            return vector

    def put(self, model: str, text: str, vector: np.ndarray) -> None:
        """Keep a vector (a read-only copy, so callers cannot change what later hits return)."""
        if self._capacity == 0:
            return
        kept = np.array(vector, dtype=np.float32, copy=True)
        kept.flags.writeable = False
        with self._lock:
            self._vectors[(model, text)] = kept
            self._vectors.move_to_end((model, text))
            while len(self._vectors) > self._capacity:
                self._vectors.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._vectors)

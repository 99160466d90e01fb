"""The one way to run the engine's model: every forward pass goes through a :class:`ModelGate` and its lock.

Queries, zero-shot labels and the service's single-item writes all embed with the same loaded model. Each
forward pass already uses every core (or the whole GPU), and not every backend is safe to call from several
threads at once, so the passes are serialised by one lock that the gate owns; no caller holds the lock
itself. Long text batches (a classification's label prompts) are encoded in bounded chunks, releasing the
lock between chunks, so one large request delays a concurrent query by at most one chunk's forward pass
instead of starving it. The lock is first-come first-served (a plain ``threading.Lock`` lets the releasing
thread take it straight back), so a query that arrives during a chunk runs before the next chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from PIL import Image

from catalens.models import ImageTextEncoder
from catalens.search.engine.text_cache import TextVectorCache

#: Texts per forward pass when a long list is encoded; the lock is released between chunks.
TEXT_CHUNK = 16


class FairLock:
    """A mutual-exclusion lock granted in arrival order (a ticket lock), usable as a context manager."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> FairLock:
        with self._changed:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._changed.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._serving += 1
            self._changed.notify_all()

    @property
    def queued(self) -> int:
        """Holders and waiters: 0 when free, 1 when held with nobody waiting."""
        with self._changed:
            return self._next_ticket - self._serving


class ModelGate:
    """Owns the engine's model and the lock around its forward passes; safe to share between threads.

    Attributes:
        encoder: the model, for its metadata (``spec``, ``dim``, ``logit_scale``); encode through the gate.
    """

    def __init__(
        self, encoder: ImageTextEncoder, *, text_chunk: int = TEXT_CHUNK, text_cache: TextVectorCache | None = None
    ) -> None:
        """
        Args:
            encoder: the loaded model.
            text_chunk: texts per forward pass (and per lock hold) in :meth:`encode_texts`.
            text_cache: text embeddings already computed (queries and label prompts repeat); a new cache of
                the default size when ``None``.
        """
        if text_chunk < 1:
            raise ValueError("text_chunk must be at least 1")
        self.encoder = encoder
        self._lock = FairLock()
        self._text_chunk = text_chunk
        self.text_cache = text_cache if text_cache is not None else TextVectorCache()

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def queued(self) -> int:
        """Forward passes running or waiting for the model (0 or 1 running, the rest waiting)."""
        return self._lock.queued

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts: cached ones from the text cache, the rest ``text_chunk`` at a time, the lock held for
        one chunk at a time.

        Returns:
            ``(len(texts), dim)`` float32 unit vectors.
        """
        out = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        spec = self.encoder.spec
        missing: dict[str, list[int]] = {}
        for row, text in enumerate(texts):
            cached = self.text_cache.get(spec, text)
            if cached is None:
                missing.setdefault(text, []).append(row)
            else:
                out[row] = cached
        todo = list(missing)
        for start in range(0, len(todo), self._text_chunk):
            chunk = todo[start : start + self._text_chunk]
            with self._lock:
                vectors = self.encoder.encode_texts(chunk)
            for text, vector in zip(chunk, vectors, strict=True):
                out[missing[text]] = vector
                self.text_cache.put(spec, text, vector)
        return out

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed decoded images in one forward pass under the lock.

        Returns:
            ``(len(images), dim)`` float32 unit vectors.
        """
        with self._lock:
            return self.encoder.encode_images(list(images))

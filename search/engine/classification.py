"""Zero-shot classification with the engine's image–text model: labels become prompt-averaged text vectors.

Each label is embedded through a few prompt templates (``"a photo of a {}."``...) and the mean, renormalised,
is the label's vector; an image is classified by a softmax over ``logit_scale * cosine`` to every label.
Label sets are cached, since a tagging job asks the same labels for every item.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from PIL import Image

from catalens.models import ImageTextEncoder
from catalens.search.engine.types import Classification, Prediction
from catalens.search.errors import QueryError

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a product photo of a {}.",
    "a photo of the {}, a product for sale.",
    "a close-up photo of a {}.",
)
MAX_LABELS = 1000
#: Label sets whose vectors are kept (least recently used first out).
LABEL_CACHE_SIZE = 64


class Classifier:
    """Classifies images and image vectors against free-text labels; safe to share between threads."""

    def __init__(self, encoder: ImageTextEncoder, model_lock: threading.Lock) -> None:
        """
        Args:
            encoder: the model whose text tower embeds the labels and whose image tower embeds uploads.
            model_lock: held around every forward pass (shared with the engine's query encoding).
        """
        self._encoder = encoder
        self._model_lock = model_lock
        self._cache_lock = threading.Lock()
        self._labels: OrderedDict[tuple[tuple[str, ...], tuple[str, ...]], np.ndarray] = OrderedDict()

    def label_vectors(self, labels: Sequence[str], templates: Sequence[str] | None = None) -> np.ndarray:
        """One unit vector per label: the mean of its prompt-template embeddings (cached per label set).

        Raises:
            QueryError: no labels, duplicate or empty labels, or a template without ``{}``.
        """
        clean = tuple(label.strip() for label in labels)
        if not clean or any(not label for label in clean):
            raise QueryError("give at least one non-empty label")
        if len(set(clean)) != len(clean):
            raise QueryError("labels must be unique")
        if len(clean) > MAX_LABELS:
            raise QueryError(f"at most {MAX_LABELS} labels")
        prompts = tuple(templates) if templates else DEFAULT_TEMPLATES
        if any("{}" not in t for t in prompts):
            raise QueryError("every template needs a {} placeholder for the label")
        key = (clean, prompts)
        with self._cache_lock:
            cached = self._labels.get(key)
            if cached is not None:
                self._labels.move_to_end(key)
                return cached
        texts = [t.format(label) for label in clean for t in prompts]
        with self._model_lock:
            embedded = self._encoder.encode_texts(texts).reshape(len(clean), len(prompts), -1).mean(axis=1)
        vectors = embedded / np.linalg.norm(embedded, axis=1, keepdims=True)
        with self._cache_lock:
            self._labels[key] = vectors
            while len(self._labels) > LABEL_CACHE_SIZE:
                self._labels.popitem(last=False)
        return vectors

    def classify_vectors(
        self,
        vectors: np.ndarray,
        labels: Sequence[str],
        templates: Sequence[str] | None = None,
        top_k: int = 3,
    ) -> list[list[Prediction]]:
        """Zero-shot predictions for image vectors: softmax over ``logit_scale * cosine``."""
        label_vectors = self.label_vectors(labels, templates)
        names = [label.strip() for label in labels]
        scores = np.atleast_2d(vectors) @ label_vectors.T
        logits = self._encoder.logit_scale * scores
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        top = max(1, min(top_k, len(names)))
        results = []
        for row_p, row_s in zip(probs, scores, strict=True):
            order = np.argsort(-row_p, kind="stable")[:top]
            results.append([Prediction(names[i], float(row_p[i]), float(row_s[i])) for i in order])
        return results

    def classify_items(
        self,
        item_ids: Sequence[str],
        vectors: np.ndarray,
        labels: Sequence[str],
        templates: Sequence[str] | None = None,
        top_k: int = 3,
    ) -> list[Classification]:
        """Classifications of stored items, given their ids and their vectors (one row per id)."""
        predictions = self.classify_vectors(vectors, labels, templates, top_k) if len(item_ids) else []
        return [Classification(i, p) for i, p in zip(item_ids, predictions, strict=True)]

    def classify_image(
        self, image: Image.Image, labels: Sequence[str], templates: Sequence[str] | None = None, top_k: int = 3
    ) -> Classification:
        """The classification of an uploaded image (its ``id`` is ``None``)."""
        with self._model_lock:
            vector = self._encoder.encode_images([image])
        return Classification(None, self.classify_vectors(vector, labels, templates, top_k)[0])

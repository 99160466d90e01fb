"""Zero-shot classification with the engine's image–text model: labels become prompt-averaged text vectors.

Each label is embedded through a few prompt templates (``"a photo of a {}."``...) and the mean, renormalised,
is the label's vector; an image is classified by a softmax over ``logit_scale * cosine`` to every label.
Label sets are cached, since a tagging job asks the same labels for every item.

The work one request may ask for is bounded by :class:`ClassifyLimits` (labels, templates, their lengths and
the number of prompts they make), and the prompts are encoded through the :class:`ModelGate` in chunks, so a
large label set never holds the model for long at a stretch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from string import Formatter

import numpy as np
from PIL import Image

from catalens.search.engine.model_access import ModelGate
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


@dataclass(frozen=True)
class ClassifyLimits:
    """The most work one classification may ask for; a request past any of them is refused.

    The cost of a label set is one text forward pass per prompt (labels x templates), each over at most
    the model's context length, so the prompt count bounds the time and the text lengths bound the memory
    of building the prompts. The defaults allow every realistic tagging job: 1,000 labels with the four
    default templates.

    Attributes:
        max_labels: labels per request.
        max_templates: prompt templates per request.
        max_label_chars: characters per label.
        max_template_chars: characters per template.
        max_prompts: labels x templates per request (each is one text embedded).
    """

    max_labels: int = MAX_LABELS
    max_templates: int = 32
    max_label_chars: int = 200
    max_template_chars: int = 200
    max_prompts: int = 4096

    def __post_init__(self) -> None:
        values = (self.max_labels, self.max_templates, self.max_label_chars, self.max_template_chars, self.max_prompts)
        if min(values) < 1:
            raise ValueError("classification limits must be at least 1")

    def check(self, labels: Sequence[str], templates: Sequence[str]) -> None:
        """Refuse a label set over the limits, naming the limit it passes.

        Raises:
            QueryError: too many labels, templates or prompts, or a label or template too long.
        """
        if len(labels) > self.max_labels:
            raise QueryError(f"at most {self.max_labels} labels (max_labels), got {len(labels)}")
        if len(templates) > self.max_templates:
            raise QueryError(f"at most {self.max_templates} templates (max_templates), got {len(templates)}")
        longest = max((len(label) for label in labels), default=0)
        if longest > self.max_label_chars:
            raise QueryError(f"a label may have at most {self.max_label_chars} characters (max_label_chars)")
        if max((len(t) for t in templates), default=0) > self.max_template_chars:
            raise QueryError(f"a template may have at most {self.max_template_chars} characters (max_template_chars)")
        prompts = len(labels) * len(templates)
        if prompts > self.max_prompts:
            raise QueryError(
                f"{len(labels)} labels x {len(templates)} templates make {prompts} prompts; "
                f"at most {self.max_prompts} (max_prompts)"
            )


def check_template(template: str) -> None:
    """Accept a template with exactly one ``{}`` placeholder and nothing else ``str.format`` would act on.

    Raises:
        QueryError: no placeholder, several, a named or numbered field, a format spec or unbalanced braces.
    """
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in Formatter().parse(template) if name is not None]
    except ValueError:
        raise QueryError(f"template {template!r}: unbalanced braces; write {{{{ and }}}} for literal ones") from None
    if len(fields) != 1 or fields[0] != ("", "", None):
        raise QueryError(f"template {template!r} needs exactly one {{}} placeholder for the label")


class Classifier:
    """Classifies images and image vectors against free-text labels; safe to share between threads."""

    def __init__(self, model: ModelGate, limits: ClassifyLimits | None = None) -> None:
        """
        Args:
            model: the gate to the model whose text tower embeds the labels and whose image tower embeds
                uploads (shared with the engine's query encoding).
            limits: the most work one label set may ask for (the defaults if ``None``).
        """
        self._model = model
        self.limits = limits or ClassifyLimits()
        self._cache_lock = threading.Lock()
        self._labels: OrderedDict[tuple[tuple[str, ...], tuple[str, ...]], np.ndarray] = OrderedDict()

    def label_vectors(self, labels: Sequence[str], templates: Sequence[str] | None = None) -> np.ndarray:
        """One unit vector per label: the mean of its prompt-template embeddings (cached per label set).

        Raises:
            QueryError: no labels, duplicate or empty labels, a template without exactly one ``{}``, or a
                label set over :attr:`limits`.
        """
        clean = tuple(label.strip() for label in labels)
        prompts = tuple(templates) if templates else DEFAULT_TEMPLATES
        self.limits.check(clean, prompts)  # first: the checks below cost time in the size of the request
        if not clean or any(not label for label in clean):
            raise QueryError("give at least one non-empty label")
        if len(set(clean)) != len(clean):
            raise QueryError("labels must be unique")
        for template in dict.fromkeys(prompts):
            check_template(template)
        key = (clean, prompts)
        with self._cache_lock:
            cached = self._labels.get(key)
            if cached is not None:
                self._labels.move_to_end(key)
                return cached
        texts = [t.format(label) for label in clean for t in prompts]
        embedded = self._model.encode_texts(texts).reshape(len(clean), len(prompts), -1).mean(axis=1)
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
        logits = self._model.encoder.logit_scale * scores
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
        """The classification of an uploaded image (its ``id`` is ``None``).

        Raises:
            QueryError: a bad label set (checked before the image is embedded).
        """
        self.label_vectors(labels, templates)
        vector = self._model.encode_images([image])
        return Classification(None, self.classify_vectors(vector, labels, templates, top_k)[0])

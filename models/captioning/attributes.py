"""The attribute captioner: zero-shot product tags with the store's own image–text model, no extra weights.

For every attribute of a vocabulary (category, colour, material, pattern, style, and any the user adds; see
:mod:`catalens.models.captioning.vocabulary`) each value is written into prompt templates ("a photo of a red
product."), the prompts are embedded once per captioner with the store's :class:`~models.base.ImageTextEncoder`,
and an image's embedding is scored against them: ``softmax(logit_scale * cosine)`` over the values of one attribute
gives the top value and its probability. An attribute is kept when that probability clears the attribute's
threshold (the category is always kept), and the caption lists the kept values in natural order: colour, pattern,
material, style, any user attributes, then the category ("red striped cotton t-shirt").

Because it works in the store's embedding space, the captioner can tag the vectors the indexer already
computed (:meth:`AttributeCaptioner.caption_vectors`), without decoding or encoding an image again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from catalens.models.base import ImageTextEncoder, l2_normalise
from catalens.models.captioning.types import (
    Caption,
    CaptionerInfo,
    CaptionerSpec,
    CaptionOptions,
    MissingEncoderError,
)
from catalens.models.captioning.vocabulary import (
    PREFIX,
    Vocabulary,
    VocabularyError,
    default_vocabulary,
    read_vocabulary,
    vocabulary_digest,
)
from catalens.models.errors import UnknownModelError
from catalens.models.specs import SpecParts, split_spec


class AttributeCaptioner:
    """Zero-shot attribute tags and a short caption from an :class:`ImageTextEncoder`'s embeddings.

    Implements :class:`models.captioning.VectorCaptioner`. The vocabulary's text embeddings are computed once,
    when the captioner is built.
    """

    def __init__(
        self,
        spec: str,
        encoder: ImageTextEncoder,
        vocabulary: Vocabulary | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Embed the vocabulary's prompts with ``encoder``.

        Args:
            spec: the canonical captioner spec.
            encoder: the store's image–text model.
            vocabulary: the attributes to tag; the default vocabulary when ``None``.
            batch_size: images per encoder batch in :meth:`caption`; the encoder's default when ``None``.
        """
        self._spec = spec
        self._encoder = encoder
        self._vocabulary = vocabulary or default_vocabulary()
        self._batch_size = batch_size
        self._embeddings = self._embed_vocabulary()

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def default_batch_size(self) -> int:
        return self._batch_size or self._encoder.default_batch_size

    @property
    def vocabulary(self) -> Vocabulary:
        """The attributes this captioner tags."""
        return self._vocabulary

    def _embed_vocabulary(self) -> dict[str, np.ndarray]:
        """One unit vector per value (the normalised mean over the attribute's templates), per attribute."""
        prompts = [t.replace("{}", v) for a in self._vocabulary.attributes for v in a.values for t in a.templates]
        vectors = np.asarray(self._encoder.encode_texts(prompts), dtype=np.float32)
        embeddings: dict[str, np.ndarray] = {}
        start = 0
        for attribute in self._vocabulary.attributes:
            count = len(attribute.values) * len(attribute.templates)
            block = vectors[start : start + count].reshape(len(attribute.values), len(attribute.templates), -1)
            embeddings[attribute.name] = l2_normalise(block.mean(axis=1))
            start += count
        return embeddings

    def caption(self, images: Sequence[Image.Image]) -> list[Caption]:
        """Tag and caption RGB images (encoded with the store's model in batches).

        Returns:
            One :class:`Caption` per image, in order.
        """
        if not images:
            return []
        return self.caption_vectors(self._encoder.encode_images(images, batch_size=self.default_batch_size))

    def caption_vectors(self, vectors: np.ndarray) -> list[Caption]:
        """Tag and caption image embeddings of the store's model.

        Args:
            vectors: float ``(n, dim)`` image embeddings (L2-normalised; they are normalised again to be safe).

        Returns:
            One :class:`Caption` per row, in order.

        Raises:
            ValueError: ``vectors`` is not ``(n, dim)`` for this encoder's ``dim``.
        """
        probabilities = self.attribute_probabilities(vectors)
        rows = next(iter(probabilities.values())).shape[0]
        chosen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, table in probabilities.items():
            best = table.argmax(axis=1)
            chosen[name] = (best, table[np.arange(rows), best])
        return [self._compose(chosen, row) for row in range(rows)]

    def attribute_probabilities(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """The full zero-shot distribution of every attribute, before thresholds (for review and QA tools).

        Args:
            vectors: float ``(n, dim)`` image embeddings of the store's model.

        Returns:
            Attribute name -> float32 ``(n, len(values))`` probabilities, columns in the vocabulary's value order.

        Raises:
            ValueError: ``vectors`` is not ``(n, dim)`` for this encoder's ``dim``.
        """
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self._encoder.dim:
            raise ValueError(f"expected image vectors of shape (n, {self._encoder.dim}), got {array.shape}")
        array = l2_normalise(array)
        scale = float(self._encoder.logit_scale)
        return {
            attribute.name: _softmax(scale * (array @ self._embeddings[attribute.name].T))
            for attribute in self._vocabulary.attributes
        }

    def _compose(self, chosen: dict[str, tuple[np.ndarray, np.ndarray]], row: int) -> Caption:
        tags: dict[str, str] = {}
        scores: dict[str, float] = {}
        words: list[str] = []
        for attribute in self._vocabulary.attributes:
            best, probability = chosen[attribute.name]
            score = float(probability[row])
            if not attribute.required and score < attribute.threshold:
                continue
            value = attribute.values[int(best[row])]
            tags[attribute.name] = value
            scores[attribute.name] = score
            if value not in attribute.omit_in_text:
                words.append(value)
        return Caption(" ".join(words), tags, scores)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class AttributeBackend:
    """Registry backend for ``attributes`` and ``attributes:PATH`` specs."""

    name = PREFIX
    kinds: tuple[str, ...] = (PREFIX,)
    prefixes: tuple[str, ...] = (PREFIX,)

    def parse(self, parts: SpecParts) -> CaptionerSpec | None:
        """Parse ``attributes`` or ``attributes:PATH[@DIGEST]``, or return ``None`` for other specs.

        A path is resolved to an absolute one and the file's content hash is recorded, so the canonical spec
        changes when the file does. A recorded ``@DIGEST`` must still match the file.

        Raises:
            UnknownModelError: the vocabulary file does not exist, or no longer has the recorded content.
        """
        text, rest = parts.text, parts.name
        if text == PREFIX:
            return CaptionerSpec("attributes")
        if parts.prefix != PREFIX:
            return None
        choices = [entry.name for entry in self.entries()]
        if not rest:
            raise UnknownModelError(text, "attributes: needs a vocabulary file, e.g. attributes:vocab.json", choices)
        path, recorded = Path(rest).expanduser(), None
        if not path.is_file() and "@" in rest:
            head, _, digest = rest.rpartition("@")
            if Path(head).expanduser().is_file():
                path, recorded = Path(head).expanduser(), digest
        if not path.is_file():
            raise UnknownModelError(text, f"no such vocabulary file: {str(path.resolve())!r}", choices)
        path = path.resolve()
        try:
            digest = vocabulary_digest(path.read_bytes())
        except OSError as error:
            raise UnknownModelError(text, f"cannot read the vocabulary file: {error}") from error
        if recorded is not None and recorded != digest:
            raise UnknownModelError(
                text,
                f"the vocabulary file changed since this spec was recorded (@{recorded}, now @{digest}); "
                f"use attributes:{path} to tag with its current content",
            )
        return CaptionerSpec("attributes", str(path), digest=digest)

    def entries(self) -> list[CaptionerInfo]:
        """The attribute captioner's spec forms."""
        return [
            CaptionerInfo(
                PREFIX,
                PREFIX,
                "zero-shot tags (category, colour, material, pattern, style) with the store's own model; no weights",
            ),
            CaptionerInfo(
                f"{PREFIX}:/path/to/vocab.json",
                f"{PREFIX}:/path/to/vocab.json@HASH",
                "the same with a vocabulary file that extends or overrides the default per attribute",
            ),
        ]

    def load(
        self, spec: CaptionerSpec, options: CaptionOptions, encoder: ImageTextEncoder | None
    ) -> AttributeCaptioner:
        """Build an attribute captioner over ``encoder``.

        ``options.vocabulary`` names a vocabulary file when the spec names none.

        Raises:
            MissingEncoderError: ``encoder`` is ``None``.
            VocabularyError: the vocabulary file is broken, or differs from the one the spec names.
        """
        if options.vocabulary is not None:
            from_options = self.parse(split_spec(f"{PREFIX}:{options.vocabulary}", self.prefixes)) or spec
            if spec.location is not None and from_options.location != spec.location:
                raise VocabularyError(
                    str(from_options.location), f"the spec already names another vocabulary file, {spec.location}"
                )
            spec = from_options
        if encoder is None:
            raise MissingEncoderError(spec.canonical)
        vocabulary = default_vocabulary()
        if spec.location is not None:
            vocabulary, digest = read_vocabulary(spec.location)
            # The spec names the content that was actually read, even if the file changed since parsing.
            spec = replace(spec, digest=digest)
        return AttributeCaptioner(spec.canonical, encoder, vocabulary, options.batch_size)

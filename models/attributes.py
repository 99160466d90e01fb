"""The attribute captioner: zero-shot product tags with the store's own image–text model, no extra weights.

For every attribute of a vocabulary (category, colour, material, pattern, style, and any the user adds) each
value is written into prompt templates ("a photo of a red product."), the prompts are embedded once per
captioner with the store's :class:`~models.base.ImageTextEncoder`, and an image's embedding is scored against
them: ``softmax(logit_scale * cosine)`` over the values of one attribute gives the top value and its
probability. An attribute is kept when that probability clears the attribute's threshold (the category is
always kept), and the caption lists the kept values in natural order: colour, pattern, material, style, any
user attributes, then the category ("red striped cotton t-shirt").

Because it works in the store's embedding space, the captioner can tag the vectors the indexer already
computed (:meth:`AttributeCaptioner.caption_vectors`), without decoding or encoding an image again.

A vocabulary file is JSON mapping an attribute to either a list of values (replaces that attribute's default
values), ``null`` (drops a default attribute; not allowed for ``category``), or an object::

    {
      "colour": ["red", "teal", "mustard"],
      "material": {"values": ["bamboo", "cork"], "extend": true},
      "pattern": {"templates": ["a {} fabric."], "threshold": 0.5},
      "style": null,
      "fit": {"values": ["slim fit", "loose fit"], "templates": ["a photo of a {} garment."]}
    }

Object keys: ``values`` (list of strings), ``extend`` (add the values to the default ones instead of
replacing them), ``templates`` (prompts with one ``{}`` for the value; replaces the defaults), ``threshold``
(probability in [0, 1]) and ``omit_in_text`` (values that are tagged but not written in the caption, such as
``solid``). ``color`` is read as ``colour``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from catalens.models.base import ImageTextEncoder
from catalens.models.captioning import (
    VOCABULARY_HASH_LENGTH,
    Caption,
    CaptionerInfo,
    CaptionerKind,
    CaptionerSpec,
    CaptionOptions,
    MissingEncoderError,
)
from catalens.models.errors import ModelLoadError, UnknownModelError

PREFIX = "attributes"
CATEGORY = "category"
# The order words take in a caption; attributes a user adds go between these and the category.
TEXT_ORDER = ("colour", "pattern", "material", "style")
_ALIASES = {"color": "colour"}
_GENERIC_TEMPLATES = ("a photo of a {} product.", "a {} product.")
_OBJECT_KEYS = frozenset({"values", "extend", "templates", "threshold", "omit_in_text"})


class VocabularyError(ModelLoadError):
    """A vocabulary file cannot be read or does not follow the vocabulary format.

    Attributes:
        path: the vocabulary file.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"{PREFIX}:{path}", f"bad vocabulary file: {reason}")


@dataclass(frozen=True)
class Attribute:
    """One attribute of a vocabulary.

    Attributes:
        name: the tag key, e.g. ``"colour"``.
        values: the values to choose from, e.g. ``("red", "blue")``.
        templates: prompts with one ``{}`` for the value; a value's text embedding is their normalised mean.
        threshold: the probability the top value needs for the attribute to be tagged (ignored for the
            category, which is always tagged).
        omit_in_text: values that are tagged but left out of the caption text (``solid`` says nothing).
    """

    name: str
    values: tuple[str, ...]
    templates: tuple[str, ...] = _GENERIC_TEMPLATES
    threshold: float = 0.4
    omit_in_text: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """Whether the attribute is tagged whatever its probability (the category)."""
        return self.name == CATEGORY


@dataclass(frozen=True)
class Vocabulary:
    """The attributes a captioner tags, in caption order (the category last)."""

    attributes: tuple[Attribute, ...]

    def __post_init__(self) -> None:
        names = [a.name for a in self.attributes]
        if CATEGORY not in names:
            raise ValueError("a vocabulary needs a category attribute")
        order = sorted(range(len(names)), key=lambda i: _order_key(names[i], i))
        if order != list(range(len(names))):
            object.__setattr__(self, "attributes", tuple(self.attributes[i] for i in order))

    @property
    def names(self) -> tuple[str, ...]:
        """The attribute names, in caption order."""
        return tuple(a.name for a in self.attributes)

    def get(self, name: str) -> Attribute | None:
        """The attribute called ``name``, or ``None``."""
        return next((a for a in self.attributes if a.name == name), None)


def _order_key(name: str, index: int) -> tuple[int, int]:
    if name in TEXT_ORDER:
        return (0, TEXT_ORDER.index(name))
    if name == CATEGORY:
        return (2, 0)
    return (1, index)


def default_vocabulary() -> Vocabulary:
    """The vocabulary shipped for product catalogs: category, colour, material, pattern and style."""
    return Vocabulary(
        (
            Attribute(
                "colour",
                _split(
                    "red, orange, yellow, green, blue, navy, purple, pink, brown, beige, black, white, grey, gold, "
                    "silver, multicoloured"
                ),
                ("a photo of a {} product.", "a {} object.", "a product in the colour {}."),
                threshold=0.3,
            ),
            Attribute(
                "pattern",
                _split(
                    "solid, striped, checked, plaid, floral, polka dot, geometric, animal print, camouflage, "
                    "graphic print, paisley, abstract"
                ),
                ("a product with a {} pattern.", "a photo of a {} product."),
                threshold=0.4,
                omit_in_text=("solid",),
            ),
            Attribute(
                "material",
                _split(
                    "cotton, linen, wool, silk, denim, leather, suede, polyester, knit, fleece, canvas, metal, "
                    "stainless steel, wood, bamboo, plastic, glass, ceramic, stone, marble, rubber, paper"
                ),
                ("a product made of {}.", "a photo of a {} product."),
                threshold=0.4,
            ),
            Attribute(
                "style",
                _split(
                    "casual, formal, sporty, vintage, modern, classic, minimalist, elegant, bohemian, rustic, "
                    "industrial, luxury, streetwear, cute"
                ),
                ("a {} style product.", "a photo of a {} product."),
                threshold=0.5,
            ),
            Attribute(
                CATEGORY,
                _split(
                    "t-shirt, shirt, blouse, sweater, hoodie, jacket, coat, dress, skirt, jeans, trousers, shorts, "
                    "suit, socks, hat, cap, scarf, gloves, belt, tie, shoe, sneaker, boot, sandal, handbag, "
                    "backpack, wallet, watch, necklace, ring, earrings, bracelet, sunglasses, umbrella, lamp, chair, "
                    "table, sofa, bed, pillow, rug, curtain, vase, mirror, clock, plant pot, candle, mug, cup, "
                    "plate, bowl, bottle, teapot, frying pan, knife, phone, laptop, headphones, speaker, camera, "
                    "keyboard, computer mouse, book, notebook, pen, toy, teddy bear, ball, bicycle, perfume"
                ),
                ("a photo of a {}.", "a product photo of a {}.", "a {} on a white background."),
            ),
        )
    )


def _split(values: str) -> tuple[str, ...]:
    return tuple(value.strip() for value in values.split(",") if value.strip())


def vocabulary_digest(data: bytes) -> str:
    """The short content hash that a vocabulary file adds to the canonical spec."""
    return hashlib.sha256(data).hexdigest()[:VOCABULARY_HASH_LENGTH]


def read_vocabulary(path: str | Path, base: Vocabulary | None = None) -> tuple[Vocabulary, str]:
    """Read a vocabulary file and merge it onto ``base`` (the default vocabulary when ``None``).

    Args:
        path: a JSON vocabulary file (see the module docstring for the format).
        base: the vocabulary the file extends or overrides.

    Returns:
        The merged vocabulary and the file's short content hash (of the very bytes that were parsed).

    Raises:
        VocabularyError: the file cannot be read, is not JSON, or does not follow the format.
    """
    resolved = Path(path).expanduser().resolve()
    try:
        data = resolved.read_bytes()
    except OSError as error:
        raise VocabularyError(str(resolved), f"cannot read it: {error.strerror or error}") from error
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise VocabularyError(str(resolved), f"not valid JSON: {error}") from error
    try:
        merged = merge_vocabulary(base or default_vocabulary(), raw)
    except ValueError as error:
        raise VocabularyError(str(resolved), str(error)) from error
    return merged, vocabulary_digest(data)


def merge_vocabulary(base: Vocabulary, raw: Any) -> Vocabulary:
    """Apply a parsed vocabulary file to ``base``, attribute by attribute.

    Args:
        base: the vocabulary to extend or override.
        raw: the parsed JSON (a mapping of attribute -> list, object or ``null``).

    Returns:
        The merged vocabulary.

    Raises:
        ValueError: ``raw`` does not follow the format (the message says where).
    """
    if not isinstance(raw, Mapping):
        raise ValueError("the top level must be an object mapping attribute names to values")
    attributes = {a.name: a for a in base.attributes}
    for key, entry in raw.items():
        name = _ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
        if not name:
            raise ValueError("an attribute name is empty")
        if entry is None:
            if name == CATEGORY:
                raise ValueError("the category attribute cannot be removed")
            attributes.pop(name, None)
            continue
        attributes[name] = _merge_attribute(name, attributes.get(name), entry)
    return Vocabulary(tuple(attributes.values()))


def _merge_attribute(name: str, current: Attribute | None, entry: Any) -> Attribute:
    if isinstance(entry, list):
        entry = {"values": entry}
    if not isinstance(entry, Mapping):
        raise ValueError(f"{name}: expected a list of values, an object or null, got {type(entry).__name__}")
    unknown = sorted(set(entry) - _OBJECT_KEYS)
    if unknown:
        raise ValueError(f"{name}: unknown keys {unknown}; allowed: {sorted(_OBJECT_KEYS)}")
    attribute = current or Attribute(name, ())
    if "values" in entry:
        values = _strings(name, "values", entry["values"])
        if entry.get("extend", False):
            values = attribute.values + tuple(v for v in values if v not in attribute.values)
        attribute = replace(attribute, values=tuple(dict.fromkeys(values)))
    if "templates" in entry:
        templates = _strings(name, "templates", entry["templates"])
        bad = [t for t in templates if t.count("{}") != 1]
        if bad:
            raise ValueError(f"{name}: every template needs exactly one {{}} for the value, not {bad[0]!r}")
        attribute = replace(attribute, templates=templates)
    if "threshold" in entry:
        threshold = entry["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise ValueError(f"{name}: threshold must be a number between 0 and 1, got {threshold!r}")
        attribute = replace(attribute, threshold=float(threshold))
    if "omit_in_text" in entry:
        attribute = replace(attribute, omit_in_text=_strings(name, "omit_in_text", entry["omit_in_text"], empty=True))
    if len(attribute.values) < 2:
        raise ValueError(f"{name}: needs at least two values to choose between, has {list(attribute.values)}")
    return attribute


def _strings(name: str, key: str, value: Any, empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{name}.{key}: expected a list of non-empty strings")
    if not value and not empty:
        raise ValueError(f"{name}.{key}: the list is empty")
    return tuple(v.strip() for v in value)


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
            embeddings[attribute.name] = _unit_rows(block.mean(axis=1))
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
        array = _unit_rows(array)
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


def _unit_rows(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return (array / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class AttributeBackend:
    """Registry backend for ``attributes`` and ``attributes:PATH`` specs."""

    name = PREFIX
    kinds: tuple[CaptionerKind, ...] = ("attributes",)

    def parse(self, text: str) -> CaptionerSpec | None:
        """Parse ``attributes`` or ``attributes:PATH[@DIGEST]``, or return ``None`` for other specs.

        A path is resolved to an absolute one and the file's content hash is recorded, so the canonical spec
        changes when the file does. A recorded ``@DIGEST`` must still match the file.

        Raises:
            UnknownModelError: the vocabulary file does not exist, or no longer has the recorded content.
        """
        if text == PREFIX:
            return CaptionerSpec("attributes")
        prefix, sep, rest = text.partition(":")
        if prefix != PREFIX or not sep:
            return None
        rest = rest.strip()
        if not rest:
            raise UnknownModelError(text, "attributes: needs a vocabulary file, e.g. attributes:vocab.json", _choices())
        path, recorded = Path(rest).expanduser(), None
        if not path.is_file() and "@" in rest:
            head, _, digest = rest.rpartition("@")
            if Path(head).expanduser().is_file():
                path, recorded = Path(head).expanduser(), digest
        if not path.is_file():
            raise UnknownModelError(text, f"no such vocabulary file: {str(path.resolve())!r}", _choices())
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

    def list_captioners(self) -> list[CaptionerInfo]:
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
            from_options = self.parse(f"{PREFIX}:{options.vocabulary}") or spec
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


def _choices() -> list[str]:
    return [info.name for info in AttributeBackend().list_captioners()]

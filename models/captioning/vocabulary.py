"""Attribute vocabularies: what the attribute captioner tags, the shipped default, and user vocabulary files.

A vocabulary file is JSON mapping an attribute to either a list of values (replaces that attribute's default
values), ``null`` (drops a default attribute; not allowed for ``category``), or an object::

    {
      "colour": {"extend": ["teal", "mustard"]},
      "material": {"values": ["bamboo", "cork"], "extend": true},
      "pattern": {"templates": ["a {} fabric."], "threshold": 0.5},
      "style": null,
      "fit": {"values": ["slim fit", "loose fit"], "templates": ["a photo of a {} garment."]}
    }

Object keys: ``values`` (list of strings; replaces the attribute's values), ``extend`` (a list of values to add to
the attribute's values, or ``true`` to add ``values`` instead of replacing with them), ``templates`` (prompts with
one ``{}`` for the value; replaces the defaults), ``threshold`` (probability in [0, 1]) and ``omit_in_text``
(values that are tagged but not written in the caption, such as ``solid``). ``color`` is read as ``colour``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from catalens.models.errors import ModelLoadError

PREFIX = "attributes"
CATEGORY = "category"
# The order words take in a caption; attributes a user adds go between these and the category.
TEXT_ORDER = ("colour", "pattern", "material", "style")
VOCABULARY_HASH_LENGTH = 12
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
    extend = entry.get("extend", False)
    if not isinstance(extend, bool | list):
        raise ValueError(f"{name}.extend: expected a list of values to add, or true/false")
    if "values" in entry:
        values = _strings(name, "values", entry["values"])
        if extend is True:
            values = attribute.values + values
        attribute = replace(attribute, values=tuple(dict.fromkeys(values)))
    if isinstance(extend, list):
        added = _strings(name, "extend", extend)
        attribute = replace(attribute, values=tuple(dict.fromkeys(attribute.values + added)))
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

"""Image captioners: one protocol, one spec syntax, BLIP and BLIP-2 backends, the attribute captioner, a registry.

A captioner turns product images into short texts (and, for the attribute captioner, tags) that the indexer
stores next to each item and the search engine can match keywords against. Backends are chosen by a string
spec, like image–text models (see :mod:`models.registry`).

Spec grammar (see :func:`parse_captioner_spec`):

* ``blip`` – BLIP base, ``Salesforce/blip-image-captioning-base`` (practical on a CPU).
* ``blip-large`` – BLIP large, ``Salesforce/blip-image-captioning-large``.
* ``blip2`` – BLIP-2 with OPT-2.7b, ``Salesforce/blip2-opt-2.7b`` (fp16 on CUDA; very slow on a CPU).
* ``blip:ORG/NAME`` or ``blip:/path/to/dir`` – any BLIP captioning checkpoint on the hub or saved locally
  (``save_pretrained`` of the model and its processor into one directory).
* ``blip2:ORG/NAME`` or ``blip2:/path/to/dir`` – the same for BLIP-2 checkpoints.
* ``attributes`` – zero-shot attribute tags (category, colour, material, pattern, style) with the store's own
  image–text model and the default vocabulary (see :mod:`models.captioning.attributes`).
* ``attributes:/path/to/vocabulary.json`` – the same with a user vocabulary that extends or overrides the
  default per attribute.

Canonical specs, which a store records to decide whether an item is already captioned by a captioner:
``blip:Salesforce/blip-image-captioning-base``, ``blip2:/absolute/dir``, ``attributes``,
``attributes:/absolute/vocabulary.json@<first 12 hex digits of the file's sha256>`` (editing the vocabulary
changes the spec, so items are captioned again). Generation options (prompt, beams, token limit) are not part
of the spec.

Modules: :mod:`.types` (captions, options, protocols, specs, errors), :mod:`.blip` (BLIP and BLIP-2),
:mod:`.attributes` and :mod:`.vocabulary` (the attribute captioner), :mod:`.registry` (parsing and loading).
Torch and transformers are imported only when a BLIP model is loaded, so importing this package and parsing
specs stay light.
"""

from __future__ import annotations

from catalens.models.captioning.attributes import AttributeBackend, AttributeCaptioner
from catalens.models.captioning.blip import BlipBackend, BlipCaptioner, BlipKind, caption_run_spec
from catalens.models.captioning.registry import (
    CaptionerBackend,
    CaptionerRegistry,
    default_captioner_registry,
    list_captioners,
    load_captioner,
    parse_captioner_spec,
)
from catalens.models.captioning.types import (
    Caption,
    Captioner,
    CaptionerInfo,
    CaptionerKind,
    CaptionerSpec,
    CaptionerUnavailableError,
    CaptionOptions,
    MissingEncoderError,
    VectorCaptioner,
)
from catalens.models.captioning.vocabulary import (
    CATEGORY,
    VOCABULARY_HASH_LENGTH,
    Attribute,
    Vocabulary,
    VocabularyError,
    default_vocabulary,
    merge_vocabulary,
    read_vocabulary,
)

__all__ = [
    "CATEGORY",
    "VOCABULARY_HASH_LENGTH",
    "Attribute",
    "AttributeBackend",
    "AttributeCaptioner",
    "BlipBackend",
    "BlipCaptioner",
    "BlipKind",
    "Caption",
    "CaptionOptions",
    "Captioner",
    "CaptionerBackend",
    "CaptionerInfo",
    "CaptionerKind",
    "CaptionerRegistry",
    "CaptionerSpec",
    "CaptionerUnavailableError",
    "MissingEncoderError",
    "VectorCaptioner",
    "Vocabulary",
    "VocabularyError",
    "caption_run_spec",
    "default_captioner_registry",
    "default_vocabulary",
    "list_captioners",
    "load_captioner",
    "merge_vocabulary",
    "parse_captioner_spec",
    "read_vocabulary",
]

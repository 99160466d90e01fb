"""Text encoders paired with a store's image tower: queries in other languages against the same index.

A store holds the image vectors of one image–text model. Some text models were distilled into the text
embedding space of such a model (multilingual knowledge distillation: the student learns to map an English
sentence *and its translations* onto the teacher's embedding of the English sentence), so their query
vectors can search that model's image vectors directly. :func:`pair_text_encoder` puts one of them in front
of a loaded image–text model: images still go to the image tower, texts go to the paired text model, and the
result is served under the image model's spec, because the store's vectors are the image tower's.

Spec grammar (see :func:`parse_text_encoder_spec`; one backend module per prefix):

* ``st:ORG/NAME`` – a sentence-transformers model on the Hugging Face hub; ``st:NAME`` means
  ``st:sentence-transformers/NAME``.
* ``st:/path/to/dir`` – a saved sentence-transformers model (``SentenceTransformer.save``).
* ``mclip:ORG/NAME`` or ``mclip:/path/to/dir`` – a Multilingual-CLIP text encoder (``M-CLIP/...`` on the
  hub): a transformer, attention-masked mean pooling and one linear layer. It is not a sentence-transformers
  model and the ``multilingual-clip`` package pins old libraries, so it is loaded here from its
  ``config.json`` (``model_type: M-CLIP``, ``modelBase``, ``transformerDimensions``, ``numDims``), its
  weights and its tokenizer; the base transformer's architecture comes from ``modelBase``'s config.
* short names: ``clip-ViT-B-32-multilingual-v1``, and every registered hub id without its prefix
  (e.g. ``M-CLIP/XLM-Roberta-Large-Vit-B-32``).
* a bare local directory: ``modules.json`` makes it ``st:``, an M-CLIP ``config.json`` makes it ``mclip:``.

Modules: :mod:`.types` (protocol, spec, error, registered pairings), :mod:`.backend` (what the backends share),
:mod:`.sentence_transformers`, :mod:`.mclip`, :mod:`.registry` (parsing and loading), :mod:`.pairing`. Torch is
imported only when a model is loaded, so parsing specs and checking pairing rules stay light.

Pairing rules (see :func:`list_pairings`): a registered text model pairs only with the image model it was
aligned to (or the same weights under another open_clip name); any other pairing needs
``allow_unpaired=True`` (the user vouches for a local or custom model). The dimensions must always match.
"""

from __future__ import annotations

from catalens.models.text_encoders.backend import TextEncoderBackend
from catalens.models.text_encoders.mclip import MClipBackend, MClipTextEncoder
from catalens.models.text_encoders.pairing import (
    PairedEncoder,
    check_pairing,
    list_pairings,
    pair_encoders,
    pair_text_encoder,
    pairing_for,
)
from catalens.models.text_encoders.registry import (
    TextEncoderRegistry,
    default_text_encoder_registry,
    load_text_encoder,
    parse_text_encoder_spec,
)
from catalens.models.text_encoders.sentence_transformers import (
    SentenceTransformersBackend,
    SentenceTransformerTextEncoder,
)
from catalens.models.text_encoders.types import Pairing, PairingError, TextEncoder, TextEncoderSpec, TextKind

__all__ = [
    "MClipBackend",
    "MClipTextEncoder",
    "PairedEncoder",
    "Pairing",
    "PairingError",
    "SentenceTransformerTextEncoder",
    "SentenceTransformersBackend",
    "TextEncoder",
    "TextEncoderBackend",
    "TextEncoderRegistry",
    "TextEncoderSpec",
    "TextKind",
    "check_pairing",
    "default_text_encoder_registry",
    "list_pairings",
    "load_text_encoder",
    "pair_encoders",
    "pair_text_encoder",
    "pairing_for",
    "parse_text_encoder_spec",
]

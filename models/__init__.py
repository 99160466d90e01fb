"""catalens model layer: image–text encoders, captioners, OCR engines and text encoders, each chosen by a
spec string through a registry.

One way to name and load a thing: :mod:`.specs` splits every spec string (``[PREFIX:]NAME[:TAG]``) and holds the
"did you mean" helper, :mod:`.backends` is the registry shape all four families share, :mod:`.hub` the cache
checks, hub probe and download-failure text, :mod:`.module` the base every loaded model derives from. Image–text
models: :mod:`.registry`, :mod:`.auto`, :mod:`.openclip`, :mod:`.mini`; the other families are the subpackages
:mod:`.captioning`, :mod:`.ocr` and :mod:`.text_encoders`, one module per backend.

This is the only package that imports torch, open_clip or transformers (lazily: importing it loads none).
"""

from __future__ import annotations

from catalens.models.base import ImageTextEncoder, LoadOptions, ModelInfo, ModelSpec, use_cpu_threads
from catalens.models.captioning import (
    Caption,
    Captioner,
    CaptionOptions,
    VectorCaptioner,
    list_captioners,
    load_captioner,
)
from catalens.models.errors import (
    DeviceUnavailableError,
    ModelError,
    ModelLoadError,
    ModelUnavailableError,
    UnknownModelError,
)
from catalens.models.ocr import (
    DEFAULT_OCR,
    OcrEngine,
    OcrFailedError,
    OcrOptions,
    OcrResult,
    OcrUnavailableError,
    load_ocr,
)
from catalens.models.registry import DEFAULT_MODEL, ModelRegistry, default_registry, list_models, load_model, parse_spec
from catalens.models.text_encoders import PairingError, TextEncoder, list_pairings, load_text_encoder, pair_text_encoder

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_OCR",
    "Caption",
    "CaptionOptions",
    "Captioner",
    "OcrEngine",
    "OcrFailedError",
    "OcrOptions",
    "OcrResult",
    "OcrUnavailableError",
    "PairingError",
    "TextEncoder",
    "VectorCaptioner",
    "list_captioners",
    "list_pairings",
    "load_captioner",
    "load_ocr",
    "load_text_encoder",
    "pair_text_encoder",
    "DeviceUnavailableError",
    "ImageTextEncoder",
    "LoadOptions",
    "ModelError",
    "ModelInfo",
    "ModelLoadError",
    "ModelRegistry",
    "ModelSpec",
    "ModelUnavailableError",
    "UnknownModelError",
    "default_registry",
    "list_models",
    "load_model",
    "parse_spec",
    "use_cpu_threads",
]

"""catalens model layer: image–text encoders behind one registry and one spec syntax.

This is the only package that imports torch, open_clip or transformers.
"""

from __future__ import annotations

from models.base import ImageTextEncoder, LoadOptions, ModelInfo, ModelSpec
from models.errors import DeviceUnavailableError, ModelError, ModelLoadError, ModelUnavailableError, UnknownModelError
from models.registry import DEFAULT_MODEL, ModelRegistry, default_registry, list_models, load_model, parse_spec

__all__ = [
    "DEFAULT_MODEL",
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
]

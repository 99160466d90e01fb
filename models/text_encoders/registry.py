"""The text encoder registry: text encoder specs are parsed and loaded through here (see the package docstring)."""

from __future__ import annotations

from pathlib import Path

from catalens.models.backends import Registry
from catalens.models.base import LoadOptions
from catalens.models.errors import UnknownModelError
from catalens.models.specs import SpecParts
from catalens.models.text_encoders.backend import TextEncoderBackend
from catalens.models.text_encoders.mclip import MClipBackend
from catalens.models.text_encoders.sentence_transformers import MARKER, SentenceTransformersBackend
from catalens.models.text_encoders.types import PAIRINGS, SHORT_NAMES, TextEncoder, TextEncoderSpec, aliases


class TextEncoderRegistry(Registry[TextEncoderSpec, TextEncoderBackend]):
    """The text encoder backends; a registered model's short name or bare hub id stands for its spec."""

    empty_reason = "the text encoder spec is empty"
    unknown_reason = "a text encoder spec is st:..., mclip:..., or a short name"

    def choices(self) -> list[str]:
        """The registered models' names and specs, then every backend's spec patterns."""
        patterns = [pattern for backend in self.backends for pattern in backend.entries()]
        return [*SHORT_NAMES, *(p.text for p in PAIRINGS), *patterns]

    def suggestions(self) -> list[str]:
        return list(aliases())

    def parse(self, text: str) -> TextEncoderSpec:
        """Parse a text encoder spec, a registered model's short name or its hub id without the prefix.

        Raises:
            UnknownModelError: the text names no text encoder (a ``ValueError`` listing valid choices).
        """
        return super().parse(aliases().get(text.strip(), text))

    def unknown(self, text: str, parts: SpecParts) -> UnknownModelError:
        path = Path(parts.text).expanduser()
        if path.is_dir():
            where = str(path.resolve())
            return UnknownModelError(
                text, f"directory {where!r} is neither a sentence-transformers model ({MARKER}) nor an M-CLIP model"
            )
        return super().unknown(text, parts)

    def load(self, text: str, options: LoadOptions | None = None) -> TextEncoder:
        """Parse and load a text encoder (see :func:`load_text_encoder`)."""
        spec = self.parse(text)
        return self.backend_for(spec.kind, spec.canonical).load(spec, options or LoadOptions())


def default_text_encoder_registry() -> TextEncoderRegistry:
    """The registry with every text encoder backend catalens ships."""
    return TextEncoderRegistry([SentenceTransformersBackend(), MClipBackend()])


def parse_text_encoder_spec(text: str) -> str:
    """Parse a text encoder spec into its canonical form (see the package docstring for the grammar).

    Args:
        text: e.g. ``clip-ViT-B-32-multilingual-v1``, ``st:ORG/NAME``, ``st:/path/to/dir``, ``mclip:ORG/NAME``.

    Returns:
        The canonical spec: ``st:ORG/NAME``, ``st:/absolute/dir``, ``mclip:ORG/NAME`` or ``mclip:/absolute/dir``.

    Raises:
        UnknownModelError: the text names no text encoder (a ``ValueError`` listing valid choices).
    """
    return default_text_encoder_registry().parse(text).canonical


def load_text_encoder(spec: str, options: LoadOptions | None = None) -> TextEncoder:
    """Load a text encoder by spec.

    Hub models load from the local Hugging Face cache when they are there (no network at all); otherwise the
    hub host is probed once and an unreachable host, or ``HF_HUB_OFFLINE``, fails at once.

    Args:
        spec: a text encoder spec (see :func:`parse_text_encoder_spec`).
        options: device, precision and cache directory (``seed`` is not used).

    Returns:
        The loaded encoder.

    Raises:
        UnknownModelError: the spec names no text encoder.
        ModelUnavailableError: a hub model is not cached and cannot be downloaded.
        ModelLoadError: a local directory (or a cached snapshot) is broken.
        DeviceUnavailableError: the requested device does not exist.
    """
    return default_text_encoder_registry().load(spec, options)

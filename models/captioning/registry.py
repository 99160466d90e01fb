"""The captioner registry: captioner specs are parsed and loaded through here (see the package docstring)."""

from __future__ import annotations

from typing import Protocol

from catalens.models.backends import Backend, Registry
from catalens.models.base import ImageTextEncoder
from catalens.models.captioning.attributes import AttributeBackend
from catalens.models.captioning.blip import BlipBackend
from catalens.models.captioning.types import Captioner, CaptionerInfo, CaptionerSpec, CaptionOptions


class CaptionerBackend(Backend[CaptionerSpec], Protocol):
    """What the captioner registry needs from a backend."""

    def entries(self) -> list[CaptionerInfo]: ...

    def load(self, spec: CaptionerSpec, options: CaptionOptions, encoder: ImageTextEncoder | None) -> Captioner: ...


class CaptionerRegistry(Registry[CaptionerSpec, CaptionerBackend]):
    """An ordered set of captioner backends that turns spec strings into loaded captioners."""

    empty_reason = "the captioner spec is empty"
    unknown_reason = "no captioner backend recognises it"

    def suggestions(self) -> list[str]:
        """The short names (``blip``, ``attributes``, ...), not the spec patterns."""
        return [name for name in self.choices() if ":" not in name]

    def load(
        self,
        text: str | CaptionerSpec,
        options: CaptionOptions | None = None,
        encoder: ImageTextEncoder | None = None,
    ) -> Captioner:
        """Parse (if needed) and load a captioner.

        Raises:
            UnknownModelError, ModelUnavailableError, ModelLoadError, DeviceUnavailableError, MissingEncoderError.
        """
        spec = text if isinstance(text, CaptionerSpec) else self.parse(text)
        return self.backend_for(spec.kind, spec.canonical).load(spec, options or CaptionOptions(), encoder)

    def list_captioners(self) -> list[CaptionerInfo]:
        """Every short name and spec pattern each backend knows."""
        return self.entries()


def default_captioner_registry() -> CaptionerRegistry:
    """The registry with every captioner catalens ships (BLIP, BLIP-2, attributes)."""
    return CaptionerRegistry([BlipBackend(), AttributeBackend()])


def parse_captioner_spec(text: str) -> CaptionerSpec:
    """Parse a captioner spec (see the package docstring for the grammar).

    Args:
        text: e.g. ``blip``, ``blip2:/models/blip2``, ``attributes:vocab.json``.

    Returns:
        The parsed spec; ``.canonical`` is the string to record.

    Raises:
        UnknownModelError: the text names no captioner (a ``ValueError`` listing valid choices).
    """
    return default_captioner_registry().parse(text)


def list_captioners() -> list[CaptionerInfo]:
    """The known captioner names and spec patterns, with the hub ids they stand for.

    Returns:
        One :class:`CaptionerInfo` per short name or pattern, in a stable order.
    """
    return default_captioner_registry().list_captioners()


def load_captioner(
    text: str | CaptionerSpec, options: CaptionOptions | None = None, encoder: ImageTextEncoder | None = None
) -> Captioner:
    """Load a captioner by spec.

    Local directories load directly. Hub models load from the local Hugging Face cache when they are there
    (no network at all); otherwise the hub host is probed once and an unreachable host, or ``HF_HUB_OFFLINE``,
    fails at once.

    Args:
        text: a captioner spec (see :func:`parse_captioner_spec`).
        options: device, precision, cache and generation options.
        encoder: the store's image–text model; required by ``attributes``, ignored by BLIP.

    Returns:
        The loaded captioner; ``attributes`` captioners also implement :class:`VectorCaptioner`.

    Raises:
        UnknownModelError: the spec names no captioner.
        ModelUnavailableError: a hub model is not cached and cannot be downloaded.
        ModelLoadError: a local directory, a cached snapshot or a vocabulary file is broken.
        DeviceUnavailableError: the requested device (or fp16 on the CPU) is not available.
        MissingEncoderError: ``attributes`` was asked for without ``encoder``.
    """
    return default_captioner_registry().load(text, options, encoder)

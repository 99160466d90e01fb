"""Pairing rules, and the encoder that serves an image model's store with a paired text model's queries.

A registered text model pairs only with the image model it was aligned to (or the same weights under another
open_clip name); any other pairing needs ``allow_unpaired=True`` (the user vouches for a local or custom model).
The dimensions must always match.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from catalens.models.base import ImageTextEncoder, LoadOptions
from catalens.models.text_encoders.registry import load_text_encoder, parse_text_encoder_spec
from catalens.models.text_encoders.types import PAIRINGS, Pairing, PairingError, TextEncoder


def list_pairings() -> list[Pairing]:
    """The registered text model → image–text model pairs.

    Returns:
        One :class:`Pairing` per registered text model, in a stable order.
    """
    return list(PAIRINGS)


def pairing_for(text_spec: str) -> Pairing | None:
    """The registered pairing of a text model, or ``None`` when it has none (a local or custom model).

    Raises:
        UnknownModelError: ``text_spec`` is not a text encoder spec.
    """
    return _registered(parse_text_encoder_spec(text_spec))


def _registered(canonical: str) -> Pairing | None:
    return next((p for p in PAIRINGS if p.text == canonical), None)


def check_pairing(text_spec: str, image_spec: str, *, allow_unpaired: bool = False) -> Pairing | None:
    """Check that a text model may serve queries for an image–text model (before loading either).

    Args:
        text_spec: a text encoder spec.
        image_spec: the canonical spec of the image–text model (the store's model).
        allow_unpaired: accept a text model that is not registered for ``image_spec``.

    Returns:
        The registered pairing, or ``None`` for an accepted unregistered one.

    Raises:
        UnknownModelError: ``text_spec`` names no text encoder.
        PairingError: the pair is not registered and ``allow_unpaired`` is false.
    """
    canonical = parse_text_encoder_spec(text_spec)
    pairing = _registered(canonical)
    if pairing is not None and image_spec in pairing.images:
        return pairing
    if allow_unpaired:
        return None
    if pairing is not None:
        raise PairingError(
            canonical,
            image_spec,
            f"it was aligned to {pairing.image}, so it serves stores built with {pairing.image} only "
            "(rebuild the index with that model, or pass allow_unpaired to override)",
        )
    known = "; ".join(f"{p.text} goes with {p.image}" for p in PAIRINGS)
    raise PairingError(
        canonical,
        image_spec,
        f"it is not a registered pairing ({known}); pass allow_unpaired if it was trained into "
        f"{image_spec}'s text space",
    )


def pair_encoders(
    image_encoder: ImageTextEncoder, text_encoder: TextEncoder, *, allow_unpaired: bool = False
) -> PairedEncoder:
    """Pair two loaded models after checking the rules (see :func:`pair_text_encoder`).

    Raises:
        PairingError: the pair is not registered (and not allowed), or the dimensions differ.
    """
    check_pairing(text_encoder.spec, image_encoder.spec, allow_unpaired=allow_unpaired)
    _check_dims(text_encoder, image_encoder)
    return PairedEncoder(image_encoder, text_encoder)


def pair_text_encoder(
    image_encoder: ImageTextEncoder,
    text_spec: str,
    options: LoadOptions | None = None,
    *,
    allow_unpaired: bool = False,
) -> PairedEncoder:
    """Serve ``image_encoder``'s store with another text model in front of it.

    The pairing rule is checked before anything is loaded.

    Args:
        image_encoder: the loaded image–text model the store was built with.
        text_spec: the text encoder spec.
        options: load options for the text model (device, precision, cache directory).
        allow_unpaired: accept a text model that is not registered for this image model (a local or custom
            model the caller knows was trained into its text space).

    Returns:
        A :class:`PairedEncoder` whose ``spec`` is the image model's.

    Raises:
        UnknownModelError, ModelUnavailableError, ModelLoadError, DeviceUnavailableError: from loading.
        PairingError: the pair is not registered (and not allowed), or the dimensions differ.
    """
    check_pairing(text_spec, image_encoder.spec, allow_unpaired=allow_unpaired)
    text_encoder = load_text_encoder(text_spec, options)
    _check_dims(text_encoder, image_encoder)
    return PairedEncoder(image_encoder, text_encoder)


def _check_dims(text_encoder: TextEncoder, image_encoder: ImageTextEncoder) -> None:
    if text_encoder.dim != image_encoder.dim:
        raise PairingError(
            text_encoder.spec,
            image_encoder.spec,
            f"the text model embeds into {text_encoder.dim} dimensions, the image model into {image_encoder.dim}",
        )


class PairedEncoder:
    """An image–text model whose texts are embedded by a paired text model.

    Implements :class:`models.base.ImageTextEncoder`. Everything about images (preprocessing, pixels,
    batch size, device, temperature) is the image model's; ``spec`` is the image model's too, because the
    store's vectors are the image tower's and the store records that spec.
    """

    def __init__(self, image_encoder: ImageTextEncoder, text_encoder: TextEncoder) -> None:
        self._image = image_encoder
        self._text = text_encoder

    @property
    def spec(self) -> str:
        return self._image.spec

    @property
    def text_spec(self) -> str:
        """The spec of the text model that embeds queries."""
        return self._text.spec

    @property
    def image_encoder(self) -> ImageTextEncoder:
        return self._image

    @property
    def text_encoder(self) -> TextEncoder:
        return self._text

    @property
    def dim(self) -> int:
        return self._image.dim

    @property
    def weights_digest(self) -> str | None:
        return self._image.weights_digest

    @property
    def logit_scale(self) -> float:
        # The distilled text model imitates the image model's own text tower, so its temperature carries over.
        return self._image.logit_scale

    @property
    def device(self) -> str:
        return self._image.device

    @property
    def image_size(self) -> int:
        return self._image.image_size

    @property
    def decode_size(self) -> int:
        return self._image.decode_size

    @property
    def default_batch_size(self) -> int:
        return self._image.default_batch_size

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self._image.preprocess(image)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return self._image.encode_pixels(pixels)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int | None = None) -> np.ndarray:
        return self._image.encode_images(images, batch_size)

    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return self._text.encode_texts(texts, batch_size)

    def __repr__(self) -> str:
        return f"PairedEncoder(image={self.spec!r}, text={self.text_spec!r})"

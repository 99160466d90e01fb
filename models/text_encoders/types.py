"""What every text encoder shares: the protocol, the parsed spec, the pairing error, and the registered pairings.

Torch-free, so that specs and pairing rules can be checked without loading a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from catalens.models.errors import ModelError

TextKind = Literal["st", "mclip"]


@dataclass(frozen=True)
class TextEncoderSpec:
    """A parsed text encoder spec.

    Attributes:
        kind: the backend: ``st`` (sentence-transformers) or ``mclip`` (Multilingual-CLIP).
        local: whether ``location`` is a local directory.
        location: a hub id, or an absolute directory when ``local``.
    """

    kind: TextKind
    local: bool
    location: str

    @property
    def canonical(self) -> str:
        """The one string that names this text encoder: ``st:ORG/NAME``, ``mclip:/absolute/dir``, ..."""
        return f"{self.kind}:{self.location}"


class PairingError(ModelError, ValueError):
    """A text model cannot serve queries for an image–text model (not aligned to it, or another dimension).

    Attributes:
        text_spec: the canonical text encoder spec.
        image_spec: the image–text model's spec (the store's model).
        reason: why they do not go together, and what to do instead.
    """

    def __init__(self, text_spec: str, image_spec: str, reason: str) -> None:
        self.text_spec = text_spec
        self.image_spec = image_spec
        self.reason = reason
        super().__init__(f"text model {text_spec!r} cannot serve queries for image model {image_spec!r}: {reason}")


@runtime_checkable
class TextEncoder(Protocol):
    """A text-only model that embeds queries into some image–text model's embedding space."""

    @property
    def spec(self) -> str:
        """The canonical text encoder spec."""
        ...

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        ...

    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed texts; returns float32 ``(n, dim)``, L2-normalised."""
        ...


@dataclass(frozen=True)
class Pairing:
    """The rule that a text model goes with one image–text model.

    Attributes:
        text: the canonical text encoder spec.
        image: the canonical spec of the image–text model whose text space it was aligned to.
        languages: a short description of the languages it handles.
        note: how it was made and where it comes from.
        same_weights: other specs that load exactly the weights of ``image`` (accepted as well).
    """

    text: str
    image: str
    languages: str
    note: str
    same_weights: tuple[str, ...] = ()

    @property
    def images(self) -> tuple[str, ...]:
        """Every image spec this text model may be paired with."""
        return (self.image, *self.same_weights)


def _mclip(name: str, image: str, base: str, teacher: str, languages: str = "100 languages (XLM-R)") -> Pairing:
    """A Multilingual-CLIP model: ``base`` + a linear layer distilled into ``teacher``'s text space."""
    arch, _, tag = image.partition(":")
    # OpenAI's weights load under the -quickgelu architecture name as well.
    same = (f"{arch}-quickgelu:{tag}",) if tag == "openai" else ()
    note = f"Multilingual-CLIP: {base} + linear layer distilled into {teacher}"
    return Pairing(f"mclip:M-CLIP/{name}", image, languages, note, same)


# The pairs below are the published ones; each model card names the image model it was distilled against.
# M-CLIP's ViT-B-16Plus card loads open_clip's ViT-B-16-plus-240 with the laion400m_e32 weights.
PAIRINGS: tuple[Pairing, ...] = (
    Pairing(
        text="st:sentence-transformers/clip-ViT-B-32-multilingual-v1",
        image="ViT-B-32:openai",
        languages="50+ languages",
        note="multilingual DistilBERT distilled into OpenAI CLIP ViT-B/32's text space (sentence-transformers)",
        same_weights=("ViT-B-32-quickgelu:openai",),
    ),
    _mclip("XLM-Roberta-Large-Vit-B-32", "ViT-B-32:openai", "XLM-RoBERTa-large", "OpenAI CLIP ViT-B/32's text space"),
    _mclip("XLM-Roberta-Large-Vit-L-14", "ViT-L-14:openai", "XLM-RoBERTa-large", "OpenAI CLIP ViT-L/14's text space"),
    _mclip(
        "XLM-Roberta-Large-Vit-B-16Plus",
        "ViT-B-16-plus-240:laion400m_e32",
        "XLM-RoBERTa-large",
        "open_clip ViT-B-16+ (LAION-400M)",
    ),
    _mclip("LABSE-Vit-L-14", "ViT-L-14:openai", "LaBSE", "OpenAI CLIP ViT-L/14's text space", "109 languages (LaBSE)"),
)
#: Short names of registered text models (besides their hub ids without the prefix).
SHORT_NAMES: dict[str, str] = {
    "clip-ViT-B-32-multilingual-v1": "st:sentence-transformers/clip-ViT-B-32-multilingual-v1",
}


def aliases() -> dict[str, str]:
    """Every name that stands for a registered text model's spec: short names and hub ids without the prefix."""
    return {**SHORT_NAMES, **{p.text.partition(":")[2]: p.text for p in PAIRINGS}}

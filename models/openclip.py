"""The open_clip backend: parses open_clip specs, loads models and wraps them as :class:`ImageTextEncoder`.

Spec grammar handled here (first match wins):

* ``hf-hub:ORG/NAME`` – an open_clip model published on the Hugging Face hub.
* a local directory holding ``open_clip_config.json`` and weights (the hub layout; what
  :func:`save_checkpoint` writes and ``catalens finetune`` produces).
* a local ``*.json`` architecture config – random, seeded weights (custom and tiny models for tests).
* ``ARCH:random`` – a built-in architecture with random, seeded weights (benchmarks, tests).
* ``ARCH:/path/to/weights`` – a built-in architecture with a local checkpoint file.
* ``ARCH:TAG`` – a built-in architecture with open_clip's pretrained weights for TAG.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from catalens.models.base import LoadOptions, ModelInfo, ModelSpec, encode_images_in_batches
from catalens.models.device import Placement, plan_placement
from catalens.models.errors import ModelLoadError, ModelUnavailableError, UnknownModelError
from catalens.models.fingerprint import file_digest
from catalens.models.hub import (
    WeightSource,
    cache_locations,
    download_failure,
    hf_repo_source,
    hub_offline,
    is_download_failure,
    offline_requested,
    pretrained_source,
    why_not_downloadable,
)
from catalens.models.module import LoadedModel, write_weights
from catalens.models.onnx_text import OnnxTextEncoder, choose_text_encoder
from catalens.models.openclip_text import encode_text_trimmed, trimmed_tokens
from catalens.models.specs import SpecParts, closest_first, looks_like_path

BACKEND = "open_clip"
CONFIG_NAME = "open_clip_config.json"
WEIGHTS_NAME = "open_clip_model.safetensors"
_LOCAL_SUFFIXES = (".json", ".safetensors", ".bin", ".pt", ".pth", ".ckpt")


class OpenClipBackend:
    """Registry backend for every spec open_clip can load."""

    name = BACKEND
    kinds: tuple[str, ...] = (BACKEND,)
    prefixes: tuple[str, ...] = ("hf-hub", "local-dir")

    def parse(self, parts: SpecParts) -> ModelSpec | None:
        """Parse a spec, or return ``None`` when it is not an open_clip spec.

        Raises:
            UnknownModelError: the text is meant for this backend but names nothing that exists.
        """
        import open_clip

        text = parts.text
        if parts.prefix == "hf-hub":
            repo = parts.name
            if repo.count("/") != 1 or not all(repo.split("/")):
                raise UnknownModelError(text, "hf-hub specs look like hf-hub:ORG/NAME")
            return ModelSpec(kind="hf-hub", backend=BACKEND, path=repo)
        if parts.prefix == "local-dir":
            return self._parse_local(text, Path(parts.name).expanduser())
        arch, tag = parts.name, parts.tag
        archs = open_clip.list_models()
        if arch not in archs and (looks_like_path(text, _LOCAL_SUFFIXES) or os.path.exists(os.path.expanduser(text))):
            return self._parse_local(text, Path(text).expanduser())
        if arch not in archs:
            raise UnknownModelError(text, f"no architecture named {arch!r}", closest_first(arch, archs))
        tags = list(open_clip.list_pretrained_tags_by_model(arch))
        if not tag:
            raise UnknownModelError(text, f"{arch} needs a weights tag", [f"{arch}:{t}" for t in [*tags, "random"]])
        if tag == "random":
            return ModelSpec(kind="random", backend=BACKEND, arch=arch, tag="random")
        if looks_like_path(tag, _LOCAL_SUFFIXES) or os.path.isfile(os.path.expanduser(tag)):
            weights = Path(tag).expanduser().resolve()
            if not weights.is_file():
                raise UnknownModelError(text, f"checkpoint file {str(weights)!r} does not exist")
            return ModelSpec(kind="checkpoint-file", backend=BACKEND, arch=arch, path=str(weights))
        if tag not in tags:
            choices = [f"{arch}:{t}" for t in closest_first(tag, tags)] + [f"{arch}:random"]
            raise UnknownModelError(text, f"{arch} has no pretrained tag {tag!r}", choices)
        return ModelSpec(kind="pretrained", backend=BACKEND, arch=arch, tag=tag)

    def _parse_local(self, text: str, path: Path) -> ModelSpec:
        path = path.resolve()
        if path.is_dir():
            if not (path / CONFIG_NAME).is_file():
                raise UnknownModelError(text, f"directory {str(path)!r} has no {CONFIG_NAME}")
            return ModelSpec(kind="checkpoint-dir", backend=BACKEND, path=str(path))
        if path.is_file() and path.suffix == ".json":
            if path.name == CONFIG_NAME:
                return ModelSpec(kind="checkpoint-dir", backend=BACKEND, path=str(path.parent))
            return ModelSpec(kind="config", backend=BACKEND, path=str(path))
        if path.is_file():
            raise UnknownModelError(
                text, f"a checkpoint file needs its architecture, e.g. ViT-B-32:{path} (see `catalens models`)"
            )
        raise UnknownModelError(text, f"no such file or directory: {str(path)!r}")

    def entries(self) -> list[ModelInfo]:
        """Every built-in open_clip architecture with its known pretrained tags."""
        import open_clip

        return [
            ModelInfo(BACKEND, arch, tuple(open_clip.list_pretrained_tags_by_model(arch)))
            for arch in open_clip.list_models()
        ]

    def load(self, spec: ModelSpec, options: LoadOptions) -> OpenClipEncoder:
        """Build the model for ``spec`` on the device ``options`` ask for.

        Raises:
            ModelUnavailableError: pretrained or hub weights are neither cached nor downloadable.
            ModelLoadError: a local checkpoint or config is broken.
            DeviceUnavailableError: the requested device does not exist.
        """
        placement = plan_placement(options.device, options.precision)
        seeded = spec.kind in ("random", "config")
        with _seeded(options.seed) if seeded else nullcontext():
            model, transform, tokenizer, model_cfg = _create(spec, placement, options)
        model = model.eval()
        text = None
        if not placement.half:
            text = choose_text_encoder(
                spec.canonical, model, tokenizer, options.text_runtime, placement.device, options.cache_dir
            )
        try:
            digest = file_digest(files) if (files := _local_weight_files(spec)) else None
        except OSError as error:
            raise ModelLoadError(spec.canonical, f"cannot read the checkpoint: {error}") from error
        return OpenClipEncoder(spec.canonical, model, transform, tokenizer, model_cfg, placement, text, digest)


def _local_weight_files(spec: ModelSpec) -> list[Path]:
    """The local files a checkpoint spec's weights came from (hashed into its weights digest); none for others.

    A checkpoint directory is its config and whichever weight files open_clip's local-dir loader reads.
    """
    if spec.kind == "checkpoint-file":
        return [Path(str(spec.path))]
    if spec.kind == "checkpoint-dir":
        directory = Path(str(spec.path))
        names = (CONFIG_NAME, WEIGHTS_NAME, "open_clip_pytorch_model.bin")
        return [directory / name for name in names if (directory / name).is_file()]
    return []


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch for a reproducible random init without disturbing the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _create(spec: ModelSpec, placement: Placement, options: LoadOptions) -> tuple[Any, Any, Any, dict[str, Any]]:
    import open_clip

    kwargs: dict[str, Any] = {"device": placement.device, "cache_dir": options.cache_dir}
    offline = _check_weights_reachable(spec, options)
    try:
        if spec.kind == "config":
            return _create_from_bare_config(spec, kwargs)
        if spec.kind == "checkpoint-dir":
            name = f"local-dir:{spec.path}"
            model_cfg = json.loads(Path(str(spec.path), CONFIG_NAME).read_text())["model_cfg"]
        elif spec.kind == "hf-hub":
            name = f"hf-hub:{spec.path}"
            model_cfg = {}
        else:
            name = str(spec.arch)
            model_cfg = open_clip.get_model_config(name) or {}
            if spec.kind == "pretrained":
                kwargs["pretrained"] = spec.tag
            elif spec.kind == "checkpoint-file":
                kwargs["pretrained"] = spec.path
        with hub_offline() if offline else nullcontext():
            model, _, transform = open_clip.create_model_and_transforms(name, **kwargs)
            tokenizer = open_clip.get_tokenizer(name, cache_dir=options.cache_dir)
    except Exception as e:
        if spec.kind in ("pretrained", "hf-hub") and is_download_failure(e):
            cause = download_failure(e, cached=offline)
            raise ModelUnavailableError(spec.canonical, cache_locations(options.cache_dir), cause) from e
        raise ModelLoadError(spec.canonical, f"{type(e).__name__}: {e}") from e
    return model, transform, tokenizer, model_cfg


def _check_weights_reachable(spec: ModelSpec, options: LoadOptions) -> bool:
    """Decide, before open_clip tries, whether hub weights can be had; returns True to load them offline.

    Raises:
        ModelUnavailableError: the weights are not cached and their host cannot be reached.
    """
    if spec.kind == "hf-hub":
        source: WeightSource | None = hf_repo_source(str(spec.path), options.cache_dir)
    elif spec.kind == "pretrained":
        source = pretrained_source(str(spec.arch), str(spec.tag), options.cache_dir)
    else:
        return False
    # Under HF_HUB_OFFLINE huggingface_hub itself keeps to the cache, and a miss is reported after the attempt.
    if source is None or offline_requested():
        return False
    cause = why_not_downloadable(source.url)
    if cause is None:
        return False
    if source.cached:
        return True
    raise ModelUnavailableError(spec.canonical, cache_locations(options.cache_dir), cause)


def _create_from_bare_config(spec: ModelSpec, kwargs: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Load a bare architecture JSON by presenting it to open_clip in its own local-dir layout.

    This reuses open_clip's choice of model class, preprocessing and tokenizer instead of re-implementing it.
    """
    import open_clip

    raw = json.loads(Path(str(spec.path)).read_text())
    model_cfg = raw.get("model_cfg", raw)
    if "vision_cfg" not in model_cfg or "text_cfg" not in model_cfg:
        raise ValueError("an architecture JSON needs embed_dim, vision_cfg and text_cfg (open_clip's format)")
    with tempfile.TemporaryDirectory(prefix="catalens-cfg-") as tmp:
        payload = {"model_cfg": model_cfg, "preprocess_cfg": raw.get("preprocess_cfg", {})}
        Path(tmp, CONFIG_NAME).write_text(json.dumps(payload))
        name = f"local-dir:{tmp}"
        model, _, transform = open_clip.create_model_and_transforms(name, **kwargs)
        tokenizer = open_clip.get_tokenizer(name)
    return model, transform, tokenizer, model_cfg


class OpenClipEncoder(LoadedModel):
    """An open_clip model behind the :class:`models.base.ImageTextEncoder` protocol."""

    def __init__(
        self,
        spec: str,
        model: Any,
        transform: Any,
        tokenizer: Any,
        model_cfg: dict[str, Any],
        placement: Placement,
        text_encoder: OnnxTextEncoder | None = None,
        weights_digest: str | None = None,
    ) -> None:
        """Wrap a loaded model; ``text_encoder`` (see :mod:`models.onnx_text`) replaces torch for text.

        ``weights_digest`` is the digest of the checkpoint files it was loaded from, if any.
        """
        super().__init__(spec, placement, weights_digest)
        self._model = model.eval()
        if placement.half:
            self._model = self._model.half()
        self._transform = transform
        self._fast_path = _split_pil_and_tensor_steps(transform)
        self._tokenizer = tokenizer
        self._model_cfg = model_cfg
        self._onnx_text = text_encoder
        self._onnx_weights = _weight_versions(self._model) if text_encoder is not None else ()
        self._dim = int(self.encode_texts([""]).shape[1])

    @property
    def logit_scale(self) -> float:
        scale = getattr(self._model, "logit_scale", None)
        return float(scale.exp().clamp(max=100).item()) if scale is not None else 100.0

    @property
    def image_size(self) -> int:
        size = getattr(self._model.visual, "image_size", 224)
        return int(max(size) if isinstance(size, tuple | list) else size)

    @property
    def decode_size(self) -> int:
        return self.image_size

    @property
    def torch_module(self) -> Any:
        """The underlying open_clip module, for fine-tuning and checkpointing inside ``models/``."""
        return self._model

    @property
    def model_config(self) -> dict[str, Any]:
        """The open_clip architecture config, as written into saved checkpoints."""
        return dict(self._model_cfg)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids for ``texts`` (for training inside ``models/``)."""
        return self._tokenizer(list(texts))

    def preprocess(self, image: Image.Image) -> np.ndarray:
        if self._fast_path is None:
            return np.ascontiguousarray(self._transform(image).numpy(), dtype=np.float32)
        steps, mean, std = self._fast_path
        for step in steps:
            image = step(image)
        pixels = (np.asarray(image, dtype=np.float32) * (1.0 / 255.0) - mean) / std
        return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)

    def preprocess_reference(self, image: Image.Image) -> np.ndarray:
        """The unmodified open_clip transform; :meth:`preprocess` must match it (tested)."""
        return np.ascontiguousarray(self._transform(image).numpy(), dtype=np.float32)

    def _to_model(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self._placement.device, non_blocking=True)
        return tensor.half() if self._placement.half and tensor.is_floating_point() else tensor

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.ndim != 4 or pixels.shape[0] == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._inference():
            features = self._model.encode_image(self._to_model(torch.from_numpy(pixels)))
        return _normalise(features)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int | None = None) -> np.ndarray:
        return encode_images_in_batches(self, images, batch_size)

    @property
    def text_runtime(self) -> str:
        """``"onnx"`` when ONNX Runtime encodes texts (see :mod:`models.onnx_text`), else ``"torch"``."""
        return "onnx" if self._text_on_onnx() else "torch"

    @property
    def text_onnx(self) -> OnnxTextEncoder | None:
        """The ONNX Runtime text encoder in use (its ``report`` says whether it was exported now), or ``None``."""
        return self._onnx_text if self._text_on_onnx() else None

    def _text_on_onnx(self) -> bool:
        """Whether the ONNX graph still holds the model's text weights (training updates them in place)."""
        if self._onnx_text is None:
            return False
        if _weight_versions(self._model) != self._onnx_weights:
            self._onnx_text = None  # the exported weights are stale from now on; torch sees the new ones
        return self._onnx_text is not None

    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        size = batch_size or max(self.default_batch_size, 64)
        chunks = []
        for i in range(0, len(texts), size):
            tokens = self._tokenizer(list(texts[i : i + size]))
            onnx_text = self._onnx_text if self._text_on_onnx() else None
            if onnx_text is not None:
                chunks.append(_normalise_array(onnx_text(trimmed_tokens(self._model, tokens).numpy())))
                continue
            with self._inference():
                # At the texts' true token length, not the padded context: same vectors, a fraction of the work.
                chunks.append(_normalise(encode_text_trimmed(self._model, self._to_model(tokens))))
        return np.concatenate(chunks) if chunks else np.zeros((0, self._dim), dtype=np.float32)

    def _write_checkpoint(self, directory: Path) -> None:
        """open_clip's hub layout (see :func:`save_checkpoint`), weights in fp32."""
        from open_clip.push_to_hf_hub import save_config_for_hf

        write_weights(self._model.state_dict(), directory / WEIGHTS_NAME)
        save_config_for_hf(self._model, directory / CONFIG_NAME, model_config=self.model_config)


def _split_pil_and_tensor_steps(transform: Any) -> tuple[list[Any], np.ndarray, np.ndarray] | None:
    """Split open_clip's eval transform into its PIL steps and a trailing to-tensor + normalise.

    The PIL steps (resize, crop, mode) are run as they are; the tail is done in numpy. Torch ops called
    from the indexer's decode threads would start extra OpenMP thread teams that fight the model's own
    threads for the cores (measured: the forward pass slowed by about 20 % on 2 cores). Returns ``None``,
    meaning "use the transform as is", for any transform of another shape.
    """
    steps = list(getattr(transform, "transforms", []))
    names = [type(step).__name__ for step in steps]
    if len(steps) < 2 or names[-2] not in ("ToTensor", "MaybeToTensor") or names[-1] != "Normalize":
        return None
    if any(name in ("ToTensor", "MaybeToTensor", "Normalize") for name in names[:-2]):
        return None
    mean = np.asarray(steps[-1].mean, dtype=np.float32).reshape(1, 1, -1)
    std = np.asarray(steps[-1].std, dtype=np.float32).reshape(1, 1, -1)
    return steps[:-2], mean, std


def _normalise(features: torch.Tensor) -> np.ndarray:
    return F.normalize(features.float(), dim=-1).cpu().numpy().astype(np.float32, copy=False)


def _normalise_array(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as :func:`torch.nn.functional.normalize` does (norms clamped at 1e-12)."""
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return np.ascontiguousarray(features / np.maximum(norms, 1e-12), dtype=np.float32)


def _weight_versions(model: Any) -> tuple[tuple[int, int], ...]:
    """Identity and in-place version of each text-tower weight: changes when training or loading updates one."""
    modules = (model.token_embedding, model.transformer, model.ln_final)
    params = [p for m in modules for p in m.parameters()]
    params += [t for t in (model.positional_embedding, model.text_projection) if isinstance(t, torch.Tensor)]
    if isinstance(model.text_projection, torch.nn.Module):
        params += list(model.text_projection.parameters())
    return tuple((id(p), p._version) for p in params)


def save_checkpoint(encoder: OpenClipEncoder, directory: str | os.PathLike[str]) -> Path:
    """Write ``encoder`` as a self-describing directory that the spec ``DIRECTORY`` loads again.

    The layout is open_clip's hub layout (``open_clip_config.json`` + ``open_clip_model.safetensors``), so a
    saved model can also be pushed to the hub unchanged.

    Returns:
        The directory, resolved.
    """
    return encoder.save(directory)

"""Image captioners: one protocol, one spec syntax, BLIP and BLIP-2 backends and a registry.

A captioner turns product images into short texts (and, for the attribute captioner, tags) that the indexer
stores next to each item and the search engine can match keywords against. Backends are chosen by a string
spec, like image–text models (see :mod:`models.registry`).

Spec grammar (see :func:`parse_captioner_spec`):

* ``blip`` – BLIP base, ``Salesforce/blip-image-captioning-base`` (practical on a CPU).
* ``blip-large`` – BLIP large, ``Salesforce/blip-image-captioning-large``.
* ``blip2`` – BLIP-2 with OPT-2.7b, ``Salesforce/blip2-opt-2.7b`` (fp16 on CUDA; very slow on a CPU).
* ``blip:ORG/NAME`` or ``blip:/path/to/dir`` – any BLIP captioning checkpoint on the hub or saved locally
  (``save_pretrained`` of the model and its processor into one directory).
* ``blip2:ORG/NAME`` or ``blip2:/path/to/dir`` – the same for BLIP-2 checkpoints.
* ``attributes`` – zero-shot attribute tags (category, colour, material, pattern, style) with the store's own
  image–text model and the default vocabulary (see :mod:`models.attributes`).
* ``attributes:/path/to/vocabulary.json`` – the same with a user vocabulary that extends or overrides the
  default per attribute.

Canonical specs, which a store records to decide whether an item is already captioned by a captioner:
``blip:Salesforce/blip-image-captioning-base``, ``blip2:/absolute/dir``, ``attributes``,
``attributes:/absolute/vocabulary.json@<first 12 hex digits of the file's sha256>`` (editing the vocabulary
changes the spec, so items are captioned again). Generation options (prompt, beams, token limit) are not part
of the spec.

Torch and transformers are imported only when a BLIP model is loaded, so importing this module and parsing
specs stay light.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from catalens.models.base import ImageTextEncoder
from catalens.models.errors import ModelError, ModelLoadError, ModelUnavailableError, UnknownModelError
from catalens.models.hub import (
    cache_locations,
    first_line,
    hub_offline,
    is_download_failure,
    offline_requested,
    quiet_loading,
    reachable,
    root_cause,
)

if TYPE_CHECKING:
    from catalens.models.device import Placement

CaptionerKind = Literal["blip", "blip2", "attributes"]
BlipKind = Literal["blip", "blip2"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_PROBE_TIMEOUT_S = 3.0
# Any one of these in the cache (with config.json) means the weights were downloaded before.
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# transformers' ``model_type`` of each kind, to catch a BLIP-2 directory passed as ``blip:`` and vice versa.
_MODEL_TYPES: dict[BlipKind, str] = {"blip": "blip", "blip2": "blip-2"}
_KIND_NAMES: dict[BlipKind, str] = {"blip": "BLIP", "blip2": "BLIP-2"}
VOCABULARY_HASH_LENGTH = 12


# -- public data types ---------------------------------------------------------------------------------------


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


# -- registry ------------------------------------------------------------------------------------------------


class CaptionerBackend(Protocol):
    """What the captioner registry needs from a backend."""

    name: str
    kinds: tuple[CaptionerKind, ...]

    def parse(self, text: str) -> CaptionerSpec | None: ...

    def list_captioners(self) -> list[CaptionerInfo]: ...

    def load(self, spec: CaptionerSpec, options: CaptionOptions, encoder: ImageTextEncoder | None) -> Captioner: ...


class CaptionerRegistry:
    """An ordered set of captioner backends that turns spec strings into loaded captioners."""

    def __init__(self, backends: Sequence[CaptionerBackend]) -> None:
        self._backends = {b.name: b for b in backends}

    def choices(self) -> list[str]:
        """Every short name and spec pattern, for error messages."""
        return [info.name for backend in self._backends.values() for info in backend.list_captioners()]

    def parse(self, text: str) -> CaptionerSpec:
        """Parse a captioner spec.

        Raises:
            UnknownModelError: no backend recognises the spec (a ``ValueError`` listing valid choices).
        """
        stripped = (text or "").strip()
        if not stripped:
            raise UnknownModelError(text, "the captioner spec is empty", self.choices())
        for backend in self._backends.values():
            spec = backend.parse(stripped)
            if spec is not None:
                return spec
        names = [info.name for b in self._backends.values() for info in b.list_captioners() if ":" not in info.name]
        close = difflib.get_close_matches(stripped, names, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise UnknownModelError(text, f"{hint}no captioner backend recognises it", self.choices())

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
        backend = next((b for b in self._backends.values() if spec.kind in b.kinds), None)
        if backend is None:  # only for a hand-built spec of a kind this registry was built without
            raise UnknownModelError(spec.canonical, "no captioner backend recognises it", self.choices())
        return backend.load(spec, options or CaptionOptions(), encoder)

    def list_captioners(self) -> list[CaptionerInfo]:
        """Every short name and spec pattern each backend knows."""
        return [info for backend in self._backends.values() for info in backend.list_captioners()]


def default_captioner_registry() -> CaptionerRegistry:
    """The registry with every captioner catalens ships (BLIP, BLIP-2, attributes)."""
    from catalens.models.attributes import AttributeBackend

    return CaptionerRegistry([BlipBackend(), AttributeBackend()])


def parse_captioner_spec(text: str) -> CaptionerSpec:
    """Parse a captioner spec (see the module docstring for the grammar).

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


# -- BLIP and BLIP-2 -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ShortName:
    name: str
    kind: BlipKind
    hub_id: str
    description: str


_SHORT_NAMES: tuple[_ShortName, ...] = (
    _ShortName(
        "blip",
        "blip",
        "Salesforce/blip-image-captioning-base",
        "BLIP base (ViT-B, 0.25B parameters): practical on a CPU",
    ),
    _ShortName(
        "blip-large",
        "blip",
        "Salesforce/blip-image-captioning-large",
        "BLIP large (ViT-L, 0.47B parameters): better captions, slower",
    ),
    _ShortName(
        "blip2",
        "blip2",
        "Salesforce/blip2-opt-2.7b",
        "BLIP-2 with OPT-2.7b (3.8B parameters): meant for CUDA (fp16); takes questions as prompts",
    ),
)


class BlipBackend:
    """Registry backend for BLIP and BLIP-2 captioning checkpoints (transformers)."""

    name = "blip"
    kinds: tuple[CaptionerKind, ...] = ("blip", "blip2")

    def parse(self, text: str) -> CaptionerSpec | None:
        """Parse ``text``, or return ``None`` when it is not a BLIP or BLIP-2 spec.

        Raises:
            UnknownModelError: the text is meant for this backend but names nothing that can exist.
        """
        short = next((s for s in _SHORT_NAMES if s.name == text), None)
        if short is not None:
            return CaptionerSpec(short.kind, short.hub_id, local=False)
        prefix, sep, rest = text.partition(":")
        if not sep or prefix not in _MODEL_TYPES:
            return None
        kind: BlipKind = "blip" if prefix == "blip" else "blip2"
        rest = rest.strip()
        if not rest:
            raise UnknownModelError(text, f"{kind}: needs a hub id or a directory, e.g. {kind}:ORG/NAME", _choices())
        path = Path(rest).expanduser()
        if rest.startswith(("/", "./", "../", "~")) or path.exists():
            return CaptionerSpec(kind, str(path.resolve()), local=True)
        if not _HUB_ID.match(rest):
            raise UnknownModelError(text, f"{rest!r} is neither a directory nor a hub id (ORG/NAME)", _choices())
        return CaptionerSpec(kind, rest, local=False)

    def list_captioners(self) -> list[CaptionerInfo]:
        """The BLIP short names and spec patterns."""
        rows = [CaptionerInfo(s.name, f"{s.kind}:{s.hub_id}", s.description) for s in _SHORT_NAMES]
        for kind in ("blip", "blip2"):
            label = _KIND_NAMES[kind]
            rows.append(CaptionerInfo(f"{kind}:ORG/NAME", f"{kind}:ORG/NAME", f"a {label} checkpoint on the hub"))
            rows.append(
                CaptionerInfo(f"{kind}:/path/to/dir", f"{kind}:/path/to/dir", f"a {label} checkpoint saved locally")
            )
        return rows

    def load(self, spec: CaptionerSpec, options: CaptionOptions, encoder: ImageTextEncoder | None) -> BlipCaptioner:
        """Load a BLIP or BLIP-2 checkpoint (``encoder`` is not used).

        Raises:
            ModelUnavailableError: a hub model is not cached and cannot be downloaded.
            ModelLoadError: the directory or cached snapshot is missing, broken or of the other kind.
            DeviceUnavailableError: the requested device (or fp16 on the CPU) is not available.
        """
        if spec.kind not in _MODEL_TYPES or spec.location is None:
            raise UnknownModelError(spec.canonical, "not a BLIP or BLIP-2 spec", _choices())
        return _load_blip(spec, options)


def _choices() -> list[str]:
    return [info.name for info in BlipBackend().list_captioners()] + ["attributes", "attributes:/path/to/vocab.json"]


def _load_blip(spec: CaptionerSpec, options: CaptionOptions) -> BlipCaptioner:
    import torch

    from catalens.models.device import plan_placement

    kind: BlipKind = "blip" if spec.kind == "blip" else "blip2"
    location = str(spec.location)
    placement = plan_placement(options.device, options.precision)
    # fp16 halves the weights' memory on CUDA (BLIP-2 OPT-2.7b: about 8 GB instead of 15 GB); CPUs stay in fp32.
    half = options.precision == "fp16" or (options.precision == "auto" and placement.device.startswith("cuda"))
    dtype = torch.float16 if half else torch.float32
    if spec.local:
        _check_directory(spec)
    local_only = spec.local or _hub_files_cached(location, options.cache_dir)
    if not local_only:
        _check_hub_reachable(spec, options)
    try:
        with hub_offline() if local_only and not spec.local else nullcontext():
            with quiet_loading():
                model, processor = _from_pretrained(kind, spec, options, dtype, local_only)
    except ModelError:
        raise
    except Exception as error:
        # transformers reports a file it could neither find in the cache nor download as an OSError (without
        # the hub's exception in the chain), so for hub models an OSError means "not available", too.
        if not spec.local and (isinstance(error, OSError) or is_download_failure(error)):
            state = "the cached copy is incomplete or damaged" if local_only else "download failed"
            raise CaptionerUnavailableError(
                spec, cache_locations(options.cache_dir), f"{state}: {root_cause(error)}"
            ) from error
        raise ModelLoadError(spec.canonical, f"{type(error).__name__}: {first_line(error)}") from error
    model = model.to(placement.device).eval()
    return BlipCaptioner(spec.canonical, kind, model, processor, placement, dtype, options)


def _check_directory(spec: CaptionerSpec) -> None:
    directory = Path(str(spec.location))
    if not directory.is_dir():
        raise ModelLoadError(spec.canonical, f"no such directory: {str(directory)!r}")
    if not (directory / "config.json").is_file():
        raise ModelLoadError(spec.canonical, "the directory has no config.json (save the model with save_pretrained)")


def _from_pretrained(
    kind: BlipKind, spec: CaptionerSpec, options: CaptionOptions, dtype: Any, local_only: bool
) -> tuple[Any, Any]:
    from transformers import (
        AutoConfig,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        BlipForConditionalGeneration,
        BlipProcessor,
    )

    location = str(spec.location)
    common: dict[str, Any] = {"cache_dir": options.cache_dir, "local_files_only": local_only}
    config = AutoConfig.from_pretrained(location, **common)
    model_type = str(getattr(config, "model_type", ""))
    if model_type != _MODEL_TYPES[kind]:
        other = next((k for k, t in _MODEL_TYPES.items() if t == model_type), None)
        hint = f"; load it as {other}:{location}" if other else ""
        raise ModelLoadError(spec.canonical, f"the checkpoint is a {model_type!r} model, not {_KIND_NAMES[kind]}{hint}")
    model_class = BlipForConditionalGeneration if kind == "blip" else Blip2ForConditionalGeneration
    processor_class = BlipProcessor if kind == "blip" else Blip2Processor
    # Passing the dtype at load (rather than casting afterwards) keeps the modules BLIP-2 holds in fp32 in fp32.
    model = model_class.from_pretrained(location, config=config, **{_dtype_keyword(): dtype}, **common)
    processor: Any = processor_class.from_pretrained(location, **common)
    if kind == "blip2" and getattr(processor, "num_query_tokens", None) is None:
        # Processors saved before transformers 4.45 do not know how many image tokens to insert.
        processor.num_query_tokens = config.num_query_tokens
    return model, processor


def _dtype_keyword() -> str:
    """``from_pretrained``'s name for the weights' dtype: ``dtype`` since transformers 4.56, ``torch_dtype`` before."""
    import transformers

    try:
        version = tuple(int(part) for part in transformers.__version__.split(".")[:2])
    except ValueError:
        return "dtype"
    return "dtype" if version >= (4, 56) else "torch_dtype"


def _hub_files_cached(repo_id: str, cache_dir: str | None) -> bool:
    """Whether a hub checkpoint's config and weights are in the local cache, so it loads without the network."""
    from huggingface_hub import try_to_load_from_cache

    def cached(name: str) -> bool:
        return isinstance(try_to_load_from_cache(repo_id, name, cache_dir=cache_dir), str)

    return cached("config.json") and any(cached(name) for name in _WEIGHT_FILES)


def _check_hub_reachable(spec: CaptionerSpec, options: CaptionOptions) -> None:
    """For a hub model that is not cached: fail at once, without huggingface_hub's retries, unless it can download.

    Raises:
        ModelUnavailableError: ``HF_HUB_OFFLINE`` is set, or the hub host does not answer.
    """
    from huggingface_hub import constants

    if offline_requested():
        raise CaptionerUnavailableError(
            spec, cache_locations(options.cache_dir), "HF_HUB_OFFLINE=1 is set, so no download was attempted"
        )
    if not reachable(constants.ENDPOINT, timeout=_PROBE_TIMEOUT_S):
        host = urlparse(constants.ENDPOINT).hostname
        raise CaptionerUnavailableError(
            spec, cache_locations(options.cache_dir), f"{host} cannot be reached from this machine"
        )


class BlipCaptioner:
    """A BLIP or BLIP-2 captioning model behind the :class:`Captioner` protocol."""

    def __init__(
        self,
        spec: str,
        kind: BlipKind,
        model: Any,
        processor: Any,
        placement: Placement,
        dtype: Any,
        options: CaptionOptions,
    ) -> None:
        self._spec = spec
        self._kind = kind
        self._model = model
        self._processor = processor
        self._placement = placement
        self._dtype = dtype
        self._options = options
        # Decoder-only language models (OPT) return the prompt in front of the new tokens; BLIP's text decoder
        # does too. Flan-T5 BLIP-2 models (encoder-decoder) return only the answer.
        text_config = getattr(model.config, "text_config", None)
        self._echoes_prompt = kind == "blip" or not bool(getattr(text_config, "is_encoder_decoder", False))

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def run_spec(self) -> str:
        """The spec plus the generation options that change captions, so a store re-captions when they change.

        E.g. ``blip:Salesforce/blip-image-captioning-base`` with defaults, or
        ``blip:Salesforce/blip-image-captioning-base?prompt=a+product+photo+of&max_new_tokens=20``.
        """
        from urllib.parse import urlencode

        defaults = CaptionOptions()
        changed = {
            name: getattr(self._options, name)
            for name in ("prompt", "max_new_tokens", "num_beams")
            if getattr(self._options, name) != getattr(defaults, name)
        }
        return f"{self._spec}?{urlencode(changed)}" if changed else self._spec

    @property
    def kind(self) -> BlipKind:
        """``"blip"`` or ``"blip2"``."""
        return self._kind

    @property
    def device(self) -> str:
        """The torch device the model runs on."""
        return self._placement.device

    @property
    def default_batch_size(self) -> int:
        if self._options.batch_size:
            return self._options.batch_size
        on_cuda = self._placement.device.startswith("cuda")
        if self._kind == "blip2":
            return 16 if on_cuda else 2
        return 64 if on_cuda else 16 if self._placement.device == "mps" else 8

    def caption(self, images: Sequence[Image.Image]) -> list[Caption]:
        """Caption RGB images in batches of :attr:`default_batch_size`.

        Args:
            images: PIL images (other modes are converted to RGB).

        Returns:
            One :class:`Caption` per image, in order; ``tags`` and ``scores`` are empty.
        """
        size = self.default_batch_size
        captions: list[Caption] = []
        for start in range(0, len(images), size):
            captions.extend(Caption(text) for text in self._generate(images[start : start + size]))
        return captions

    def _generate(self, images: Sequence[Image.Image]) -> list[str]:
        import torch

        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        prompt = (self._options.prompt or "").strip()
        # BLIP-2's processor inserts the image tokens only when it gets a text, so it always gets one (an empty
        # prompt is just the BOS token, which is what the model would start from anyway).
        texts = [prompt] * len(rgb) if prompt or self._kind == "blip2" else None
        inputs = self._processor(images=rgb, text=texts, return_tensors="pt")
        inputs = {key: value.to(self._placement.device) for key, value in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self._dtype)
        with torch.inference_mode():
            output = self._model.generate(
                **inputs,
                max_new_tokens=self._options.max_new_tokens,
                num_beams=self._options.num_beams,
                do_sample=False,
            )
        echo = self._echo(inputs)
        return [self._decode(row, echo, prompt) for row in output.cpu()]

    def _echo(self, inputs: dict[str, Any]) -> list[int]:
        """The tokens an output row starts with when the model repeats its input (empty when it does not)."""
        if not self._echoes_prompt:
            return []
        input_ids = inputs.get("input_ids")
        if self._kind == "blip2":
            return [int(t) for t in input_ids[0]] if input_ids is not None else []
        # BLIP's decoder starts from BOS + the prompt's tokens without the trailing [SEP] (or from BOS alone).
        bos = int(self._model.config.text_config.bos_token_id)
        return [bos, *(int(t) for t in input_ids[0, 1:-1])] if input_ids is not None else [bos]

    def _decode(self, row: Any, echo: list[int], prompt: str) -> str:
        """The caption in one output row, without the repeated input or special tokens."""
        decode: Callable[..., str] = self._processor.tokenizer.decode
        # Older transformers versions return only the new tokens, so the echo is checked, not assumed.
        prefix = len(echo) if echo and [int(t) for t in row[: len(echo)]] == echo else 0
        if not prefix:
            return _clean(decode(row, skip_special_tokens=True), prompt)
        full = decode(row, skip_special_tokens=True).strip()
        head = decode(row[:prefix], skip_special_tokens=True).strip()
        # Cutting the decoded prompt off the decoded row keeps a word piece that continues the prompt whole;
        # when the texts do not line up, the new tokens alone are the caption.
        if head and full.startswith(head):
            return _clean(full[len(head) :], "")
        return _clean(decode(row[prefix:], skip_special_tokens=True), "")


def _clean(text: str, prompt: str) -> str:
    """Collapse whitespace and drop a prompt that the model repeated (BLIP's tokenizer lower-cases it)."""
    text = " ".join(text.split())
    if prompt and text.lower().startswith(prompt.lower()):
        text = text[len(prompt) :].strip()
    return text

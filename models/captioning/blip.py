"""BLIP and BLIP-2 captioners (transformers): short names, ``blip:``/``blip2:`` specs, loading and generation.

Torch and transformers are imported only when a model is loaded, so parsing specs stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image

from catalens.models.base import ImageTextEncoder
from catalens.models.captioning.types import (
    Caption,
    CaptionerInfo,
    CaptionerSpec,
    CaptionerUnavailableError,
    CaptionOptions,
)
from catalens.models.errors import ModelLoadError, UnknownModelError
from catalens.models.hub import cache_locations, cached_any, cached_file, loading_from_hub
from catalens.models.module import LoadedModel
from catalens.models.specs import SpecParts, parse_location

if TYPE_CHECKING:
    from catalens.models.device import Placement

BlipKind = Literal["blip", "blip2"]

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
    kinds: tuple[str, ...] = ("blip", "blip2")
    prefixes: tuple[str, ...] = ("blip", "blip2")

    def parse(self, parts: SpecParts) -> CaptionerSpec | None:
        """Parse a short name or ``blip:``/``blip2:`` spec, or return ``None`` when it is not a BLIP spec.

        Raises:
            SpecRefusedError: the text is meant for this backend but names nothing that can exist.
        """
        short = next((s for s in _SHORT_NAMES if s.name == parts.text), None)
        if short is not None:
            return CaptionerSpec(short.kind, short.hub_id, local=False)
        if parts.prefix not in _MODEL_TYPES:
            return None
        kind: BlipKind = "blip" if parts.prefix == "blip" else "blip2"
        location = parse_location(kind, parts.name)
        return CaptionerSpec(kind, location.value, local=location.local)

    def entries(self) -> list[CaptionerInfo]:
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
            raise UnknownModelError(spec.canonical, "not a BLIP or BLIP-2 spec", [e.name for e in self.entries()])
        return _load_blip(spec, options)


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
    cached = not spec.local and _hub_files_cached(location, options.cache_dir)

    def unavailable(cause: str) -> CaptionerUnavailableError:
        return CaptionerUnavailableError(spec, cache_locations(options.cache_dir), cause)

    with loading_from_hub(spec.canonical, local=spec.local, cached=cached, unavailable=unavailable):
        model, processor = _from_pretrained(kind, spec, options, dtype, local_only=spec.local or cached)
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
    return cached_file(repo_id, "config.json", cache_dir) is not None and cached_any(repo_id, _WEIGHT_FILES, cache_dir)


def caption_run_spec(spec: str, options: CaptionOptions) -> str:
    """``spec`` plus the generation options that change captions (those not at their defaults), URL-encoded.

    What a generative captioner records with its captions (:attr:`BlipCaptioner.run_spec`); a Ray pass plans
    with it before any actor has loaded the model.
    """
    from urllib.parse import urlencode

    defaults = CaptionOptions()
    changed = {
        name: getattr(options, name)
        for name in ("prompt", "max_new_tokens", "num_beams")
        if getattr(options, name) != getattr(defaults, name)
    }
    return f"{spec}?{urlencode(changed)}" if changed else spec


class BlipCaptioner(LoadedModel):
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
        super().__init__(spec, placement)
        self._kind = kind
        self._model = model
        self._processor = processor
        self._dtype = dtype
        self._options = options
        # Decoder-only language models (OPT) return the prompt in front of the new tokens; BLIP's text decoder
        # does too. Flan-T5 BLIP-2 models (encoder-decoder) return only the answer.
        text_config = getattr(model.config, "text_config", None)
        self._echoes_prompt = kind == "blip" or not bool(getattr(text_config, "is_encoder_decoder", False))

    @property
    def run_spec(self) -> str:
        """The spec plus the generation options that change captions, so a store re-captions when they change.

        E.g. ``blip:Salesforce/blip-image-captioning-base`` with defaults, or
        ``blip:Salesforce/blip-image-captioning-base?prompt=a+product+photo+of&max_new_tokens=20``.
        """
        return caption_run_spec(self._spec, self._options)

    @property
    def kind(self) -> BlipKind:
        """``"blip"`` or ``"blip2"``."""
        return self._kind

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

    def _write_checkpoint(self, directory: Path) -> None:
        """The model and its processor via ``save_pretrained``, which ``blip:DIRECTORY`` (or ``blip2:``) loads."""
        self._model.save_pretrained(directory)
        self._processor.save_pretrained(directory)


def _clean(text: str, prompt: str) -> str:
    """Collapse whitespace and drop a prompt that the model repeated (BLIP's tokenizer lower-cases it)."""
    text = " ".join(text.split())
    if prompt and text.lower().startswith(prompt.lower()):
        text = text[len(prompt) :].strip()
    return text

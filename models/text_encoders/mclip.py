"""Multilingual-CLIP text encoders: ``mclip:ORG/NAME`` (``M-CLIP/...`` on the hub) or ``mclip:/path/to/dir``.

An M-CLIP model is a transformer, attention-masked mean pooling and one linear layer. It is not a
sentence-transformers model and the ``multilingual-clip`` package pins old libraries, so it is loaded here from its
``config.json`` (``model_type: M-CLIP``, ``modelBase``, ``transformerDimensions``, ``numDims``), its weights and its
tokenizer; the base transformer's architecture comes from ``modelBase``'s config. A bare directory whose
``config.json`` says ``M-CLIP`` is one, too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catalens.models.base import LoadOptions, l2_normalise
from catalens.models.errors import ModelLoadError, ModelUnavailableError
from catalens.models.hub import cache_locations, cached_any, cached_file, first_line
from catalens.models.module import LoadedModel, read_weights
from catalens.models.text_encoders.backend import WEIGHT_FILES, TextEncoderBackend
from catalens.models.text_encoders.types import TextEncoderSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from catalens.models.device import Placement

CONFIG_NAME = "config.json"
MODEL_TYPE = "M-CLIP"
# Longer inputs cost time and add nothing for product queries; XLM-R's position table ends at 512 anyway.
_MAX_TOKENS = 512


class MClipBackend(TextEncoderBackend):
    """Registry backend for Multilingual-CLIP models."""

    name = "mclip"
    default_org = "M-CLIP"
    patterns = ("mclip:/path/to/dir",)

    def recognises(self, directory: Path) -> bool:
        try:
            config = json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))
            return bool(config.get("model_type") == MODEL_TYPE)
        except (OSError, ValueError, AttributeError):
            return False

    def hub_cached(self, spec: TextEncoderSpec, cache_dir: str | None) -> bool:
        """The weights, the config, and ``modelBase``'s config (a directory, or cached from the hub)."""
        if not cached_any(spec.location, WEIGHT_FILES, cache_dir):
            return False
        config = cached_file(spec.location, CONFIG_NAME, cache_dir)
        if config is None:
            return False
        try:
            base = str(json.loads(config.read_text(encoding="utf-8")).get("modelBase", ""))
        except (OSError, ValueError):
            return False
        return bool(base) and (Path(base).is_dir() or cached_file(base, "config.json", cache_dir) is not None)

    def build(
        self, spec: TextEncoderSpec, placement: Placement, options: LoadOptions, local_only: bool
    ) -> MClipTextEncoder:
        from transformers import AutoConfig, AutoTokenizer

        config = _read_config(spec, _model_file(spec, (CONFIG_NAME,), options, local_only))
        state = read_weights(_model_file(spec, WEIGHT_FILES, options, local_only))
        # Only modelBase's architecture is needed (M-CLIP's own loader downloads all of its weights, then
        # overwrites them with the checkpoint's).
        base_config = AutoConfig.from_pretrained(
            config["modelBase"], cache_dir=options.cache_dir, local_files_only=local_only
        )
        transformer = _transformer(spec, base_config, state)
        projection = _projection(spec, config, state)
        tokenizer = AutoTokenizer.from_pretrained(
            spec.location, cache_dir=options.cache_dir, local_files_only=local_only
        )
        return MClipTextEncoder(spec.canonical, transformer, projection, tokenizer, placement)


def _model_file(spec: TextEncoderSpec, names: Sequence[str], options: LoadOptions, local_only: bool) -> Path:
    """The first of ``names`` that the model has, from its directory or the hub (cache first)."""
    if spec.local:
        for name in names:
            if (Path(spec.location) / name).is_file():
                return Path(spec.location) / name
        raise ModelLoadError(spec.canonical, f"the directory has none of {', '.join(names)}")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError

    not_cached = []
    for name in names:
        try:
            return Path(hf_hub_download(spec.location, name, cache_dir=options.cache_dir, local_files_only=local_only))
        except RemoteEntryNotFoundError:  # the repository has no such file: try the next name
            continue
        except LocalEntryNotFoundError:  # neither cached nor downloadable
            not_cached.append(name)
    if not_cached:
        cause = f"{' or '.join(not_cached)} is neither cached nor downloadable"
        raise ModelUnavailableError(spec.canonical, cache_locations(options.cache_dir), cause)
    raise ModelLoadError(spec.canonical, f"the repository has none of {', '.join(names)}")


def _read_config(spec: TextEncoderSpec, path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("model_type") != MODEL_TYPE:
            raise ValueError(f"model_type is {raw.get('model_type')!r}, expected {MODEL_TYPE!r}")
        return {
            "modelBase": str(raw["modelBase"]),
            "transformerDimensions": int(raw["transformerDimensions"]),
            "numDims": int(raw["numDims"]),
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelLoadError(spec.canonical, f"bad {path.name}: {error}") from error


def _transformer(spec: TextEncoderSpec, base_config: Any, state: dict[str, torch.Tensor]) -> nn.Module:
    """Build modelBase's transformer straight from the checkpoint's ``transformer.*`` weights.

    ``from_pretrained`` with a state dict skips the random initialisation (about a minute for XLM-R large
    on a CPU) and applies transformers' own handling of older checkpoints' key names and buffers.
    """
    from transformers import MODEL_MAPPING

    inner = {k.removeprefix("transformer."): v for k, v in state.items() if k.startswith("transformer.")}
    if not inner:
        raise ModelLoadError(spec.canonical, "the weights have no transformer.* tensors")
    try:
        model_class: Any = MODEL_MAPPING[type(base_config)]  # typed for the tokenizer mappings too
    except KeyError as error:
        raise ModelLoadError(spec.canonical, f"transformers has no model for {base_config.model_type!r}") from error
    try:
        model, info = model_class.from_pretrained(None, config=base_config, state_dict=inner, output_loading_info=True)
    except (RuntimeError, ValueError) as error:  # shape mismatches
        raise ModelLoadError(spec.canonical, f"the weights do not fit modelBase: {first_line(error)}") from error
    # The pooler is unused (M-CLIP mean-pools the token embeddings).
    missing = sorted(k for k in info["missing_keys"] if not k.startswith("pooler."))
    unexpected = sorted(k for k in info["unexpected_keys"] if not k.endswith(("position_ids", "token_type_ids")))
    mismatched = sorted(str(k) for k in info.get("mismatched_keys", ()))
    if missing or unexpected or mismatched:
        raise ModelLoadError(
            spec.canonical,
            f"the weights do not fit modelBase (missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {mismatched[:3]})",
        )
    return model


def _projection(spec: TextEncoderSpec, config: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Linear:
    from torch import nn

    linear = {k.removeprefix("LinearTransformation."): v for k, v in state.items() if k.startswith("Linear")}
    if set(linear) != {"weight", "bias"}:
        raise ModelLoadError(spec.canonical, "the weights have no LinearTransformation.weight and .bias")
    projection = nn.Linear(config["transformerDimensions"], config["numDims"])
    try:
        projection.load_state_dict(linear)
    except RuntimeError as error:
        raise ModelLoadError(spec.canonical, f"the weights do not fit the config: {first_line(error)}") from error
    return projection


class MClipTextEncoder(LoadedModel):
    """A Multilingual-CLIP text model behind :class:`TextEncoder`.

    Its forward pass is M-CLIP's: the attention-masked mean of the transformer's token embeddings, then the
    linear layer (``LinearTransformation`` in the checkpoint); the result is L2-normalised here.
    """

    def __init__(
        self, spec: str, transformer: nn.Module, projection: nn.Linear, tokenizer: Any, placement: Placement
    ) -> None:
        super().__init__(spec, placement)
        self._transformer = transformer.eval().to(placement.device)
        self._projection = projection.eval().to(placement.device)
        if placement.half:
            self._transformer, self._projection = self._transformer.half(), self._projection.half()
        self._tokenizer = tokenizer
        self._dim = int(projection.out_features)
        self._max_length = min(int(getattr(tokenizer, "model_max_length", _MAX_TOKENS)), _MAX_TOKENS)

    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        size = batch_size or max(self.default_batch_size, 64)
        chunks = []
        for start in range(0, len(texts), size):
            batch = self._tokenizer(
                list(texts[start : start + size]),
                padding=True,
                truncation=True,
                max_length=self._max_length,
                return_tensors="pt",
            )
            ids = batch["input_ids"].to(self._placement.device)
            mask = batch["attention_mask"].to(self._placement.device)
            with self._inference():
                tokens = self._transformer(input_ids=ids, attention_mask=mask)[0]
                weights = mask.unsqueeze(2).to(tokens.dtype)
                pooled = (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
                chunks.append(self._projection(pooled).float().cpu().numpy())
        return l2_normalise(np.concatenate(chunks)) if chunks else np.zeros((0, self._dim), dtype=np.float32)

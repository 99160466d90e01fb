"""Text encoders paired with a store's image tower: queries in other languages against the same index.

A store holds the image vectors of one image–text model. Some text models were distilled into the text
embedding space of such a model (multilingual knowledge distillation: the student learns to map an English
sentence *and its translations* onto the teacher's embedding of the English sentence), so their query
vectors can search that model's image vectors directly. :func:`pair_text_encoder` puts one of them in front
of a loaded image–text model: images still go to the image tower, texts go to the paired text model, and the
result is served under the image model's spec, because the store's vectors are the image tower's.

Spec grammar (see :func:`parse_text_encoder_spec`):

* ``st:ORG/NAME`` – a sentence-transformers model on the Hugging Face hub; ``st:NAME`` means
  ``st:sentence-transformers/NAME``.
* ``st:/path/to/dir`` – a saved sentence-transformers model (``SentenceTransformer.save``).
* ``mclip:ORG/NAME`` or ``mclip:/path/to/dir`` – a Multilingual-CLIP text encoder (``M-CLIP/...`` on the
  hub): a transformer, attention-masked mean pooling and one linear layer. It is not a sentence-transformers
  model and the ``multilingual-clip`` package pins old libraries, so it is loaded here from its
  ``config.json`` (``model_type: M-CLIP``, ``modelBase``, ``transformerDimensions``, ``numDims``), its
  weights and its tokenizer; the base transformer's architecture comes from ``modelBase``'s config.
* short names: ``clip-ViT-B-32-multilingual-v1``, and every registered hub id without its prefix
  (e.g. ``M-CLIP/XLM-Roberta-Large-Vit-B-32``).
* a bare local directory: ``modules.json`` makes it ``st:``, an M-CLIP ``config.json`` makes it ``mclip:``.

Pairing rules (see :func:`list_pairings`): a registered text model pairs only with the image model it was
aligned to (or the same weights under another open_clip name); any other pairing needs
``allow_unpaired=True`` (the user vouches for a local or custom model). The dimensions must always match.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from catalens.models.base import ImageTextEncoder, LoadOptions
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

if TYPE_CHECKING:  # torch is imported when a model is loaded, so parsing specs and pairing rules stay light
    import torch
    from torch import nn

    from catalens.models.device import Placement

TextKind = Literal["st", "mclip"]
_KINDS: tuple[TextKind, ...] = ("st", "mclip")
# The organisation a prefixed short name (``st:NAME``, ``mclip:NAME``) refers to.
_DEFAULT_ORG: dict[TextKind, str] = {"st": "sentence-transformers", "mclip": "M-CLIP"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_ST_MARKER = "modules.json"
_MCLIP_CONFIG = "config.json"
_MCLIP_MODEL_TYPE = "M-CLIP"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Longer inputs cost time and add nothing for product queries; XLM-R's position table ends at 512 anyway.
_MAX_TOKENS = 512
_PROBE_TIMEOUT_S = 3.0


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


# The pairs below are the published ones; each model card names the image model it was distilled against.
# M-CLIP's ViT-B-16Plus card loads open_clip's ViT-B-16-plus-240 with the laion400m_e32 weights.
_PAIRINGS: tuple[Pairing, ...] = (
    Pairing(
        text="st:sentence-transformers/clip-ViT-B-32-multilingual-v1",
        image="ViT-B-32:openai",
        languages="50+ languages",
        note="multilingual DistilBERT distilled into OpenAI CLIP ViT-B/32's text space (sentence-transformers)",
        same_weights=("ViT-B-32-quickgelu:openai",),
    ),
    Pairing(
        text="mclip:M-CLIP/XLM-Roberta-Large-Vit-B-32",
        image="ViT-B-32:openai",
        languages="100 languages (XLM-R)",
        note="Multilingual-CLIP: XLM-RoBERTa-large + linear layer distilled into OpenAI CLIP ViT-B/32's text space",
        same_weights=("ViT-B-32-quickgelu:openai",),
    ),
    Pairing(
        text="mclip:M-CLIP/XLM-Roberta-Large-Vit-L-14",
        image="ViT-L-14:openai",
        languages="100 languages (XLM-R)",
        note="Multilingual-CLIP: XLM-RoBERTa-large + linear layer distilled into OpenAI CLIP ViT-L/14's text space",
        same_weights=("ViT-L-14-quickgelu:openai",),
    ),
    Pairing(
        text="mclip:M-CLIP/XLM-Roberta-Large-Vit-B-16Plus",
        image="ViT-B-16-plus-240:laion400m_e32",
        languages="100 languages (XLM-R)",
        note="Multilingual-CLIP: XLM-RoBERTa-large + linear layer distilled into open_clip ViT-B-16+ (LAION-400M)",
    ),
    Pairing(
        text="mclip:M-CLIP/LABSE-Vit-L-14",
        image="ViT-L-14:openai",
        languages="109 languages (LaBSE)",
        note="Multilingual-CLIP: LaBSE + linear layer distilled into OpenAI CLIP ViT-L/14's text space",
        same_weights=("ViT-L-14-quickgelu:openai",),
    ),
)
_SHORT_NAMES: dict[str, str] = {
    "clip-ViT-B-32-multilingual-v1": "st:sentence-transformers/clip-ViT-B-32-multilingual-v1",
}


@dataclass(frozen=True)
class _TextSpec:
    kind: TextKind
    local: bool
    location: str  # a hub id, or an absolute directory when ``local``

    @property
    def canonical(self) -> str:
        return f"{self.kind}:{self.location}"


def list_pairings() -> list[Pairing]:
    """The registered text model → image–text model pairs.

    Returns:
        One :class:`Pairing` per registered text model, in a stable order.
    """
    return list(_PAIRINGS)


def pairing_for(text_spec: str) -> Pairing | None:
    """The registered pairing of a text model, or ``None`` when it has none (a local or custom model).

    Raises:
        UnknownModelError: ``text_spec`` is not a text encoder spec.
    """
    canonical = parse_text_encoder_spec(text_spec)
    return next((p for p in _PAIRINGS if p.text == canonical), None)


def parse_text_encoder_spec(text: str) -> str:
    """Parse a text encoder spec into its canonical form (see the module docstring for the grammar).

    Args:
        text: e.g. ``clip-ViT-B-32-multilingual-v1``, ``st:ORG/NAME``, ``st:/path/to/dir``, ``mclip:ORG/NAME``.

    Returns:
        The canonical spec: ``st:ORG/NAME``, ``st:/absolute/dir``, ``mclip:ORG/NAME`` or ``mclip:/absolute/dir``.

    Raises:
        UnknownModelError: the text names no text encoder (a ``ValueError`` listing valid choices).
    """
    return _parse(text).canonical


def _choices() -> list[str]:
    return [*_SHORT_NAMES, *(p.text for p in _PAIRINGS), "st:ORG/NAME", "st:/path/to/dir", "mclip:/path/to/dir"]


def _parse(text: str) -> _TextSpec:
    raw = text
    text = text.strip()
    if not text:
        raise UnknownModelError(raw, "the text encoder spec is empty", _choices())
    if text in _SHORT_NAMES:
        return _parse(_SHORT_NAMES[text])
    registered = {p.text.partition(":")[2]: p.text for p in _PAIRINGS}
    if text in registered:
        return _parse(registered[text])
    prefix, sep, rest = text.partition(":")
    if sep and prefix in _KINDS:
        kind: TextKind = "st" if prefix == "st" else "mclip"
        return _parse_location(raw, kind, rest.strip())
    expanded = Path(text).expanduser()
    if expanded.is_dir():
        return _parse_bare_directory(raw, expanded.resolve())
    names = [*_SHORT_NAMES, *registered]
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise UnknownModelError(raw, f"{hint}a text encoder spec is st:..., mclip:..., or a short name", _choices())


def _parse_location(raw: str, kind: TextKind, rest: str) -> _TextSpec:
    if not rest:
        raise UnknownModelError(raw, f"{kind}: needs a hub id or a directory, e.g. {kind}:ORG/NAME", _choices())
    path = Path(rest).expanduser()
    if rest.startswith(("/", "./", "../", "~")) or path.exists():
        if not path.is_dir():
            raise UnknownModelError(raw, f"no such directory: {str(path.resolve())!r}")
        return _TextSpec(kind, True, str(path.resolve()))
    if not _HUB_ID.match(rest):
        raise UnknownModelError(raw, f"{rest!r} is neither an existing directory nor a hub id (ORG/NAME)")
    if "/" not in rest:
        rest = f"{_DEFAULT_ORG[kind]}/{rest}"
    return _TextSpec(kind, False, rest)


def _parse_bare_directory(raw: str, path: Path) -> _TextSpec:
    if (path / _ST_MARKER).is_file():
        return _TextSpec("st", True, str(path))
    if _is_mclip_config(path / _MCLIP_CONFIG):
        return _TextSpec("mclip", True, str(path))
    raise UnknownModelError(
        raw, f"directory {str(path)!r} is neither a sentence-transformers model ({_ST_MARKER}) nor an M-CLIP model"
    )


def _is_mclip_config(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text(encoding="utf-8")).get("model_type") == _MCLIP_MODEL_TYPE)
    except (OSError, ValueError, AttributeError):
        return False


# -- loading -------------------------------------------------------------------------------------------------


def load_text_encoder(spec: str, options: LoadOptions | None = None) -> TextEncoder:
    """Load a text encoder by spec.

    Hub models load from the local Hugging Face cache when they are there (no network at all); otherwise the
    hub host is probed once and an unreachable host, or ``HF_HUB_OFFLINE``, fails at once.

    Args:
        spec: a text encoder spec (see :func:`parse_text_encoder_spec`).
        options: device, precision and cache directory (``seed`` is not used).

    Returns:
        The loaded encoder.

    Raises:
        UnknownModelError: the spec names no text encoder.
        ModelUnavailableError: a hub model is not cached and cannot be downloaded.
        ModelLoadError: a local directory (or a cached snapshot) is broken.
        DeviceUnavailableError: the requested device does not exist.
    """
    from catalens.models.device import plan_placement

    parsed = _parse(spec)
    options = options or LoadOptions()
    placement = plan_placement(options.device, options.precision)
    # Local directories and cached hub models load without the network; anything else must be downloadable.
    local_only = parsed.local or _hub_weights_cached(parsed, options)
    if not local_only:
        _check_hub_reachable(parsed, options)
    try:
        with hub_offline() if local_only and not parsed.local else nullcontext():
            if parsed.kind == "st":
                return _load_sentence_transformer(parsed, placement, options, local_only)
            return _load_mclip(parsed, placement, options, local_only)
    except ModelError:
        raise
    except Exception as error:
        # The open_clip backend's classification of hub failures, shared (it belongs in models/hub.py).
        if not parsed.local and is_download_failure(error):
            root = root_cause(error)
            cause = f"{'the cached copy is incomplete' if local_only else 'download failed'}: {root[:200]}"
            raise ModelUnavailableError(parsed.canonical, cache_locations(options.cache_dir), cause) from error
        raise ModelLoadError(parsed.canonical, f"{type(error).__name__}: {first_line(error)}") from error


def _check_hub_reachable(spec: _TextSpec, options: LoadOptions) -> None:
    """For a model that is not cached: fail at once, without huggingface_hub's retries, unless it can download.

    Raises:
        ModelUnavailableError: ``HF_HUB_OFFLINE`` is set, or the hub host does not answer.
    """
    from huggingface_hub import constants

    if offline_requested():
        cause = "HF_HUB_OFFLINE=1 is set, so no download was attempted"
        raise ModelUnavailableError(spec.canonical, cache_locations(options.cache_dir), cause)
    if not reachable(constants.ENDPOINT, timeout=_PROBE_TIMEOUT_S):
        host = urlparse(constants.ENDPOINT).hostname
        cause = f"{host} cannot be reached from this machine"
        raise ModelUnavailableError(spec.canonical, cache_locations(options.cache_dir), cause)


def _cached_file(repo_id: str, filename: str, cache_dir: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    return Path(found) if isinstance(found, str) else None


def _hub_weights_cached(spec: _TextSpec, options: LoadOptions) -> bool:
    """Whether the files a hub model needs are in the local cache, so it can load without the network."""
    cache = options.cache_dir
    if not any(_cached_file(spec.location, name, cache) for name in _WEIGHT_FILES):
        return False
    if spec.kind == "st":
        return _cached_file(spec.location, _ST_MARKER, cache) is not None
    config = _cached_file(spec.location, _MCLIP_CONFIG, cache)
    if config is None:
        return False
    try:
        base = str(json.loads(config.read_text(encoding="utf-8")).get("modelBase", ""))
    except (OSError, ValueError):
        return False
    return bool(base) and (Path(base).is_dir() or _cached_file(base, "config.json", cache) is not None)


def _load_sentence_transformer(
    spec: _TextSpec, placement: Placement, options: LoadOptions, local_only: bool
) -> SentenceTransformerTextEncoder:
    from sentence_transformers import SentenceTransformer

    with quiet_loading():
        model = SentenceTransformer(
            spec.location, device=placement.device, cache_folder=options.cache_dir, local_files_only=local_only
        )
    return SentenceTransformerTextEncoder(spec.canonical, model, placement)


def _load_mclip(spec: _TextSpec, placement: Placement, options: LoadOptions, local_only: bool) -> MClipTextEncoder:
    from transformers import AutoConfig, AutoTokenizer

    config = _read_mclip_config(spec, _mclip_file(spec, (_MCLIP_CONFIG,), options, local_only))
    state = _read_state_dict(_mclip_file(spec, _WEIGHT_FILES, options, local_only))
    # Only modelBase's architecture is needed (M-CLIP's own loader downloads all of its weights, then
    # overwrites them with the checkpoint's).
    base_config = AutoConfig.from_pretrained(
        config["modelBase"], cache_dir=options.cache_dir, local_files_only=local_only
    )
    transformer = _mclip_transformer(spec, base_config, state)
    projection = _mclip_projection(spec, config, state)
    tokenizer = AutoTokenizer.from_pretrained(spec.location, cache_dir=options.cache_dir, local_files_only=local_only)
    return MClipTextEncoder(spec.canonical, transformer, projection, tokenizer, placement)


def _mclip_file(spec: _TextSpec, names: Sequence[str], options: LoadOptions, local_only: bool) -> Path:
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


def _read_mclip_config(spec: _TextSpec, path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("model_type") != _MCLIP_MODEL_TYPE:
            raise ValueError(f"model_type is {raw.get('model_type')!r}, expected {_MCLIP_MODEL_TYPE!r}")
        return {
            "modelBase": str(raw["modelBase"]),
            "transformerDimensions": int(raw["transformerDimensions"]),
            "numDims": int(raw["numDims"]),
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelLoadError(spec.canonical, f"bad {path.name}: {error}") from error


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # weights_only refuses arbitrary pickled code; the M-CLIP checkpoints are plain tensor dicts.
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path.name} holds a {type(state).__name__}, not a state dict")
    return state


def _mclip_transformer(spec: _TextSpec, base_config: Any, state: dict[str, torch.Tensor]) -> nn.Module:
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


def _mclip_projection(spec: _TextSpec, config: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Linear:
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


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


@contextmanager
def _autocast(placement: Placement) -> Iterator[None]:
    import torch

    with torch.inference_mode():
        if placement.autocast_fp16:
            with torch.autocast(device_type="cuda", dtype=torch.float16):
                yield
        else:
            yield


# -- encoders ------------------------------------------------------------------------------------------------


class SentenceTransformerTextEncoder:
    """A sentence-transformers model behind :class:`TextEncoder`."""

    def __init__(self, spec: str, model: Any, placement: Placement) -> None:
        self._spec = spec
        self._model = model.eval()
        if placement.half:
            self._model = self._model.half()
        self._placement = placement
        dim = model.get_embedding_dimension()
        self._dim = int(dim) if dim else int(self.encode_texts([""]).shape[1])

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def device(self) -> str:
        return self._placement.device

    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        with _autocast(self._placement):
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size or max(self._placement.batch_size, 64),
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return _normalised(vectors)


class MClipTextEncoder:
    """A Multilingual-CLIP text model behind :class:`TextEncoder`.

    Its forward pass is M-CLIP's: the attention-masked mean of the transformer's token embeddings, then the
    linear layer (``LinearTransformation`` in the checkpoint); the result is L2-normalised here.
    """

    def __init__(
        self, spec: str, transformer: nn.Module, projection: nn.Linear, tokenizer: Any, placement: Placement
    ) -> None:
        self._spec = spec
        self._transformer = transformer.eval().to(placement.device)
        self._projection = projection.eval().to(placement.device)
        if placement.half:
            self._transformer, self._projection = self._transformer.half(), self._projection.half()
        self._tokenizer = tokenizer
        self._placement = placement
        self._dim = int(projection.out_features)
        self._max_length = min(int(getattr(tokenizer, "model_max_length", _MAX_TOKENS)), _MAX_TOKENS)

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def device(self) -> str:
        return self._placement.device

    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        size = batch_size or max(self._placement.batch_size, 64)
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
            with _autocast(self._placement):
                tokens = self._transformer(input_ids=ids, attention_mask=mask)[0]
                weights = mask.unsqueeze(2).to(tokens.dtype)
                pooled = (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
                chunks.append(self._projection(pooled).float().cpu().numpy())
        return _normalised(np.concatenate(chunks)) if chunks else np.zeros((0, self._dim), dtype=np.float32)


# -- pairing -------------------------------------------------------------------------------------------------


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
    pairing = next((p for p in _PAIRINGS if p.text == canonical), None)
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
    known = "; ".join(f"{p.text} goes with {p.image}" for p in _PAIRINGS)
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


__all__ = [
    "MClipTextEncoder",
    "PairedEncoder",
    "Pairing",
    "PairingError",
    "SentenceTransformerTextEncoder",
    "TextEncoder",
    "check_pairing",
    "list_pairings",
    "load_text_encoder",
    "pair_encoders",
    "pair_text_encoder",
    "pairing_for",
    "parse_text_encoder_spec",
]

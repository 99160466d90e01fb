"""The small base every loaded model derives from, as sentence-transformers' modules share theirs.

A loaded image–text model, text encoder or captioner is named by its canonical spec, runs on one device with a
:class:`~catalens.models.device.Placement`, embeds into ``dim`` dimensions (encoders), and may be saved as a
checkpoint directory that a spec naming the directory loads again through its registry. :class:`LoadedModel` holds
those properties once; backends add what is theirs. Nothing here imports torch at module import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from catalens.models.device import Placement


class LoadedModel:
    """A model loaded by spec: its canonical spec, its placement, its dimension and how it is saved.

    Subclasses call ``super().__init__(spec, placement)`` and set ``self._dim`` once the dimension is known
    (captioners have none). Backends that load weights from local files pass their ``weights_digest`` (see
    :mod:`models.fingerprint`).
    """

    def __init__(self, spec: str, placement: Placement, weights_digest: str | None = None) -> None:
        self._spec = spec
        self._placement = placement
        self._dim = 0
        self._weights_digest = weights_digest

    @property
    def spec(self) -> str:
        """The canonical spec of the loaded model."""
        return self._spec

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        return self._dim

    @property
    def weights_digest(self) -> str | None:
        """A digest of the weight files this model was loaded from; ``None`` when the spec alone names them."""
        return self._weights_digest

    @property
    def device(self) -> str:
        """The torch device the model runs on, e.g. ``"cpu"`` or ``"cuda:0"``."""
        return self._placement.device

    @property
    def default_batch_size(self) -> int:
        """A batch size that keeps this device busy without exhausting its memory."""
        return self._placement.batch_size

    @contextmanager
    def _inference(self) -> Iterator[None]:
        """No gradients, and fp16 autocast where the placement asks for it (CUDA, precision ``auto``)."""
        import torch

        with torch.inference_mode():
            if self._placement.autocast_fp16:
                with torch.autocast(device_type="cuda", dtype=torch.float16):
                    yield
            else:
                yield

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model as a checkpoint directory that a spec naming the directory loads again.

        Returns:
            The directory, resolved.

        Raises:
            NotImplementedError: this kind of model has no checkpoint format.
        """
        out = checkpoint_directory(directory)
        self._write_checkpoint(out)
        return out

    def _write_checkpoint(self, directory: Path) -> None:
        raise NotImplementedError(f"{type(self).__name__} ({self._spec}) has no checkpoint format")


def checkpoint_directory(directory: str | os.PathLike[str]) -> Path:
    """``directory`` resolved and created (with its parents), ready for a checkpoint."""
    out = Path(directory).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_weights(
    state: Mapping[str, Any], path: Path, *, dtype: Any = None, metadata: dict[str, str] | None = None
) -> None:
    """Write a state dict as safetensors: detached, on the CPU, contiguous, cast to ``dtype`` when given."""
    import torch
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().to(dtype or torch.float32).contiguous() for k, v in state.items()}
    save_file(tensors, str(path), metadata=metadata)


def read_weights(path: Path) -> dict[str, Any]:
    """Read a state dict from safetensors or, refusing arbitrary pickled code, from a PyTorch ``.bin`` file.

    Raises:
        ValueError: a ``.bin`` file holds something other than a state dict.
        Exception: whatever safetensors or torch raise for an unreadable file (callers map it to their error).
    """
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path.name} holds a {type(state).__name__}, not a state dict")
    return state

"""sentence-transformers text encoders: ``st:ORG/NAME`` on the hub, ``st:/path/to/dir`` saved locally.

``st:NAME`` means ``st:sentence-transformers/NAME``; a bare directory holding ``modules.json`` is one, too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catalens.models.base import LoadOptions, l2_normalise
from catalens.models.hub import cached_any, cached_file
from catalens.models.module import LoadedModel
from catalens.models.text_encoders.backend import WEIGHT_FILES, TextEncoderBackend
from catalens.models.text_encoders.types import TextEncoderSpec

if TYPE_CHECKING:
    from catalens.models.device import Placement

#: The file that makes a directory a sentence-transformers model.
MARKER = "modules.json"


class SentenceTransformersBackend(TextEncoderBackend):
    """Registry backend for sentence-transformers models."""

    name = "st"
    default_org = "sentence-transformers"
    patterns = ("st:ORG/NAME", "st:/path/to/dir")

    def recognises(self, directory: Path) -> bool:
        return (directory / MARKER).is_file()

    def hub_cached(self, spec: TextEncoderSpec, cache_dir: str | None) -> bool:
        return cached_any(spec.location, WEIGHT_FILES, cache_dir) and (
            cached_file(spec.location, MARKER, cache_dir) is not None
        )

    def build(
        self, spec: TextEncoderSpec, placement: Placement, options: LoadOptions, local_only: bool
    ) -> SentenceTransformerTextEncoder:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            spec.location, device=placement.device, cache_folder=options.cache_dir, local_files_only=local_only
        )
        return SentenceTransformerTextEncoder(spec.canonical, model, placement)


class SentenceTransformerTextEncoder(LoadedModel):
    """A sentence-transformers model behind :class:`TextEncoder`."""

    def __init__(self, spec: str, model: Any, placement: Placement) -> None:
        super().__init__(spec, placement)
        self._model = model.eval()
        if placement.half:
            self._model = self._model.half()
        dim = model.get_embedding_dimension()
        self._dim = int(dim) if dim else int(self.encode_texts([""]).shape[1])

    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._inference():
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size or max(self.default_batch_size, 64),
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return l2_normalise(vectors)

    def _write_checkpoint(self, directory: Path) -> None:
        """sentence-transformers' own layout, which ``st:DIRECTORY`` (or the bare directory) loads again."""
        self._model.save(str(directory))

"""Label vectors of a taxonomy: one prompt-ensemble unit vector per value, kept on disk per model.

A value's vector is the mean of its prompts' text embeddings (every template x every prompt text or synonym),
renormalised, as CLIP's zero-shot recipe does. The prompts of a catalog taxonomy are the same from run to run
(and between ``tag run``, ``tag calibrate`` and ``tag audit``), so their embeddings are cached in the store's
``cache/`` folder, one file per model: a later run encodes only the prompts it has not seen.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from catalens.indexer.tagging.taxonomy import Taxonomy, TaxonomyAttribute

#: Version of the cache file's layout; a file of another version is ignored and rewritten.
CACHE_SCHEMA_VERSION = 1

TextEncoder = Callable[[Sequence[str]], np.ndarray]


class PromptVectorCache:
    """Text embeddings of prompts for one model, loaded from and saved to one ``.npz`` file.

    The file holds the prompts, their vectors and the schema version; a missing, unreadable or differently
    shaped file is an empty cache (it only saves time, never changes a result).
    """

    def __init__(self, path: Path | None, model: str, dim: int) -> None:
        """
        Args:
            path: the cache file, or ``None`` for a cache that lives only as long as this object.
            model: the model spec the vectors come from (recorded in the file and checked on load).
            dim: the embedding dimension.
        """
        self.path = path
        self.model = model
        self.dim = dim
        self._vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        if path is not None and path.exists():
            self._load(path)

    @classmethod
    def for_store(cls, store_dir: Path, model: str, dim: int) -> PromptVectorCache:
        """The cache of ``model`` inside a store directory (``cache/prompts-<model hash>.npz``)."""
        digest = hashlib.sha256(model.encode()).hexdigest()[:16]
        return cls(store_dir / "cache" / f"prompts-{digest}.npz", model, dim)

    def _load(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["schema_version"]) != CACHE_SCHEMA_VERSION or str(data["model"]) != self.model:
                    return
                texts, vectors = [str(t) for t in data["texts"]], np.asarray(data["vectors"], dtype=np.float32)
        except (OSError, ValueError, KeyError):
            return
        if vectors.ndim == 2 and vectors.shape == (len(texts), self.dim):
            self._vectors = dict(zip(texts, vectors, strict=True))

    def vectors(self, texts: Sequence[str], encode: TextEncoder) -> np.ndarray:
        """The unit vectors of ``texts`` in order, encoding (with ``encode``) only those not cached."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            encoded = np.asarray(encode(missing), dtype=np.float32)
            self._vectors.update(zip(missing, encoded, strict=True))
            self._dirty = True
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts])

    def save(self) -> None:
        """Write the cache file atomically if anything was added (a failure to write is not an error)."""
        if self.path is None or not self._dirty:
            return
        texts = list(self._vectors)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz.tmp")
            with os.fdopen(fd, "wb") as out:
                np.savez(
                    out,
                    schema_version=np.array(CACHE_SCHEMA_VERSION),
                    model=np.array(self.model),
                    texts=np.array(texts),
                    vectors=np.stack([self._vectors[t] for t in texts]),
                )
            os.replace(temp, self.path)
            self._dirty = False
        except OSError:
            return


def attribute_label_vectors(attribute: TaxonomyAttribute, cache: PromptVectorCache, encode: TextEncoder) -> np.ndarray:
    """``(values, dim)`` unit vectors: per value the renormalised mean of its prompts' embeddings."""
    rows = []
    for value in attribute.value_names():
        prompts = attribute.prompts(value)
        mean = cache.vectors(prompts, encode).mean(axis=0)
        rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return np.stack(rows).astype(np.float32)


def taxonomy_label_vectors(taxonomy: Taxonomy, cache: PromptVectorCache, encode: TextEncoder) -> dict[str, np.ndarray]:
    """Label vectors of every attribute of ``taxonomy``, by attribute name; saves the cache afterwards.

    Every prompt not yet cached is encoded in one call, so the text model sees full batches.
    """
    every = [p for attribute in taxonomy.attributes for v in attribute.value_names() for p in attribute.prompts(v)]
    cache.vectors(every, encode)
    cache.save()
    return {a.name: attribute_label_vectors(a, cache, encode) for a in taxonomy.attributes}

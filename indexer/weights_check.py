"""Do a store's vectors come from the weights its model spec loads now?

A store names its model by spec, and a spec can come to name other weights: ``catalens-mini`` after an upgrade
of catalens, a checkpoint directory trained again in place. Embedding new items with the new weights beside the
old vectors would mix two embedding spaces without a word, so before an indexing run adds anything the
weights digest the store records (:attr:`~catalens.indexer.store.manifest.StoreManifest.model_digest`) is
compared with the loaded model's (:attr:`~catalens.models.base.ImageTextEncoder.weights_digest`).

A store written before digests were records none. Rather than trusting it, a few of its images whose bytes
are unchanged are embedded again and compared with their stored vectors: the same weights give the same vector
(up to the store's float rounding), other weights a visibly different one. Only local files are read for this,
so the check never waits on the network; with nothing readable the digest is recorded on trust, and said so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from catalens.indexer.errors import StoreWeightsMismatchError
from catalens.indexer.fetch import Fetcher, FetchOptions
from catalens.indexer.prepare import Decoded, read_item
from catalens.indexer.store import CatalogStore
from catalens.indexer.store.manifest import StoreManifest
from catalens.models.base import ImageTextEncoder

#: Stored vectors re-embedded to check a store that records no digest.
SAMPLE_SIZE = 4

#: The lowest cosine between a stored vector and its image embedded again that counts as the same weights.
#: Vectors are stored as float32, so the same weights agree to float error (batching moves the last bits);
#: weights trained again agree far less (catalens-mini's first and second releases on the demo catalog's 170
#: images: 0.59 to 0.83, median 0.74; the same weights with the batch reversed: 1.000000 at the least).
SAME_WEIGHTS_COSINE = 0.99


@dataclass(frozen=True)
class WeightsCheck:
    """What :func:`check_store_weights` found.

    Attributes:
        outcome: ``"same"`` (the recorded digest matches), ``"none"`` (the model has no digest to compare),
            ``"verified"`` (no digest was recorded; a sample agreed, and the digest is now recorded),
            ``"trusted"`` (no digest was recorded and no sample could be read; the digest is now recorded) or
            ``"empty"`` (the store had no vectors; the digest is now recorded).
        sampled: how many stored vectors were compared (``"verified"`` only).
        agreement: the lowest cosine among them.
    """

    outcome: str
    sampled: int = 0
    agreement: float | None = None

    @property
    def note(self) -> str | None:
        """A line for the person running the job where a digest was recorded for an older store."""
        if self.outcome == "verified":
            return (
                f"this store predates weights digests: {self.sampled} of its images embedded again matched their "
                f"stored vectors (cosine >= {self.agreement:.4f}), so its weights digest is now recorded"
            )
        if self.outcome == "trusted":
            return (
                "this store predates weights digests and none of its first images could be read again to check "
                "its vectors; its weights digest is now recorded on trust (use --rebuild if the model's weights "
                "changed since it was built)"
            )
        return None


def require_same_weights(manifest: StoreManifest, path: str, encoder: ImageTextEncoder) -> None:
    """For readers of a store's vectors (search, tagging, captions): refuse weights other than the recorded ones.

    Only digests are compared (a reader does not write, so a store that records none is read as it is).

    Raises:
        StoreWeightsMismatchError: both digests are known and differ.
    """
    recorded, loaded = manifest.model_digest, encoder.weights_digest
    if recorded and loaded and recorded != loaded:
        raise StoreWeightsMismatchError(path, manifest.model, recorded, loaded)


def check_store_weights(store: CatalogStore, encoder: ImageTextEncoder, fetch: FetchOptions) -> WeightsCheck:
    """Refuse to add to ``store`` with weights other than its vectors' (same spec), and record a missing digest.

    The caller has already made sure the spec is the store's and is not rebuilding the store.

    Raises:
        StoreWeightsMismatchError: the recorded digest differs from the loaded one, or (no digest recorded)
            re-embedded images disagree with their stored vectors.
    """
    loaded = encoder.weights_digest
    recorded = store.manifest.model_digest
    if loaded is None:
        return WeightsCheck("none")
    if recorded == loaded:
        return WeightsCheck("same")
    path, spec = str(store.path), store.manifest.model
    if recorded is not None:
        raise StoreWeightsMismatchError(path, spec, recorded, loaded)
    if store.vector_count() == 0:
        store.record_model_digest(loaded)
        return WeightsCheck("empty")
    agreement, sampled = sample_agreement(store, encoder, fetch)
    if agreement is not None and agreement < SAME_WEIGHTS_COSINE:
        raise StoreWeightsMismatchError(path, spec, None, loaded, agreement)
    store.record_model_digest(loaded)
    return WeightsCheck("verified" if sampled else "trusted", sampled, agreement)


def sample_agreement(
    store: CatalogStore, encoder: ImageTextEncoder, fetch: FetchOptions, sample_size: int = SAMPLE_SIZE
) -> tuple[float | None, int]:
    """Re-embed up to ``sample_size`` stored items whose local image is unchanged; the lowest cosine and count.

    Items are taken in key order from the first stored vectors; URLs, missing files and files whose bytes no
    longer hash to the stored content hash are passed over (their vectors would differ for another reason).
    Returns ``(None, 0)`` when none could be compared.
    """
    first = next(store.iter_vectors(chunk_size=max(64, sample_size * 8)), None)
    if first is None:
        return None, 0
    keys, vectors = first  # one chunk is enough: a store whose first items are all remote or changed is trusted
    items = store.get_items(int(k) for k in keys)
    cosines: list[float] = []
    with Fetcher(fetch) as fetcher:
        for key, stored in zip(keys, vectors, strict=True):
            item = items.get(int(key))
            if item is None or item.source.startswith(("http://", "https://")) or not item.content_hash:
                continue
            result = read_item(fetcher, item.source, None, draft_size=encoder.decode_size, max_pixels=None)
            if not isinstance(result, Decoded) or result.content_hash != item.content_hash:
                continue
            again = encoder.encode_pixels(encoder.preprocess(result.image)[None])[0]
            cosines.append(float(np.dot(again, stored)))
            if len(cosines) == sample_size:
                break
    return (min(cosines), len(cosines)) if cosines else (None, 0)

"""The fine-tuning job (`catalens finetune`): contrastive fine-tuning of a store's model on its own image–text pairs.

A catalog job like indexing, so it lives in the indexer: it selects the store's items, builds their texts,
decodes their images, trains with the model layer's loop (:mod:`catalens.models.training`), evaluates, and
saves a checkpoint. It is no part of answering queries and imports nothing from ``catalens.search``.

Texts come from the items' fields through a template (``"{title}. {description}"`` by default; any of
``id``, ``product_id``, ``title``, ``description``, ``category``, ``price`` and attribute names). The
items are split into training and held-out sets by product (so images of one product never sit on both
sides), the held-out text→image recall is measured before training and after every epoch, training stops
early when it no longer improves, and the best weights are written as a checkpoint directory that the
spec ``DIR`` loads. Re-embedding a store with it is one command:
``catalens index SOURCE --store DIR --model CHECKPOINT --rebuild``.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from catalens.indexer.errors import ItemError
from catalens.indexer.fetch import Fetcher
from catalens.indexer.images import decode_image
from catalens.indexer.records import catalog_values
from catalens.indexer.store import CatalogStore, ItemFilter, StoredItem
from catalens.models import LoadOptions, ModelError, default_registry
from catalens.models.openclip import OpenClipEncoder, save_checkpoint
from catalens.models.training import EpochLog, FinetuneConfig, FinetuneError, finetune, retrieval_metrics

__all__ = [
    "DEFAULT_TEXT_TEMPLATE",
    "REPORT_NAME",
    "FinetuneError",
    "FinetuneJob",
    "FinetuneReport",
    "item_text",
    "run_finetune",
]

DEFAULT_TEXT_TEMPLATE = "{title}. {description}"
REPORT_NAME = "finetune.json"


@dataclass(frozen=True)
class FinetuneJob:
    """A fine-tuning run.

    Attributes:
        store: the store whose items and model are used.
        out: the checkpoint directory to write.
        model: the model to start from (default: the store's).
        text_template: how an item's text is built from its fields.
        heldout_fraction: the share of products held out for evaluation.
        device: where to train.
        training: the optimisation recipe.
    """

    store: str | os.PathLike[str]
    out: str | os.PathLike[str]
    model: str | None = None
    text_template: str = DEFAULT_TEXT_TEMPLATE
    heldout_fraction: float = 0.2
    device: str = "auto"
    training: FinetuneConfig = field(default_factory=FinetuneConfig)


@dataclass
class FinetuneReport:
    """What a run did: pair counts, held-out metrics before and after, the per-epoch log, skipped items."""

    model: str
    checkpoint: str
    train_pairs: int
    heldout_pairs: int
    before: dict[str, float]
    after: dict[str, float]
    best_epoch: int
    epochs: list[dict[str, float]]
    stopped_early: bool
    skipped: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def item_text(item: StoredItem, template: str) -> str:
    """Fill ``template`` from an item's fields; missing fields become empty and stray punctuation is tidied."""
    values: dict[str, Any] = {str(k): v for k, v in item.attributes.items()}
    values.update({name: value for name, value in catalog_values(item).items() if name != "attributes"}, id=item.id)
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    text = template.format_map({name: "" if values.get(name) is None else values[name] for name in fields})
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"^[\s.,;:-]+|[\s.,;:-]+$", "", text)


def run_finetune(job: FinetuneJob, on_epoch: Callable[[EpochLog], None] | None = None) -> FinetuneReport:
    """Fine-tune, evaluate before and after on held-out products, and save the best checkpoint.

    Raises:
        StoreNotFoundError: no store.
        ModelError: the model cannot be loaded, or is not an open_clip model.
        FinetuneError: a held-out fraction outside (0, 1), a template that cannot be filled, or too few usable
            items.
    """
    if not 0 < job.heldout_fraction < 1:
        raise FinetuneError("the held-out fraction must lie between 0 and 1")
    with CatalogStore.open(job.store) as store:
        keys = store.matching_keys(ItemFilter())
        items = list(store.get_items(keys.tolist()).values())
        spec = job.model or store.manifest.model
    encoder = default_registry().load(spec, LoadOptions(device=job.device, seed=job.training.seed))
    if not isinstance(encoder, OpenClipEncoder):
        raise ModelError(f"fine-tuning supports open_clip models; {spec!r} is not one")
    try:
        texts_by_item = {item.id: item_text(item, job.text_template) for item in items}
    except (KeyError, ValueError, IndexError) as e:
        raise FinetuneError(f"bad --text-template {job.text_template!r}: {e}") from None
    usable, pixels, skipped = _load_pixels(encoder, [i for i in items if texts_by_item[i.id]])
    skipped += [f"{i.id}: empty text from the template" for i in items if not texts_by_item[i.id]]
    train, held = _split(usable, job.heldout_fraction, job.training.seed)
    if len(train) < 2 or len(held) < 2:
        raise FinetuneError(
            f"too few usable items to fine-tune ({len(usable)}); need at least 2 for training and 2 held out"
        )
    train_pixels = pixels[[usable.index(i) for i in train]]
    held_pixels = pixels[[usable.index(i) for i in held]]
    held_texts = [texts_by_item[i.id] for i in held]

    def heldout_metrics() -> dict[str, float]:
        return _retrieval(encoder, held_pixels, held_texts)

    def score() -> float:
        metrics = heldout_metrics()
        return (metrics["recall@1"] + metrics["recall@5"] + metrics["recall@10"]) / 3

    before = heldout_metrics()
    result = finetune(encoder, train_pixels, [texts_by_item[i.id] for i in train], score, job.training, on_epoch)
    after = heldout_metrics()
    out = save_checkpoint(encoder, job.out)
    report = FinetuneReport(
        model=spec,
        checkpoint=str(out),
        train_pairs=len(train),
        heldout_pairs=len(held),
        before=before,
        after=after,
        best_epoch=result.best_epoch,
        epochs=[asdict(e) for e in result.epochs],
        stopped_early=result.stopped_early,
        skipped=skipped,
    )
    (out / REPORT_NAME).write_text(json.dumps({**report.to_dict(), "recipe": asdict(job.training)}, indent=2))
    return report


def _load_pixels(encoder: OpenClipEncoder, items: list[StoredItem]) -> tuple[list[StoredItem], np.ndarray, list[str]]:
    usable: list[StoredItem] = []
    arrays: list[np.ndarray] = []
    skipped: list[str] = []
    with Fetcher() as fetcher:
        for item in items:
            try:
                image = decode_image(fetcher.read(item.source), source=item.source).image
            except ItemError as e:
                skipped.append(f"{item.id}: {e.reason}")
                continue
            usable.append(item)
            arrays.append(encoder.preprocess(image))
    size = encoder.image_size
    return usable, np.stack(arrays) if arrays else np.zeros((0, 3, size, size), np.float32), skipped


def _split(items: list[StoredItem], fraction: float, seed: int) -> tuple[list[StoredItem], list[StoredItem]]:
    """Hold out whole products (items sharing a product_id), seeded."""
    groups: dict[str, list[StoredItem]] = {}
    for item in items:
        groups.setdefault(item.product_id or item.id, []).append(item)
    names = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    count = max(1, round(len(names) * fraction))
    held_names = {names[i] for i in order[:count]}
    held = [i for name in names if name in held_names for i in groups[name]]
    train = [i for name in names if name not in held_names for i in groups[name]]
    return train, held


def _retrieval(encoder: OpenClipEncoder, pixels: np.ndarray, texts: list[str]) -> dict[str, float]:
    """Text→image recall on held-out pairs: each distinct text's relevant images are those it describes."""
    images = np.concatenate([encoder.encode_pixels(pixels[i : i + 64]) for i in range(0, len(pixels), 64)])
    queries = sorted(set(texts))
    vectors = encoder.encode_texts(queries)
    scores = vectors @ images.T
    ids = [str(i) for i in range(len(texts))]
    rankings = [[ids[j] for j in np.argsort(-row, kind="stable")] for row in scores]
    relevants = [{ids[j] for j, text in enumerate(texts) if text == query} for query in queries]
    return retrieval_metrics(rankings, relevants)

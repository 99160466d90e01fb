"""The tagging jobs over a store: ``tag_store`` (tag run), ``calibrate_store`` (tag calibrate), ``audit_store``.

``tag_store`` is incremental and resumable like indexing: the run's *signature* (taxonomy fingerprint, model,
calibration id, review band) is recorded per item with the content hash of its image when its tags are
committed, so a re-run tags only items that are new, whose image changed, or that were tagged under another
signature, and a killed run resumes where its last committed batch ended. Batches are committed in one
transaction each, under the store's writer lock. Scoring reads the stored image vectors; the model is loaded
only for its text tower (label prompts, most of them cached in the store).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from catalens.indexer.progress import NoProgress, ProgressSink
from catalens.indexer.store import CatalogStore, ItemFilter
from catalens.indexer.tagging.audit import AuditEntry, audit_labels
from catalens.indexer.tagging.calibration import Calibration, calibrate_attribute
from catalens.indexer.tagging.errors import CalibrationError
from catalens.indexer.tagging.labelled import LabelledRow
from catalens.indexer.tagging.labels import PromptVectorCache, taxonomy_label_vectors
from catalens.indexer.tagging.scoring import TagScorer, person_decisions
from catalens.indexer.tagging.taxonomy import Taxonomy
from catalens.indexer.weights_check import require_same_weights
from catalens.models import LoadOptions, load_model
from catalens.models.base import ImageTextEncoder

#: Items scored and committed together: one transaction, one progress step.
DEFAULT_TAG_BATCH = 4096


@dataclass(frozen=True)
class TagOptions:
    """How to run a tagging job.

    Attributes:
        batch_size: items scored and committed per transaction.
        device: where the text tower runs to embed the label prompts (``auto``, ``cpu``, ``cuda``...).
        review_band: without a calibration, confidences this far below an attribute's threshold go to review.
        redo: tag every matching item again, even those tagged under the same signature.
    """

    batch_size: int = DEFAULT_TAG_BATCH
    device: str = "auto"
    review_band: float = 0.25
    redo: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not 0.0 <= self.review_band < 1.0:
            raise ValueError("review_band must be in [0, 1)")


@dataclass
class TagReport:
    """The summary of one tagging run."""

    store: str
    run_id: int
    signature: str
    model: str
    taxonomy: str
    calibration: str | None
    tagged: int = 0
    up_to_date: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    per_attribute: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
        return self.tagged / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "run_id": self.run_id,
            "signature": self.signature,
            "model": self.model,
            "taxonomy": self.taxonomy,
            "calibration": self.calibration,
            "tagged": self.tagged,
            "up_to_date": self.up_to_date,
            "decisions": {d: self.decisions.get(d, 0) for d in ("accept", "review", "reject")},
            "per_attribute": {
                name: {d: counts.get(d, 0) for d in ("accept", "review", "reject")}
                for name, counts in self.per_attribute.items()
            },
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 1),
        }


def run_signature(taxonomy: Taxonomy, model: str, calibration: Calibration | None, review_band: float) -> str:
    """What makes two runs' tags the same: a change of any part re-tags every item."""
    parts = {
        "taxonomy": taxonomy.fingerprint,
        "model": model,
        "calibration": calibration.id if calibration else None,
        "review_band": review_band,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def load_text_model(store: CatalogStore, device: str) -> ImageTextEncoder:
    """The store's own model (its text tower embeds the label prompts), with the weights its vectors came from.

    Raises:
        StoreWeightsMismatchError: the store's spec now loads other weights.
    """
    model = load_model(store.manifest.model, LoadOptions(device=device))
    require_same_weights(store.manifest, str(store.path), model)
    return model


def label_vectors_for(store: CatalogStore, taxonomy: Taxonomy, model: ImageTextEncoder) -> dict[str, np.ndarray]:
    """The taxonomy's label vectors, through the store's prompt cache for this model."""
    cache = PromptVectorCache.for_store(store.path, store.manifest.model_key, store.manifest.dim)
    return taxonomy_label_vectors(taxonomy, cache, model.encode_texts)


def check_calibration(calibration: Calibration, taxonomy: Taxonomy, model: str) -> None:
    """Refuse a calibration fitted for another taxonomy or model: its thresholds would mean nothing here.

    Raises:
        CalibrationError: the fingerprints or the model differ.
    """
    if calibration.taxonomy != taxonomy.fingerprint:
        raise CalibrationError(
            f"calibration {calibration.id} was fitted for another taxonomy ({calibration.taxonomy[:12]}, this "
            f"one is {taxonomy.fingerprint[:12]}): run `catalens tag calibrate` again with this taxonomy"
        )
    if calibration.model != model:
        raise CalibrationError(
            f"calibration {calibration.id} was fitted with model {calibration.model!r}, the store uses {model!r}"
        )


def tag_store(
    path: str | Path,
    taxonomy: Taxonomy,
    *,
    calibration: Calibration | None = None,
    where: ItemFilter | None = None,
    options: TagOptions | None = None,
    progress: ProgressSink | None = None,
    model: ImageTextEncoder | None = None,
) -> TagReport:
    """Tag the store's items (those matching ``where``) that are not tagged under this run's signature yet.

    Args:
        path: the store directory.
        taxonomy: what to tag.
        calibration: thresholds and probes from ``calibrate_store``; ``None`` tags zero-shot with the taxonomy's
            thresholds.
        where: tag only the items matching these filters.
        options: batch size, device, review band, redo.
        progress: where progress goes.
        model: an already loaded store model (tests, benchmarks); loaded from the store's spec if ``None``.

    Raises:
        StoreError: the store is missing, unreadable or locked by another writer.
        CalibrationError: the calibration belongs to another taxonomy or model.
        ModelError: the store's model cannot be loaded.
    """
    options = options or TagOptions()
    progress = progress or NoProgress()
    started = time.perf_counter()
    with CatalogStore.open(path) as store, store.writer_lock():
        spec = store.manifest.model_key  # new weights under the same spec are another model here
        if calibration is not None:
            check_calibration(calibration, taxonomy, spec)
        model = model or load_text_model(store, options.device)
        scorer = TagScorer(
            taxonomy, label_vectors_for(store, taxonomy, model), model.logit_scale, calibration, options.review_band
        )
        signature = run_signature(taxonomy, spec, calibration, options.review_band)
        candidates = store.matching_keys(where) if where is not None and not where.is_empty else None
        pending = store.tags.pending("" if options.redo else signature, where)
        total = len(candidates) if candidates is not None else store.vector_count()
        run_id = store.tags.start_run(
            signature, taxonomy.fingerprint, taxonomy.to_json(), spec, calibration.id if calibration else None
        )
        calibration_id = calibration.id if calibration is not None else None
        report = TagReport(str(path), run_id, signature, spec, taxonomy.fingerprint, calibration_id)
        report.up_to_date = max(total - len(pending), 0)
        progress.start("tagging", len(pending))
        for start in range(0, len(pending), options.batch_size):
            keys, vectors = store.vectors_for(pending[start : start + options.batch_size])
            people = person_decisions(store.tags.for_items(keys)) if len(keys) else {}
            results = scorer.score(keys, vectors, people)
            store.tags.write(run_id, signature, results)
            for _, _, tags in results:
                for tag in tags:
                    report.decisions[tag.decision] += 1
                    report.per_attribute.setdefault(tag.attribute, Counter())[tag.decision] += 1
            report.tagged += len(results)
            progress.advance(len(pending[start : start + options.batch_size]))
        progress.finish()
        report.seconds = time.perf_counter() - started
        store.tags.finish_run(run_id, report.to_dict())
    return report


@dataclass(frozen=True)
class LabelledSet:
    """Labelled items of one attribute, as arrays: what calibration and audit work on."""

    attribute: str
    item_ids: tuple[str, ...]
    vectors: np.ndarray
    cosines: np.ndarray
    labels: np.ndarray  # (n,) value index, or (n, V) bool for a multi-label attribute


def labelled_sets(
    store: CatalogStore, taxonomy: Taxonomy, rows: Sequence[LabelledRow], label_vectors: dict[str, np.ndarray]
) -> tuple[dict[str, LabelledSet], list[str]]:
    """Group labelled rows (and people's accepted tags) by attribute, with vectors; also the ids not found.

    A single-label attribute keeps one label per item: the last row given wins (a person's later decision over
    a catalog field); a multi-label attribute keeps every label given.
    """
    by_attribute: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        by_attribute.setdefault(row.attribute, {}).setdefault(row.id, []).append(row.label)
    items = store.get_items_by_id({i for per in by_attribute.values() for i in per})
    missing = sorted({i for per in by_attribute.values() for i in per if i not in items})
    out: dict[str, LabelledSet] = {}
    for name, per_item in by_attribute.items():
        attribute = taxonomy.attribute(name)
        values = attribute.value_names()
        wanted = {items[i].key: i for i in per_item if i in items}
        keys, vectors = store.vectors_for(sorted(wanted))
        if not len(keys):
            continue
        # Rows in item-id order, not store-key order: keys follow the order an indexing run finished items in, and
        # the calibration's folds are drawn over rows, so the same labels must give the same folds in every store.
        order = sorted(range(len(keys)), key=lambda r: wanted[int(keys[r])])
        ids = tuple(wanted[int(keys[r])] for r in order)
        vectors = vectors[order]
        labels: np.ndarray
        if attribute.multi_label:
            labels = np.zeros((len(ids), len(values)), dtype=bool)
            for r, item_id in enumerate(ids):
                for label in per_item[item_id]:
                    labels[r, values.index(label)] = True
        else:
            labels = np.array([values.index(per_item[i][-1]) for i in ids], dtype=np.int64)
        out[name] = LabelledSet(name, ids, vectors, vectors @ label_vectors[name].T, labels)
    return out, missing


def calibrate_store(
    path: str | Path,
    taxonomy: Taxonomy,
    rows: Sequence[LabelledRow],
    *,
    target_precision: float = 0.9,
    folds: int = 5,
    seed: int = 0,
    device: str = "auto",
    include_people: bool = True,
    model: ImageTextEncoder | None = None,
) -> tuple[Calibration, list[str]]:
    """Fit a calibration for ``taxonomy`` on labelled items of the store (and the tags people accepted).

    Returns:
        The calibration (not yet saved) and the labelled ids that are not in the store (skipped).

    Raises:
        CalibrationError: no labelled item of any attribute is in the store.
    """
    with CatalogStore.open(path) as store:
        spec = store.manifest.model_key  # new weights under the same spec are another model here
        model = model or load_text_model(store, device)
        vectors = label_vectors_for(store, taxonomy, model)
        every = list(rows)
        if include_people:
            known = {a.name: set(a.value_names()) for a in taxonomy.attributes}
            every += [
                LabelledRow(item_id, attribute, value, 0)
                for item_id, attribute, value in store.tags.person_labels()
                if value in known.get(attribute, ())
            ]
        sets, missing = labelled_sets(store, taxonomy, every, vectors)
    if not sets:
        raise CalibrationError("none of the labelled items is in the store with a vector: nothing to calibrate on")
    attributes = {}
    for name, data in sets.items():
        attribute = taxonomy.attribute(name)
        attributes[name] = calibrate_attribute(
            name,
            attribute.value_names(),
            attribute.multi_label,
            data.cosines,
            data.vectors,
            data.labels,
            model.logit_scale,
            target_precision=target_precision,
            folds=folds,
            seed=seed,
        )
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Calibration.create(taxonomy.fingerprint, spec, target_precision, attributes, created), missing


@dataclass(frozen=True)
class AuditFinding:
    """An item whose catalog value the model confidently disagrees with."""

    id: str
    given: str
    predicted: str
    self_confidence: float
    predicted_confidence: float


def catalog_value(item: Any, attribute: str) -> str | None:
    """The item's own catalog value of ``attribute``: the ``category`` column or an attribute of that name."""
    if attribute == "category":
        return str(item.category) if item.category is not None else None
    value = item.attributes.get(attribute) if isinstance(item.attributes, dict) else None
    return str(value) if value is not None else None


def audit_store(
    path: str | Path,
    taxonomy: Taxonomy,
    attribute: str,
    *,
    folds: int = 5,
    seed: int = 0,
    device: str = "auto",
    model: ImageTextEncoder | None = None,
) -> tuple[list[AuditFinding], int]:
    """Items whose catalog value of ``attribute`` the model confidently disagrees with, most suspicious first.

    Every indexed item whose catalog value matches one of the attribute's values (case-insensitively) is a
    labelled example; the probabilities are out-of-sample (cross-validated), ranked by the self-confidence of
    the given label (Cleanlab's label-quality score).

    Returns:
        The findings and the number of items audited.
    """
    definition = taxonomy.attribute(attribute)
    names = definition.value_names()
    lookup = {v.casefold(): v for v in names}
    with CatalogStore.open(path) as store:
        model = model or load_text_model(store, device)
        vectors = label_vectors_for(store, taxonomy, model)
        keys_all = store.matching_keys(ItemFilter())
        items = store.get_items(keys_all)
        rows = []
        for key in keys_all:
            given = catalog_value(items[int(key)], attribute)
            if given is not None and given.strip().casefold() in lookup:
                rows.append(LabelledRow(items[int(key)].id, attribute, lookup[given.strip().casefold()], 0))
        sets, _ = labelled_sets(store, taxonomy, rows, vectors)
    data = sets.get(attribute)
    if data is None:
        return [], 0
    entries: list[AuditEntry] = audit_labels(data.cosines, data.vectors, data.labels, model.logit_scale, folds, seed)
    findings = [
        AuditFinding(
            data.item_ids[e.index], names[e.given], names[e.predicted], e.self_confidence, e.predicted_confidence
        )
        for e in entries
    ]
    return findings, len(data.item_ids)

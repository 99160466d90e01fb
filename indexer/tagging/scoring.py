"""Scoring a batch of items against a taxonomy: confidences, decisions, and the two-stage gating.

Everything here is array work on the stored image vectors: cosines to the label vectors (one matrix product per
attribute), probabilities (the calibration's, or the zero-shot softmax ``logit_scale * cosine``), then the
decision rule, vectorised over the batch:

* ``accept`` when the confidence reaches the value's threshold (a calibration's per-value threshold, chosen for
  the target precision; without one, the attribute's ``threshold`` from the taxonomy); a value whose calibration
  could not reach the target has no threshold and is never accepted;
* ``review`` within the band below it (down to the calibration's review floor, or ``threshold - review_band``);
* ``reject`` below.

Single-label attributes give one tag per item (the best value, with the runner-up recorded for review); multi-label
ones every value accepted or sent to review, or the best one as a reject when none is. An attribute gated on
another (``applies_to``) is scored only for items whose gate value (a person's, else the model's unless
rejected) is among the gate's values. Values a person rejected are never proposed again, and a single-label
attribute a person decided is not scored at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from catalens.indexer.store.tags import ModelTag, Tag
from catalens.indexer.tagging.calibration import AttributeCalibration, Calibration
from catalens.indexer.tagging.taxonomy import Taxonomy, TaxonomyAttribute

ACCEPT, REVIEW, REJECT = "accept", "review", "reject"


@dataclass(frozen=True)
class DecisionRule:
    """Per-value thresholds of one attribute: accept at or above ``thresholds`` (NaN: never), review at or above
    ``floors``."""

    thresholds: np.ndarray
    floors: np.ndarray

    @classmethod
    def for_attribute(
        cls, attribute: TaxonomyAttribute, calibration: AttributeCalibration | None, review_band: float
    ) -> DecisionRule:
        """The calibration's thresholds and review floors, or the taxonomy's single threshold for every value."""
        count = len(attribute.values)
        if calibration is None:
            threshold = float(attribute.threshold)
            return cls(np.full(count, threshold), np.full(count, max(threshold - review_band, 0.0)))
        thresholds = np.array([np.nan if t is None else float(t) for t in calibration.thresholds])
        return cls(thresholds, np.asarray(calibration.review_floor, dtype=np.float64))

    def decisions(self, probs: np.ndarray) -> np.ndarray:
        """``(n, V)`` codes: 2 accept, 1 review, 0 reject."""
        with np.errstate(invalid="ignore"):
            accept = probs >= self.thresholds  # NaN thresholds compare False: never accepted
        review = ~accept & (probs >= self.floors)
        return np.where(accept, 2, np.where(review, 1, 0)).astype(np.int8)


_NAMES = (REJECT, REVIEW, ACCEPT)


@dataclass
class PersonDecisions:
    """What people decided for one item's attribute: accepted and rejected values."""

    accepted: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)


def person_decisions(tags: Mapping[int, Sequence[Tag]]) -> dict[int, dict[str, PersonDecisions]]:
    """People's rows of each item, by attribute (model rows are ignored)."""
    out: dict[int, dict[str, PersonDecisions]] = {}
    for key, rows in tags.items():
        for tag in rows:
            if tag.source != "person":
                continue
            entry = out.setdefault(key, {}).setdefault(tag.attribute, PersonDecisions())
            (entry.accepted if tag.decision == ACCEPT else entry.rejected).add(tag.value)
    return out


def zero_shot_probabilities(cosines: np.ndarray, logit_scale: float) -> np.ndarray:
    """The uncalibrated softmax over values of ``logit_scale * cosine`` (what ``classify`` returns)."""
    logits = logit_scale * cosines.astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs


class TagScorer:
    """Scores batches of image vectors against a taxonomy; holds the label vectors and the decision rules."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        label_vectors: Mapping[str, np.ndarray],
        logit_scale: float,
        calibration: Calibration | None = None,
        review_band: float = 0.25,
    ) -> None:
        """
        Args:
            taxonomy: what to tag.
            label_vectors: ``(values, dim)`` unit vectors per attribute (see :mod:`.labels`).
            logit_scale: the model's zero-shot temperature.
            calibration: fitted per attribute; attributes it does not cover are scored zero-shot.
            review_band: without a calibration, how far below the threshold a confidence still goes to review.
        """
        self.taxonomy = taxonomy
        self.logit_scale = float(logit_scale)
        self._labels = {name: np.asarray(v, dtype=np.float32) for name, v in label_vectors.items()}
        cals = calibration.attributes if calibration is not None else {}
        self._calibrations = {a.name: cals.get(a.name) for a in taxonomy.attributes}
        self._rules = {
            a.name: DecisionRule.for_attribute(a, self._calibrations[a.name], review_band) for a in taxonomy.attributes
        }

    @property
    def attribute_names(self) -> list[str]:
        return [a.name for a in self.taxonomy.attributes]

    def probabilities(self, attribute: str, vectors: np.ndarray) -> np.ndarray:
        """``(n, V)`` confidences of every value of ``attribute`` for the given image vectors."""
        cosines = vectors @ self._labels[attribute].T
        calibration = self._calibrations[attribute]
        if calibration is not None:
            return np.asarray(calibration.probabilities(cosines, vectors, self.logit_scale), dtype=np.float64)
        return zero_shot_probabilities(cosines, self.logit_scale)

    def score(
        self, keys: np.ndarray, vectors: np.ndarray, people: Mapping[int, Mapping[str, PersonDecisions]] | None = None
    ) -> list[tuple[int, list[str], list[ModelTag]]]:
        """Tags for each item of a batch: ``(key, every attribute of the taxonomy, the model's tags)``.

        Every attribute is listed as scored, so an item whose gate no longer lets an attribute through loses its
        old model tags for it; people's rows are kept by the store whatever is listed.
        """
        people = people or {}
        tags: list[list[ModelTag]] = [[] for _ in range(len(keys))]
        chosen: dict[str, list[set[str]]] = {}  # per attribute, per row: the values a gate may test
        for attribute in self.taxonomy.attributes:
            names = attribute.value_names()
            rows = np.arange(len(keys))
            if attribute.gate is not None:
                wanted = set(attribute.gate.values)
                gate_values = chosen[attribute.gate.attribute]
                rows = np.array([r for r in rows if gate_values[r] & wanted], dtype=np.int64)
            chosen[attribute.name] = [set() for _ in range(len(keys))]
            if len(rows) == 0:
                continue
            probs = self.probabilities(attribute.name, vectors[rows])
            codes = self._rules[attribute.name].decisions(probs)
            decided = [people.get(int(keys[r]), {}).get(attribute.name) for r in rows]
            if attribute.multi_label:
                self._multi(attribute.name, names, rows, probs, codes, decided, tags, chosen[attribute.name])
            else:
                self._single(attribute.name, names, rows, probs, codes, decided, tags, chosen[attribute.name])
        every = self.attribute_names
        return [(int(key), every, item_tags) for key, item_tags in zip(keys, tags, strict=True)]

    @staticmethod
    def _single(
        name: str,
        values: Sequence[str],
        rows: np.ndarray,
        probs: np.ndarray,
        codes: np.ndarray,
        decided: Sequence[PersonDecisions | None],
        tags: list[list[ModelTag]],
        chosen: list[set[str]],
    ) -> None:
        masked = probs.copy()
        for i, person in enumerate(decided):
            if person is not None:
                for value in person.rejected:
                    if value in values:
                        masked[i, values.index(value)] = -1.0
        order = np.argsort(-masked, axis=1, kind="stable")[:, :2]
        for i, row in enumerate(rows):
            person = decided[i]
            if person is not None and person.accepted:
                chosen[row] = set(person.accepted)
                continue
            best = int(order[i, 0])
            if masked[i, best] < 0:
                continue  # a person rejected every value
            second = int(order[i, 1]) if order.shape[1] > 1 and masked[i, order[i, 1]] >= 0 else None
            decision = _NAMES[codes[i, best]]
            tags[row].append(
                ModelTag(
                    name,
                    values[best],
                    float(probs[i, best]),
                    decision,
                    values[second] if second is not None else None,
                    float(probs[i, second]) if second is not None else None,
                )
            )
            if decision != REJECT:
                chosen[row] = {values[best]}

    @staticmethod
    def _multi(
        name: str,
        values: Sequence[str],
        rows: np.ndarray,
        probs: np.ndarray,
        codes: np.ndarray,
        decided: Sequence[PersonDecisions | None],
        tags: list[list[ModelTag]],
        chosen: list[set[str]],
    ) -> None:
        for i, row in enumerate(rows):
            person = decided[i]
            skip = (person.accepted | person.rejected) if person is not None else set()
            picked = [j for j in np.argsort(-probs[i], kind="stable") if codes[i, j] > 0 and values[j] not in skip]
            if not picked:
                best = next((int(j) for j in np.argsort(-probs[i], kind="stable") if values[j] not in skip), None)
                if best is not None:
                    tags[row].append(ModelTag(name, values[best], float(probs[i, best]), REJECT))
            for j in picked:
                tags[row].append(ModelTag(name, values[j], float(probs[i, j]), _NAMES[codes[i, j]]))
            chosen[row] = {values[j] for j in picked} | (person.accepted if person is not None else set())

"""Catalog audit: items whose existing value the model confidently disagrees with, for a person to check.

In the spirit of Cleanlab's label-issue finding (Northcutt et al. 2021, "Confident Learning"): every item gets
out-of-sample probabilities (:func:`~catalens.indexer.tagging.crossfit.cross_fit`: a temperature-scaled zero-shot
score and a linear probe, each fitted on the other folds, blended by out-of-fold log-loss), so an item's own,
possibly wrong, label never votes for itself. Items whose predicted value differs from the given one are ranked
by self-confidence, the probability of the given label: lowest first (the most likely catalog mistakes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from catalens.indexer.tagging.crossfit import cross_fit
from catalens.indexer.tagging.errors import CalibrationError


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One suspect item: its row index, the given and predicted value indices and their probabilities."""

    index: int
    given: int
    predicted: int
    self_confidence: float
    predicted_confidence: float


def audit_labels(
    cosines: np.ndarray,
    vectors: np.ndarray,
    given: np.ndarray,
    logit_scale: float,
    folds: int = 5,
    seed: int = 0,
) -> list[AuditEntry]:
    """Items whose out-of-sample prediction differs from their given value, lowest self-confidence first.

    Args:
        cosines: ``(n, V)`` the items' cosines to the values' label vectors.
        vectors: ``(n, d)`` their image vectors.
        given: ``(n,)`` the catalog's value index per item.
        logit_scale: the model's logit scale.
        folds: cross-fitting folds.
        seed: the fold split's seed.

    Raises:
        CalibrationError: shapes that do not fit, values out of range, or fewer than two items.
    """
    cos = np.asarray(cosines, dtype=np.float32)
    vec = np.asarray(vectors, dtype=np.float32)
    lab = np.asarray(given, dtype=np.int64)
    if cos.ndim != 2 or lab.shape != (len(cos),) or vec.ndim != 2 or len(vec) != len(cos):
        raise CalibrationError("audit needs (n, V) cosines, (n, d) vectors and (n,) given values")
    if len(lab) < 2 or lab.min() < 0 or lab.max() >= cos.shape[1]:
        raise CalibrationError(f"audit needs at least 2 items with values in [0, {cos.shape[1]})")
    with threadpool_limits(limits=1, user_api="blas"):
        probs = cross_fit(cos, vec, lab, logit_scale, multi_label=False, folds=folds, seed=seed).blended
    rows = np.arange(len(lab))
    predicted = probs.argmax(axis=1)
    self_conf = probs[rows, lab]
    suspect = np.flatnonzero(predicted != lab)
    suspect = suspect[np.argsort(self_conf[suspect], kind="stable")]
    return [
        AuditEntry(int(i), int(lab[i]), int(predicted[i]), float(self_conf[i]), float(probs[i, predicted[i]]))
        for i in suspect
    ]

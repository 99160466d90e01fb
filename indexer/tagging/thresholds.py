"""Per-value accept thresholds for a target precision, and their honest, held-out measurement.

Choosing "the lowest confidence whose precision reaches the target" on some items and then reporting the
precision on those same items is optimistic: the lowest such point is a maximum over many noisy candidates. So
:func:`held_out_decisions` chooses each fold's thresholds on the out-of-fold probabilities of the OTHER folds and
decides the fold's items with them; the precision, recall and coverage reported are counted on those held-out
decisions. The thresholds the calibration ships are then chosen once on every labelled item.

Small samples: the precision of the ``m`` most confident predictions, ``k`` of them right, is estimated by the
Wilson score lower bound at one standard deviation (``m / (m + 1)`` when all are right), so a value never gets a
threshold from a handful of lucky items: at target 0.9 it takes at least 9 right in a row. With a few labelled
items per value, a value has too few predictions (fewer than :data:`MIN_OWN`) for its own threshold; it then
borrows the attribute's pooled threshold (every value's top-1 predictions together), provided its own
predictions above it reach the target (plain ``k / m``).

A value's own threshold is not chosen on its own items alone: twelve right of twelve says little about a value
the model gets right half the time. Each candidate's counts are shrunk toward the precision of every value's
predictions at or above the same confidence, worth :data:`PRIOR_ITEMS` labelled predictions (empirical Bayes:
``(PRIOR_ITEMS * p_pooled + k) / (PRIOR_ITEMS + m)``, then the Wilson bound on ``PRIOR_ITEMS + m`` items). A value
with many predictions is decided by its own; a value with a dozen is pulled toward what the attribute shows at
that confidence, down where the model is often wrong there, up where it is reliably right. Measured over twenty
half-splits at target 0.9 (``scripts/bench_tagging.py --trust-splits 20``, catalens-mini), it took the demo
catalog's accepted tags from 24 right of 31 (0.77) to 70 of 77 (0.91), and the clip art the model did not train on
to 0.96 and 0.95 (from 0.996 and 0.92), its training drawings to 0.92 (from 0.87), with fewer tags on two of them.

The shipped probabilities come from the average of the fold models (see
:func:`~catalens.indexer.tagging.crossfit.ensemble_probe`), the same models the thresholds were chosen on.
A value that reaches the target neither way gets ``None``: its items go to review and are never accepted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Decision = np.ndarray  # int8: 2 accept, 1 review, 0 reject
ACCEPT, REVIEW, REJECT = 2, 1, 0
#: Fewest predictions of a value for a threshold of its own (fewer: the pooled one, see the module docstring).
MIN_OWN = 10
#: One-sided Wilson bound used for a precision estimate (1 standard deviation; at 1.64 few-shot data never
#: reached 0.9 at all).
WILSON_Z = 1.0
#: The bound reported beside each threshold (:func:`threshold_evidence`): one-sided 95 %.
REPORT_Z = 1.645
#: How many labelled predictions the attribute's pooled precision counts for in one value's own threshold (see
#: the module docstring): as many as a value needs for a threshold of its own. 5 measured too: the demo 0.96 with
#: fewer tags, the training drawings 0.895.
PRIOR_ITEMS = MIN_OWN


def _candidates(probs: np.ndarray, labels: np.ndarray, v: int, multi_label: bool) -> tuple[np.ndarray, np.ndarray]:
    """(confidences, correct) of the predictions of value ``v``: top-1 predictions, or every item (multi-label)."""
    if multi_label:
        return probs[:, v], np.asarray(labels, dtype=bool)[:, v]
    top = probs.argmax(axis=1)
    chosen = top == v
    return probs[chosen, v], labels[chosen] == v


def wilson_lower(k: np.ndarray, m: np.ndarray, z: float | None = None) -> np.ndarray:
    """Wilson score lower bound of a proportion ``k / m`` (one-sided, ``z`` standard deviations)."""
    z = WILSON_Z if z is None else z
    p = k / m
    z2 = z * z
    centre = p + z2 / (2 * m)
    spread = z * np.sqrt(np.maximum(p * (1 - p) / m + z2 / (4 * m * m), 0.0))
    return (centre - spread) / (1 + z2 / m)


def lowest_threshold(
    conf: np.ndarray, correct: np.ndarray, target: float, prior: tuple[np.ndarray, np.ndarray] | None = None
) -> float | None:
    """The lowest confidence ``t`` whose predictions with confidence ``>= t`` reach ``target`` precision.

    Precision is :func:`wilson_lower` (see the module docstring). Ties are taken together. With ``prior``
    (every value's predictions: confidences and correctness), the counts at each ``t`` are first shrunk toward
    the pooled precision at or above ``t``, worth :data:`PRIOR_ITEMS` predictions.
    """
    if conf.size == 0:
        return None
    order = np.argsort(-conf, kind="stable")
    c, hit = conf[order], correct[order].astype(np.float64)
    k = np.cumsum(hit)
    m = np.arange(1, len(c) + 1, dtype=np.float64)
    if prior is not None:
        p0 = _precision_at_or_above(*prior, c)
        k, m = k + PRIOR_ITEMS * p0, m + PRIOR_ITEMS
    last_of_tie = np.append(c[1:] != c[:-1], True)
    ok = (wilson_lower(k, m) >= target) & last_of_tie
    if not ok.any():
        return None
    return float(c[np.flatnonzero(ok)[-1]])


def _precision_at_or_above(conf: np.ndarray, correct: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each confidence in ``at``, the share right among the predictions ``conf`` at or above it (0 if none)."""
    order = np.argsort(conf, kind="stable")
    sorted_conf, hits = conf[order], correct[order].astype(np.float64)
    right_from = np.append(np.cumsum(hits[::-1])[::-1], 0.0)  # right_from[j]: right among sorted_conf[j:]
    start = np.searchsorted(sorted_conf, at, side="left")
    count = len(sorted_conf) - start
    return np.divide(right_from[start], count, out=np.zeros(len(at)), where=count > 0)


def _pool(cands: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Every value's predictions together: (confidences, correct)."""
    return np.concatenate([c for c, _ in cands]), np.concatenate([h for _, h in cands])


def _has_own(conf: np.ndarray, pooled: float | None) -> bool:
    """Whether a value with these predictions is given a threshold of its own (else it may borrow the pooled one)."""
    return len(conf) >= MIN_OWN or pooled is None


def choose_thresholds(
    probs: np.ndarray, labels: np.ndarray, target: float, *, multi_label: bool
) -> tuple[float | None, ...]:
    """Per value, :func:`lowest_threshold` over its predictions, or the pooled one when it has few."""
    cands = [_candidates(probs, labels, v, multi_label) for v in range(probs.shape[1])]
    everything = _pool(cands)
    pooled = lowest_threshold(*everything, target)
    out: list[float | None] = []
    for conf, hit in cands:
        if _has_own(conf, pooled):
            out.append(lowest_threshold(conf, hit, target, prior=everything))
            continue
        above = conf >= pooled
        out.append(pooled if not above.any() or hit[above].mean() >= target else None)
    return tuple(out)


def threshold_evidence(
    probs: np.ndarray, labels: np.ndarray, thresholds: tuple[float | None, ...], target: float, *, multi_label: bool
) -> tuple[dict[str, Any] | None, ...]:
    """Per value with a threshold, what the labelled items it was chosen on say of it (``None`` without one).

    ``source``: ``own`` (its own predictions) or ``pooled`` (borrowed from the attribute, see the module
    docstring); ``labelled_above``, ``right_above``: the value's labelled predictions at or above it and how many
    are right; ``precision_lower_95``: their one-sided 95 % Wilson lower bound; ``pooled_precision_above``: the
    share right of every value's predictions at or above it, which an own threshold's counts were shrunk toward
    (it is what backs a threshold that only one or two of the value's own predictions sit above). The threshold
    was chosen on these very items, so the bound says the most they can promise, not a held-out measurement (the
    value's ``precision`` beside it is one): twelve right of twelve bound it at 0.82, short of a 0.9 target,
    which is why a value needs many labelled items before its tags can be trusted blind.
    """
    cands = [_candidates(probs, labels, v, multi_label) for v in range(probs.shape[1])]
    everything = _pool(cands)
    pooled = lowest_threshold(*everything, target)
    out: list[dict[str, Any] | None] = []
    for (conf, hit), threshold in zip(cands, thresholds, strict=True):
        if threshold is None:
            out.append(None)
            continue
        above = conf >= threshold
        m, k = int(above.sum()), int(hit[above].sum())
        bound = float(wilson_lower(np.asarray(float(k)), np.asarray(float(m)), REPORT_Z)) if m else None
        pool = float(_precision_at_or_above(*everything, np.asarray([threshold]))[0])
        out.append({
            "source": "own" if _has_own(conf, pooled) else "pooled",
            "labelled_above": m, "right_above": k, "precision_lower_95": bound, "pooled_precision_above": pool,
        })  # fmt: skip
    return tuple(out)


def review_floors(thresholds: tuple[float | None, ...], band: float, *, multi_label: bool) -> tuple[float, ...]:
    """Per value, the confidence below which a prediction is rejected: ``threshold - band``.

    A value without a threshold is never accepted: single-label, its top-1 predictions all go to review (floor 0);
    multi-label, those more likely than not (floor 0.5).
    """
    none_floor = 0.5 if multi_label else 0.0
    return tuple(none_floor if t is None else max(0.0, t - band) for t in thresholds)


def decisions(
    probs: np.ndarray,
    thresholds: tuple[float | None, ...],
    floors: tuple[float, ...],
    *,
    multi_label: bool,
) -> np.ndarray:
    """Vectorised decisions: ``(n,)`` for the top value (single-label) or ``(n, V)`` per value (multi-label)."""
    thr = np.asarray([np.inf if t is None else t for t in thresholds], dtype=np.float64)
    floor = np.asarray(floors, dtype=np.float64)
    if multi_label:
        p = probs.astype(np.float64)
        return np.where(p >= thr, ACCEPT, np.where(p >= floor, REVIEW, REJECT)).astype(np.int8)
    top = probs.argmax(axis=1)
    conf = probs[np.arange(len(top)), top].astype(np.float64)
    return np.where(conf >= thr[top], ACCEPT, np.where(conf >= floor[top], REVIEW, REJECT)).astype(np.int8)


def held_out_decisions(
    probs: np.ndarray, labels: np.ndarray, fold: np.ndarray, target: float, band: float, *, multi_label: bool
) -> np.ndarray:
    """Decide each fold's items with thresholds chosen on the other folds only (see the module docstring)."""
    out = np.zeros(probs.shape if multi_label else (len(probs),), dtype=np.int8)
    for k in np.unique(fold):
        test, train = fold == k, fold != k
        thr = choose_thresholds(probs[train], labels[train], target, multi_label=multi_label)
        floors = review_floors(thr, band, multi_label=multi_label)
        out[test] = decisions(probs[test], thr, floors, multi_label=multi_label)
    return out


def _ratio(a: float, b: float) -> float | None:
    return float(a) / float(b) if b else None


def _shares(d: np.ndarray) -> dict[str, float]:
    n = max(d.size, 1)
    return {
        "accept": float((d == ACCEPT).sum()) / n,
        "review": float((d == REVIEW).sum()) / n,
        "reject": float((d == REJECT).sum()) / n,
    }


def _prf(tp: float, accepted: float, support: float) -> dict[str, float | None]:
    precision, recall = _ratio(tp, accepted), _ratio(tp, support)
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if support else None)
    return {"precision": precision, "recall": recall, "f1": f1}


def decision_stats(
    probs: np.ndarray, labels: np.ndarray, dec: np.ndarray, values: tuple[str, ...], *, multi_label: bool
) -> dict[str, object]:
    """Precision, recall, F1, coverage and decision shares of accepted tags, per value and overall.

    Single-label: a value's precision is the share of items accepted as it that have it; recall, the share of
    items that have it that are accepted as it; coverage, the share of its top-1 predictions that are accepted;
    shares are over its top-1 predictions. Overall: precision of every accepted tag, coverage = accepted items /
    items. Multi-label: the same per (item, value) pair, coverage and shares over all items.
    """
    per_value: dict[str, dict[str, object]] = {}
    if multi_label:
        y = np.asarray(labels, dtype=bool)
        acc = dec == ACCEPT
        for v, name in enumerate(values):
            tp, a, s = float((acc[:, v] & y[:, v]).sum()), float(acc[:, v].sum()), float(y[:, v].sum())
            per_value[name] = {
                "support": int(s), "accepted": int(a), **_prf(tp, a, s),
                "coverage": _ratio(a, len(y)), "shares": _shares(dec[:, v]),
            }  # fmt: skip
        tp, a, s = float((acc & y).sum()), float(acc.sum()), float(y.sum())
        overall = {"accepted": int(a), **_prf(tp, a, s), "coverage": _ratio(a, y.size), "shares": _shares(dec)}
        return {"overall": overall, "values": per_value}
    top = probs.argmax(axis=1)
    acc = dec == ACCEPT
    right = top == labels
    for v, name in enumerate(values):
        pred = top == v
        tp, a, s = float((acc & pred & right).sum()), float((acc & pred).sum()), float((labels == v).sum())
        per_value[name] = {
            "support": int(s), "accepted": int(a), **_prf(tp, a, s),
            "coverage": _ratio(a, float(pred.sum())), "shares": _shares(dec[pred]),
        }  # fmt: skip
    tp, a = float((acc & right).sum()), float(acc.sum())
    overall = {"accepted": int(a), **_prf(tp, a, float(len(labels))), "coverage": _ratio(a, len(labels))}
    overall["shares"] = _shares(dec)
    return {"overall": overall, "values": per_value}

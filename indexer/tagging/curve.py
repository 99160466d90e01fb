"""Learning curves: how zero-shot, calibrated, probe and blended tagging do with 5, 10, 20 labelled items per value.

For each shot count and repeat, :func:`learning_curve` samples that many labelled items per value, runs the
whole :func:`~catalens.indexer.tagging.calibration.calibrate_attribute` on them only, and measures on every
OTHER item: top-1 accuracy of each scorer, and the precision and coverage of the tags the calibration accepts at
the target precision (the issue's "measured precision >= target - 0.05 on held-out items"), next to the
precision the calibration promised from its own folds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from catalens.indexer.tagging.calibration import calibrate_attribute
from catalens.indexer.tagging.crossfit import Scaling
from catalens.indexer.tagging.errors import CalibrationError
from catalens.indexer.tagging.probe import PROBE_C_GRID, fit_probe, probe_probabilities
from catalens.indexer.tagging.thresholds import ACCEPT, decisions


def _sample(labels: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``shots`` items per value, always leaving at least one of each value out for testing."""
    picked = []
    for v in np.unique(labels):
        rows = np.flatnonzero(labels == v)
        take = min(shots, len(rows) - 1)
        if take > 0:
            picked.append(rng.choice(rows, size=take, replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def learning_curve(
    cosines: np.ndarray,
    vectors: np.ndarray,
    labels: np.ndarray,
    logit_scale: float,
    shots: tuple[int, ...] = (5, 10, 20),
    repeats: int = 5,
    seed: int = 0,
    *,
    target_precision: float = 0.9,
    folds: int = 5,
) -> dict[str, Any]:
    """Accuracy of zero-shot / calibrated / probe / blended scores and accepted-tag precision, by labelled shots.

    Args:
        cosines: ``(n, V)`` every item's cosines to the values' label vectors.
        vectors: ``(n, d)`` the items' image vectors.
        labels: ``(n,)`` the true value index of every item (single-label attributes only).
        logit_scale: the model's logit scale.
        shots: labelled items per value to fit on.
        repeats: samples per shot count (means are reported).
        seed: the sampling seed.
        target_precision: the calibration's target.
        folds: the calibration's cross-fitting folds.

    Returns:
        ``{"items", "values", "repeats", "target_precision", "shots": {"5": {...}, ...}}`` where each shot entry
        holds mean ``train_items``, ``test_items``, ``zero_shot``, ``calibrated``, ``probe``, ``blended``
        (accuracies on the held-out items), ``blend``, ``coverage`` (share of held-out items accepted),
        ``precision`` (of all accepted held-out tags, pooled over repeats; None if none accepted),
        ``precision_min`` (the worst repeat's) and ``promised_precision`` (the calibration's own held-out-fold
        estimate, pooled the same way).

    Raises:
        CalibrationError: multi-label labels or shapes that do not fit.
    """
    cos = np.asarray(cosines, dtype=np.float32)
    vec = np.asarray(vectors, dtype=np.float32)
    lab = np.asarray(labels)
    if lab.ndim != 1 or len(lab) != len(cos) or len(vec) != len(cos):
        raise CalibrationError("learning_curve needs single-label (n,) labels and (n, V) cosines, (n, d) vectors")
    lab = lab.astype(np.int64)
    n_values = cos.shape[1]
    names = tuple(str(v) for v in range(n_values))
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {
        "items": len(lab),
        "values": n_values,
        "repeats": repeats,
        "target_precision": target_precision,
    }
    out["shots"] = {}
    for k in shots:
        rows: list[dict[str, float]] = []
        tp = acc_n = promised_tp = promised_n = 0.0
        precisions: list[float] = []
        for _ in range(repeats):
            train = _sample(lab, k, rng)
            test = np.setdiff1d(np.arange(len(lab)), train)
            if len(train) < 2 or len(test) == 0:
                continue
            cal = calibrate_attribute(
                "curve", names, False, cos[train], vec[train], lab[train], logit_scale,
                target_precision=target_precision, folds=folds, seed=int(rng.integers(1 << 31)),
            )  # fmt: skip
            base = Scaling(cal.temperature, None).probabilities(cos[test], logit_scale)
            probe = fit_probe(
                vec[train], lab[train], n_values, multi_label=False, c=cal.report["probe_c"] or PROBE_C_GRID[1]
            )
            probe_p = base if probe is None else probe_probabilities(probe, probe.logits(vec[test]), base)
            blended = cal.probabilities(cos[test], vec[test], logit_scale)
            dec = decisions(blended, cal.thresholds, cal.review_floor, multi_label=False)
            accepted = dec == ACCEPT
            right = blended.argmax(axis=1) == lab[test]
            tp += float((accepted & right).sum())
            acc_n += float(accepted.sum())
            if accepted.any():
                precisions.append(float((accepted & right).mean() / accepted.mean()))
            held = cal.report["held_out"]
            if held["precision"] is not None:
                promised_tp += held["precision"] * held["accepted"]
                promised_n += held["accepted"]
            rows.append({
                "train_items": float(len(train)), "test_items": float(len(test)),
                "zero_shot": float((cos[test].argmax(axis=1) == lab[test]).mean()),
                "calibrated": float((base.argmax(axis=1) == lab[test]).mean()),
                "probe": float((probe_p.argmax(axis=1) == lab[test]).mean()),
                "blended": float(right.mean()), "blend": cal.blend,
                "coverage": float(accepted.mean()),
            })  # fmt: skip
        entry: dict[str, Any] = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]} if rows else {}
        entry["precision"] = tp / acc_n if acc_n else None
        entry["precision_min"] = min(precisions) if precisions else None
        entry["promised_precision"] = promised_tp / promised_n if promised_n else None
        out["shots"][str(k)] = entry
    return out
